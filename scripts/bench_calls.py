#!/usr/bin/env python3
"""Per call, interleaved: kerasgo's Go calls against Keras and against tfgo.

One repetition runs, one after another on the same machine:
  - tfmodel's Go benchmarks on the question's model at D=10,000, C=20
    (BenchmarkPredict, BenchmarkPredictSparse, BenchmarkTrainStep,
    BenchmarkTrainStepSparse), from a compiled test binary;
  - Keras on the same architecture, shapes and rows: predict_on_batch and
    train_on_batch; dense rows (every feature set) as an array, bag-of-words
    rows (1% set: flags, counts, tf-idf) as an array and as a
    tf.SparseTensor, the two ways a Keras user calls them (Keras 3 takes no
    scipy matrix there), keeping the faster;
  - the root package's BenchmarkPredictAgainstTfgo (kerasgo's Predict against
    tfgo's Exec on the fortunes model);
  - the first layer alone on bag-of-words rows, the export's CSR product
    (SparseTensorToCSRSparseMatrix + SparseMatrixMatMul, in a tf.function)
    against its floor, scipy's CSR × dense product of the same batch.
Each repetition gives every case a ratio (the other side's time per call over
kerasgo's); the table shows the median time and the median ratio with its
range over the repetitions. Nothing is asserted.

Usage (from the repository's root, as make bench runs it):
  python scripts/bench_calls.py --tfmodel-test BIN --root-test BIN --model DIR [--reps 5] [--seconds 1]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_keras  # noqa: E402

BATCHES = (1, 32, 500)
VALUES = ("flags", "counts", "tfidf")


def rows(batch, dim, seed, values="flags"):
    """tfmodel's bagOfWords rows: about 1% of the features set, with the
    values of withValues (bench_test.go) at the same positions."""
    rng = np.random.default_rng(seed)
    x = (rng.integers(0, 100, size=(batch, dim)) == 0).astype(np.float32)
    nz = np.flatnonzero(x)
    k = np.arange(len(nz))
    if values == "counts":
        x.flat[nz] = np.where(k % 10 == 0, 3, np.where(k % 5 == 0, 2, 1))
    elif values == "tfidf":
        x.flat[nz] = 0.5 + (k % 7) / 4
    return x


def dense_rows(batch, dim, seed):
    """tfmodel's denseRows: every feature set, uniform in [0, 1)."""
    return np.random.default_rng(seed).random((batch, dim), dtype=np.float32)


def time_calls(fn, seconds):
    """Median seconds per call of fn after a warm-up, over ~seconds of calls."""
    for _ in range(3):
        fn()
    samples, spent = [], 0.0
    while spent < seconds or len(samples) < 5:
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        samples.append(dt)
        spent += dt
    return statistics.median(samples)


def go_bench(binary, pattern, seconds, env, cwd):
    """ns/op of every benchmark matching pattern in a compiled test binary,
    run in its package's directory cwd."""
    out = subprocess.run([binary, "-test.run", "^$", "-test.bench", pattern, "-test.benchtime", f"{seconds}s"],
                         capture_output=True, text=True, env=env, cwd=cwd)
    if out.returncode != 0:
        sys.exit(f"{binary}: {out.stderr[-2000:]}{out.stdout[-2000:]}")
    got = {}
    for line in out.stdout.splitlines():
        m = re.match(r"Benchmark(\S+?)(-\d+)?\s+\d+\s+([\d.]+) ns/op", line)
        if m:
            got[m.group(1)] = float(m.group(3)) / 1e9
    return got


def keras_cases(model, tf, dim, classes, seconds):
    """Seconds per call of Keras' side of every case (bag-of-words rows: the faster feed)."""
    got = {}
    for batch in BATCHES:
        x = dense_rows(batch, dim, 1)
        got[f"predict/dense/batch={batch}"] = time_calls(lambda: model.predict_on_batch(x), seconds)
        for values in VALUES:
            x = rows(batch, dim, 1, values)
            sx = tf.sparse.from_dense(x)
            got[f"predict/{values}/batch={batch}"] = min(
                time_calls(lambda: model.predict_on_batch(x), seconds),
                time_calls(lambda: model.predict_on_batch(sx), seconds))
    y = np.zeros((500, classes), np.float32)
    y[np.arange(500), np.arange(500) % classes] = 1
    x = dense_rows(500, dim, 2)
    got["train/dense"] = time_calls(lambda: model.train_on_batch(x, y), seconds)
    for values in ("flags", "counts"):
        x = rows(500, dim, 2, values)
        sx = tf.sparse.from_dense(x)
        got[f"train/{values}"] = min(time_calls(lambda: model.train_on_batch(x, y), seconds),
                                     time_calls(lambda: model.train_on_batch(sx, y), seconds))
    return got


