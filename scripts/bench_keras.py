#!/usr/bin/env python3
"""Times the Python/Keras way of doing what tfmodel's Go benchmarks do.

Same architecture (the question's, at D=10,000, C=20), same batch sizes, same
1%-dense bag-of-words inputs, same machine. Prints one JSON line per case with
the median time per call over several repeats, comparable with `go test -bench`
ns/op.

Usage: python scripts/bench_keras.py [--input-dim 10000] [--classes 20] [--seconds 3]
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_keras  # noqa: E402


def bag_of_words(rows, dim, seed):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 100, size=(rows, dim)) == 0).astype(np.float32)


def time_calls(fn, seconds):
    """Median seconds per call of fn, after a warm-up, over ~`seconds` of runs."""
    for _ in range(3):
        fn()
    samples, spent = [], 0.0
    while spent < seconds or len(samples) < 5:
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        samples.append(dt)
        spent += dt
    return statistics.median(samples), len(samples)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--input-dim", type=int, default=10000)
    p.add_argument("--classes", type=int, default=20)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args()
    model = export_keras.question_model(args.input_dim, args.classes, seed=0)
    cases = []
    for batch in (1, 32, 500):
        x = bag_of_words(batch, args.input_dim, 1)
        cases.append((f"predict_on_batch/batch={batch}", batch, lambda x=x: model.predict_on_batch(x)))
        cases.append((f"predict/batch={batch}", batch, lambda x=x: model.predict(x, batch_size=batch, verbose=0)))
    x = bag_of_words(500, args.input_dim, 2)
    y = np.zeros((500, args.classes), np.float32)
    y[np.arange(500), np.arange(500) % args.classes] = 1
    cases.append(("train_on_batch/batch=500", 500, lambda: model.train_on_batch(x, y)))
    for name, rows, fn in cases:
        sec, n = time_calls(fn, args.seconds)
        print(json.dumps({"case": name, "ns_per_call": round(sec * 1e9), "rows_per_s": round(rows / sec, 1), "calls": n}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
