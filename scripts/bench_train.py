#!/usr/bin/env python3
"""Training throughput, kerasgo train against Keras model.fit, same data and machine.

Uses bench_predict.py's cached libsvm file (bag-of-words rows with labels
0..19, D=10,000). One epoch, batch size 500, no validation, no shuffling
difference that matters for speed (both shuffle):

  kerasgo  bin/kerasgo train MODEL --data FILE --out DIR --epochs 1 --batch-size 500
  keras    load_svmlight_file, one-hot labels, model.fit(X, Y, batch_size=500, epochs=1)
           on the sparse matrix (Keras feeds sparse batches), then model.save

Each runs in its own process; reports wall time, samples/s over the whole
run, and peak RSS (ru_maxrss).

Usage: python scripts/bench_train.py --kerasgo bin/kerasgo --model DIR [--rows 300000]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_predict  # noqa: E402

D, C = bench_predict.D, bench_predict.C


def keras_way(data, out):
    """The usual Python way: load with scikit-learn, model.fit, save."""
    import numpy as np
    from sklearn.datasets import load_svmlight_file
    import export_keras
    model = export_keras.question_model(D, C, seed=0)
    x, y = load_svmlight_file(data, n_features=D, dtype=np.float32, zero_based=True)
    labels = np.zeros((len(y), C), np.float32)
    labels[np.arange(len(y)), y.astype(int)] = 1
    model.fit(x, labels, batch_size=500, epochs=1, shuffle=True, verbose=0)
    model.save(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kerasgo", default="bin/kerasgo")
    p.add_argument("--model", required=False)
    p.add_argument("--rows", type=int, default=300000)
    p.add_argument("--cache", default=os.path.join(os.environ.get("KERASGO_CACHE", os.path.expanduser("~/.cache/kerasgo")), "bench"))
    p.add_argument("--keras-way", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.keras_way:
        keras_way(*args.keras_way)
        return
    data = os.path.join(args.cache, f"bow-{args.rows}.libsvm")
    bench_predict.make_file(data, args.rows)
    tmp = tempfile.mkdtemp(prefix="kerasgo-bench-train-")
    try:
        go = bench_predict.measure([args.kerasgo, "train", args.model, "--data", data, "--out", os.path.join(tmp, "go"),
                                    "--epochs", "1", "--batch-size", "500"])
        print(json.dumps({"case": f"kerasgo train, {args.rows} rows", "seconds": round(go[0], 1),
                          "samples_per_s": round(args.rows / go[0]), "peak_rss_mib": round(go[1])}), flush=True)
        ks = bench_predict.measure([sys.executable, os.path.abspath(__file__), "--keras-way", data, os.path.join(tmp, "k.keras")])
        print(json.dumps({"case": f"keras model.fit, {args.rows} rows", "seconds": round(ks[0], 1),
                          "samples_per_s": round(args.rows / ks[0]), "peak_rss_mib": round(ks[1])}), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n| one epoch, {args.rows} rows, D={D}, C={C}, batch 500 | wall time | samples/s | peak RSS |\n| --- | --- | --- | --- |")
    print(f"| kerasgo train | {go[0]:.1f} s | {args.rows / go[0]:.0f} | {go[1]:.0f} MiB |")
    print(f"| Keras model.fit (load_svmlight_file) | {ks[0]:.1f} s | {args.rows / ks[0]:.0f} | {ks[1]:.0f} MiB |")
    print(f"| ratio | {ks[0] / go[0]:.2f}× faster | | {ks[1] / go[1]:.2f}× less memory |")


if __name__ == "__main__":
    main()