def first_layer_cases(tf, dim, seconds, units=500):
    """Seconds per call of the first layer alone (x·W, W dim × units) on
    bag-of-words rows: the export's CSR product and scipy's."""
    import scipy.sparse
    w = np.random.default_rng(3).standard_normal((dim, units)).astype(np.float32)
    kernel = tf.constant(w)

    @tf.function
    def csr_product(indices, values, dense_shape):
        x = tf.raw_ops.SparseTensorToCSRSparseMatrix(indices=indices, values=values, dense_shape=dense_shape)
        return tf.raw_ops.SparseMatrixMatMul(a=x, b=kernel)

    got = {}
    for batch in BATCHES[1:]:
        for values in VALUES:
            x = rows(batch, dim, 1, values)
            csr, sp = scipy.sparse.csr_matrix(x), tf.sparse.from_dense(x)
            ours = csr_product(sp.indices, sp.values, sp.dense_shape).numpy()
            if not np.allclose(ours, csr @ w, rtol=1e-4, atol=1e-4):
                raise SystemExit(f"first layer, {values}, batch {batch}: the CSR product differs from scipy's")
            got[f"csr/{values}/batch={batch}"] = time_calls(
                lambda: csr_product(sp.indices, sp.values, sp.dense_shape).numpy(), seconds)
            got[f"scipy/{values}/batch={batch}"] = time_calls(lambda: csr @ w, seconds)
    return got


LABELS = {"keras": "Keras predict_on_batch / train_on_batch", "tfgo": "tfgo Exec",
          "layer": "scipy CSR × dense (the floor)"}


# Each reported case: its name, kerasgo's side and key, the other side and key.
def cases():
    out = []
    for batch in BATCHES:
        out.append((f"predict, batch {batch}, dense rows (Predict)", ("go", f"Predict/batch={batch}"),
                    "keras", f"predict/dense/batch={batch}"))
    for values in VALUES:
        for batch in BATCHES:
            out.append((f"predict, batch {batch}, {values} (PredictSparse)", ("go", f"PredictSparse/{values}/batch={batch}"),
                        "keras", f"predict/{values}/batch={batch}"))
    out.append(("train step, batch 500, dense rows (TrainStep)", ("go", "TrainStep"), "keras", "train/dense"))
    for values in ("flags", "counts"):
        out.append((f"train step, batch 500, {values} (TrainStepSparse)", ("go", f"TrainStepSparse/{values}"),
                    "keras", f"train/{values}"))
    for batch in BATCHES:
        out.append((f"fortunes model, batch {batch}: Predict against tfgo Exec",
                    ("go", f"PredictAgainstTfgo/kerasgo/batch={batch}"), "tfgo", f"PredictAgainstTfgo/tfgo/batch={batch}"))
    for batch in BATCHES[1:]:
        for values in VALUES:
            out.append((f"first layer alone, batch {batch}, {values}: the export's CSR product",
                        ("layer", f"csr/{values}/batch={batch}"), "layer", f"scipy/{values}/batch={batch}"))
    return out


def spread(xs):
    return statistics.median(xs), min(xs), max(xs)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tfmodel-test", required=True, help="tfmodel's compiled tests (go test -c ./tfmodel)")
    p.add_argument("--root-test", required=True, help="the root package's compiled tests (go test -c .)")
    p.add_argument("--model", required=True, help="the exported D=10,000 model")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--seconds", type=float, default=1.0)
    args = p.parse_args()
    import tensorflow as tf
    with open(os.path.join(args.model, "assets", "kerasgo.json"), encoding="utf-8") as f:
        meta = json.load(f)
    dim, classes = meta["input_dim"], len(meta["classes"])
    model = export_keras.question_model(dim, classes, seed=0)
    env = dict(os.environ, KERASGO_BENCH_MODEL=os.path.abspath(args.model))
    reps = []
    for rep in range(args.reps):
        go = go_bench(os.path.abspath(args.tfmodel_test),
                      "^(BenchmarkPredict|BenchmarkPredictSparse|BenchmarkTrainStep|BenchmarkTrainStepSparse)$",
                      args.seconds, env, "tfmodel")
        keras = keras_cases(model, tf, dim, classes, args.seconds)
        tfgo = go_bench(os.path.abspath(args.root_test), "^BenchmarkPredictAgainstTfgo$/(kerasgo|tfgo)/",
                        args.seconds, env, ".")
        go.update(tfgo)
        layer = first_layer_cases(tf, dim, args.seconds)
        reps.append({"go": go, "keras": keras, "tfgo": tfgo, "layer": layer})
        print(json.dumps({"rep": rep, "go": go, "keras": keras, "layer": layer}), flush=True)
    print()
    print(f"{args.reps} interleaved repetitions; time per call: median; ratio: the other side's time over "
          "kerasgo's, median (min–max). Above 1: kerasgo is faster.")
    print()
    print("| case | kerasgo | other side | other side's time | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for name, (mine_side, mine), side, theirs in cases():
        try:
            ours = [r[mine_side][mine] for r in reps]
            other = [r[side][theirs] for r in reps]
        except KeyError as e:
            print(f"| {name} | missing {e} | | | |")
            continue
        ratio = spread([o / g for o, g in zip(other, ours)])
        print(f"| {name} | {statistics.median(ours) * 1e3:.2f} ms | {LABELS[side]} | {statistics.median(other) * 1e3:.2f} ms "
              f"| {ratio[0]:.2f}× ({ratio[1]:.2f}–{ratio[2]:.2f}) |")


if __name__ == "__main__":
    main()
