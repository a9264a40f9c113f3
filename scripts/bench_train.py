#!/usr/bin/env python3
"""Training throughput, kerasgo train against Keras model.fit, same data and machine.

Uses bench_predict.py's cached libsvm files (bag-of-words rows with labels
0..19, D=10,000; word counts by default, --values). One epoch, batch size 500, no validation, no shuffling
difference that matters for speed (both shuffle):

  kerasgo  bin/kerasgo train MODEL --data FILE --out DIR --epochs 1 --batch-size 500
  keras    load_svmlight_file, one-hot labels, model.fit(X, Y, batch_size=500, epochs=1)
           on the sparse matrix (Keras feeds sparse batches), then model.save

Each runs in its own process, --reps times, interleaved; reports wall time,
samples/s over the whole run, and peak RSS (ru_maxrss), as medians with their
range. kerasgo runs twice at --rows: with its default exact shuffle (a new
random permutation of all rows every epoch) and with --shuffle=false, so the
ratio is what the shuffle costs.

At --rows-budget rows (3,000,000 by default) the parsed rows outgrow the
default --memory-budget (512 MiB) and move to a temporary file. That run is
stopped with SIGINT once it has read the file and trained --budget-steps
steps (kerasgo saves what it reached and exits): it reports the time to read
the file and the peak RSS, which must stay near the 300,000-row figure.

Usage: python scripts/bench_train.py --kerasgo bin/kerasgo --model DIR [--rows 300000] [--values counts]
       [--reps 5] [--rows-budget 3000000]
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

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


def spread(xs):
    """median, min and max of xs."""
    return statistics.median(xs), min(xs), max(xs)


def measure_interrupted(argv, steps):
    """Runs kerasgo train until it has read its data and done `steps` steps,
    then sends SIGINT. Returns (seconds to read the data, the "read" line,
    peak RSS MiB)."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    read_line, read_s = None, None
    for line in p.stdout:
        if line.startswith("read ") and read_line is None:
            read_line, read_s = line.strip(), time.perf_counter() - t
            break
    if read_line is None:
        p.wait()
        raise SystemExit(f"{argv[0]} printed no read line:\n{p.stderr.read()}")
    # Steps run at a steady pace once the data is read; let some run.
    time.sleep(steps)
    p.send_signal(signal.SIGINT)
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        raise SystemExit(f"{argv[0]} failed ({status}):\n{p.stderr.read()}")
    return read_s, read_line, usage.ru_maxrss / 1024


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kerasgo", default="bin/kerasgo")
    p.add_argument("--model", required=False)
    p.add_argument("--rows", type=int, default=300000)
    p.add_argument("--values", choices=bench_predict.VALUES, default="counts", help="the values of the --rows file")
    p.add_argument("--reps", type=int, default=5, help="interleaved repetitions of every way")
    p.add_argument("--rows-budget", type=int, default=3000000)
    p.add_argument("--budget-seconds", type=int, default=20, help="seconds of training after the read, for the RSS run")
    p.add_argument("--cache", default=os.path.join(os.environ.get("KERASGO_CACHE", os.path.expanduser("~/.cache/kerasgo")), "bench"))
    p.add_argument("--keras-way", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.keras_way:
        keras_way(*args.keras_way)
        return
    data = os.path.join(args.cache, f"bow-{args.values}-{args.rows}.libsvm")
    bench_predict.make_file(data, args.rows, args.values)
    tmp = tempfile.mkdtemp(prefix="kerasgo-bench-train-")
    ways = [
        ("kerasgo train (exact shuffle, the default)",
         [args.kerasgo, "train", args.model, "--data", data, "--epochs", "1", "--batch-size", "500"]),
        ("kerasgo train --shuffle=false (file order)",
         [args.kerasgo, "train", args.model, "--data", data, "--epochs", "1", "--batch-size", "500", "--shuffle=false"]),
        ("Keras model.fit on the CSR matrix (load_svmlight_file)",
         [sys.executable, os.path.abspath(__file__), "--keras-way", data]),
    ]
    runs = {name: [] for name, _ in ways}
    big = None
    try:
        for rep in range(args.reps):
            for i, (name, argv) in enumerate(ways):
                seconds, rss = bench_predict.measure(argv + [os.path.join(tmp, f"out{i}-{rep}.keras")] if "--keras-way" in argv
                                                     else argv + ["--out", os.path.join(tmp, f"out{i}-{rep}")])[:2]
                runs[name].append((seconds, rss))
                print(json.dumps({"way": name, "rep": rep, "rows": args.rows, "seconds": round(seconds, 2),
                                  "peak_rss_mib": round(rss)}), flush=True)
        if args.rows_budget:
            big_data = os.path.join(args.cache, f"bow-flags-{args.rows_budget}.libsvm")
            bench_predict.make_file(big_data, args.rows_budget)
            big = measure_interrupted([args.kerasgo, "train", args.model, "--data", big_data, "--out", os.path.join(tmp, "big"),
                                       "--epochs", "1", "--batch-size", "500"], args.budget_seconds)
            print(json.dumps({"case": f"kerasgo train, {args.rows_budget} rows, stopped after {args.budget_seconds} s of steps",
                              "read_seconds": round(big[0], 1), "read": big[1], "peak_rss_mib": round(big[2])}), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    go, fo, ks = (runs[name] for name, _ in ways)
    print(f"\n{args.reps} interleaved repetitions; median (min–max).\n")
    print(f"| one epoch, {args.rows} rows of {args.values}, D={D}, C={C}, batch 500 | wall time | samples/s | peak RSS | "
          "Keras' time over this |\n| --- | --- | --- | --- | --- |")
    for name, _ in ways:
        r = runs[name]
        t = spread([x[0] for x in r])
        ratio = spread([k[0] / x[0] for k, x in zip(ks, r)])
        print(f"| {name} | {t[0]:.1f} s ({t[1]:.1f}–{t[2]:.1f}) | {args.rows / t[0]:.0f} | "
              f"{spread([x[1] for x in r])[0]:.0f} MiB | {ratio[0]:.2f}× ({ratio[1]:.2f}–{ratio[2]:.2f}) |")
    cost = spread([f[0] / g[0] for f, g in zip(fo, go)])
    print(f"\nThe exact shuffle's cost (file order's time over the default's): {cost[0]:.3f}× ({cost[1]:.3f}–{cost[2]:.3f}).")
    if big:
        print(f"\n{args.rows_budget} rows (default --memory-budget): read in {big[0]:.1f} s, peak RSS {big[2]:.0f} MiB; {big[1]}")


if __name__ == "__main__":
    main()
