#!/usr/bin/env python3
"""Batch scoring, kerasgo against the Python way, on the same file and machine.

Makes (once, cached) libsvm files of bag-of-words rows for the question's
architecture at D=10,000, C=20 (about 100 of 10,000 words set per row), as
presence flags, word counts and tf-idf weights, then times and measures peak
RSS of, interleaved over --reps repetitions:

  kerasgo       bin/kerasgo predict MODEL --input FILE --output OUT.csv
  predict       scikit-learn's load_svmlight_file, Keras model.predict
                (batch_size=500) straight on the scipy CSR matrix, and the
                same CSV written with NumPy
  sparsetensor  the same, with a tf.function over the model called on
                tf.SparseTensor batches of 500 instead of model.predict

Each runs in its own process; peak RSS is that process's ru_maxrss. Beside them, the limit:
tfmodel's calls alone for the same batches of the same file (the root
package's BenchmarkScoreLimit: parsed beforehand, nothing written, as many
goroutines as kerasgo predict's workers), measured in every repetition;
kerasgo's scoring time (its own "scored N rows in T" line, after the model
has loaded) minus that repetition's limit is what reading, parsing,
batching and writing add. Prints a Markdown table with the ratios.

With --kerasgo-beam, also runs the Beam pipeline (beam/cmd/kerasgo-beam) on
Prism over the same file, and compares it with kerasgo predict.

Usage: python scripts/bench_predict.py --kerasgo bin/kerasgo --model DIR [--rows 300000] [--reps 5] [--values flags,counts,tfidf]
       [--rows-go-only 1000000] [--kerasgo-beam bin/kerasgo-beam]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

D, C, NNZ = 10000, 20, 100


VALUES = ("flags", "counts", "tfidf")


def make_file(path, rows, values="flags", seed=0):
    """Writes rows libsvm lines (zero-based indices) unless path exists: about
    NNZ of D words a row, as presence flags (1), word counts (1 to 3: 80%,
    10%, 10%, as short texts have) or tf-idf weights (positive reals)."""
    if os.path.exists(path):
        return
    import numpy as np
    rng = np.random.default_rng(seed)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for start in range(0, rows, 10000):
            n = min(10000, rows - start)
            labels = rng.integers(0, C, size=n)
            idx = np.sort(rng.choice(D, size=(n, NNZ)), axis=1)
            lines = []
            for lab, row in zip(labels, idx):
                cols = np.unique(row)
                if values == "counts":
                    vals = [str(v) for v in rng.choice([1, 2, 3], size=len(cols), p=[0.8, 0.1, 0.1])]
                elif values == "tfidf":
                    vals = [f"{v:.4f}" for v in rng.random(len(cols)) * 3 + 0.05]
                else:
                    vals = ["1"] * len(cols)
                lines.append(f"{lab} " + " ".join(f"{i}:{v}" for i, v in zip(cols, vals)) + "\n")
            f.writelines(lines)
    os.replace(tmp, path)


def measure(argv):
    """Runs argv, returns (wall seconds, peak RSS MiB, CPU use of all cores, stderr)."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace")
    if status != 0:
        raise SystemExit(f"{argv[0]} failed ({status}):\n{err}")
    cpu = (usage.ru_utime + usage.ru_stime) / wall / os.cpu_count()
    return wall, usage.ru_maxrss / 1024, cpu, err


def scoring_seconds(stderr):
    """The time kerasgo predict reports for scoring, after loading the model."""
    m = re.search(r"scored \d+ rows in ([0-9.]+)s", stderr)
    if not m:
        raise SystemExit(f"no scoring time in kerasgo predict's output:\n{stderr}")
    return float(m.group(1))


def limit_seconds(model, data):
    """BenchmarkScoreLimit's time for one pass over data: the model calls alone."""
    env = dict(os.environ, KERASGO_BENCH_MODEL=os.path.abspath(model), KERASGO_BENCH_LIBSVM=os.path.abspath(data),
               TF_CPP_MIN_LOG_LEVEL="2")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(["go", "test", "-run", "^$", "-bench", "^BenchmarkScoreLimit$", "-benchtime", "1x", "."],
                         cwd=root, env=env, capture_output=True, text=True)
    m = re.search(r"BenchmarkScoreLimit\S*\s+\d+\s+(\d+) ns/op", out.stdout)
    if out.returncode != 0 or not m:
        raise SystemExit(f"BenchmarkScoreLimit failed:\n{out.stdout}\n{out.stderr}")
    return int(m.group(1)) / 1e9


def python_way(way, data, out):
    """A Python way to score the file, start to finish: load it with
    scikit-learn (a scipy CSR matrix), predict with Keras, write the CSV.
    way "predict" passes the CSR matrix straight to model.predict; way
    "sparsetensor" calls a tf.function over the model on tf.SparseTensor
    batches of 500, the fastest way found so far."""
    import numpy as np
    from sklearn.datasets import load_svmlight_file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import export_keras
    import tensorflow as tf
    model = export_keras.question_model(D, C, seed=0)
    x, _ = load_svmlight_file(data, n_features=D, dtype=np.float32, zero_based=True)
    if way == "predict":
        probs = model.predict(x, batch_size=500, verbose=0)
    else:
        call = tf.function(lambda sp: model(sp, training=False))
        parts = []
        for start in range(0, x.shape[0], 500):
            b = x[start:start + 500].tocoo()
            sp = tf.SparseTensor(np.stack([b.row, b.col], axis=1).astype(np.int64), b.data, b.shape)
            parts.append(call(tf.sparse.reorder(sp)).numpy())
        probs = np.concatenate(parts)
    classes = [f"class_{i}" for i in range(C)]
    best = probs.argmax(axis=1)
    with open(out, "w") as f:
        f.write("id,label,score," + ",".join("p_" + c for c in classes) + "\n")
        for start in range(0, len(probs), 10000):
            chunk = probs[start:start + 10000]
            ids = np.arange(start + 1, start + 1 + len(chunk))
            for i, row, b in zip(ids, chunk, best[start:start + 10000]):
                f.write(f"{i},{classes[b]},{row[b]:.7g}," + ",".join(f"{v:.7g}" for v in row) + "\n")


def spread(xs):
    """median (min–max) of xs, formatted as ratios."""
    import statistics
    return f"{statistics.median(xs):.2f}× ({min(xs):.2f}–{max(xs):.2f})"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kerasgo", default="bin/kerasgo")
    p.add_argument("--model", required=False, help="the exported D=10,000 model for kerasgo")
    p.add_argument("--kerasgo-beam", help="the Beam pipeline's binary, run on Prism over the --rows file of flags")
    p.add_argument("--rows", type=int, default=300000)
    p.add_argument("--reps", type=int, default=5, help="interleaved repetitions of every way on every file")
    p.add_argument("--values", default=",".join(VALUES), help="the kinds of values to score, comma-separated")
    p.add_argument("--rows-go-only", type=int, default=1000000, help="a larger file scored by kerasgo only (0: skip)")
    p.add_argument("--cache", default=os.path.join(os.environ.get("KERASGO_CACHE", os.path.expanduser("~/.cache/kerasgo")), "bench"))
    p.add_argument("--python-way", nargs=3, metavar=("WAY", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.python_way:
        python_way(*args.python_way)
        return
    import statistics
    os.makedirs(args.cache, exist_ok=True)
    out = os.path.join(args.cache, "predictions.csv")
    ways = {
        "kerasgo predict": lambda data: [args.kerasgo, "predict", args.model, "--input", data, "--output", out],
        "Keras model.predict on the CSR matrix": lambda data: [sys.executable, os.path.abspath(__file__),
                                                               "--python-way", "predict", data, out],
        "tf.function on tf.SparseTensor batches": lambda data: [sys.executable, os.path.abspath(__file__),
                                                                "--python-way", "sparsetensor", data, out],
    }
    print(f"\n{args.rows} rows, D={D}, C={C}, about {NNZ} words a row; {args.reps} interleaved repetitions; "
          f"wall time and peak RSS median (min–max); ratios are the other way's time over kerasgo's in the "
          f"same repetition.\n")
    print("| values | way | wall time | peak RSS | kerasgo's speed-up | limit: model calls alone | kerasgo's own share |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for values in args.values.split(","):
        if values not in VALUES:
            raise SystemExit(f"--values: {values!r} is not one of {', '.join(VALUES)}")
        data = os.path.join(args.cache, f"bow-{values}-{args.rows}.libsvm")
        make_file(data, args.rows, values)
        runs, limits = {w: [] for w in ways}, []
        for rep in range(args.reps):
            for way, argv in ways.items():
                r = measure(argv(data))
                runs[way].append(r)
                print(json.dumps({"values": values, "way": way, "rep": rep, "seconds": round(r[0], 2),
                                  "peak_rss_mib": round(r[1])}), file=sys.stderr, flush=True)
            limits.append(limit_seconds(args.model, data))
        go = runs["kerasgo predict"]
        # The share in each repetition, against the limit measured in it.
        own = [(scoring_seconds(r[3]) - lim) / scoring_seconds(r[3]) for r, lim in zip(go, limits)]
        for way, rs in runs.items():
            walls, rss = [r[0] for r in rs], [r[1] for r in rs]
            speedup = "" if way == "kerasgo predict" else spread([py[0] / g[0] for py, g in zip(rs, go)])
            extra = (f"{statistics.median(limits):.2f} s | {statistics.median(own):.0%} ({min(own):.0%}–{max(own):.0%})"
                     if way == "kerasgo predict" else " | ")
            print(f"| {values} | {way} | {statistics.median(walls):.2f} s ({min(walls):.2f}–{max(walls):.2f}) | "
                  f"{statistics.median(rss):.0f} MiB | {speedup} | {extra} |", flush=True)
    data = os.path.join(args.cache, f"bow-flags-{args.rows}.libsvm")
    if args.kerasgo_beam:
        beam_out = os.path.join(args.cache, "beam")
        shutil.rmtree(beam_out, ignore_errors=True)
        os.makedirs(beam_out)
        bm = measure([args.kerasgo_beam, "--model", args.model, "--input", data, "--output", os.path.join(beam_out, "pred")])
        written = sum(sum(1 for _ in open(os.path.join(beam_out, f))) - 1 for f in os.listdir(beam_out))
        if written != args.rows:
            raise SystemExit(f"the Beam pipeline wrote {written} rows, want {args.rows}")
        print(f"| flags | kerasgo-beam on Prism (loopback, one process) | {bm[0]:.2f} s | {bm[1]:.0f} MiB | | | |")
    if args.rows_go_only:
        big = os.path.join(args.cache, f"bow-flags-{args.rows_go_only}.libsvm")
        make_file(big, args.rows_go_only)
        r = measure(ways["kerasgo predict"](big))
        print(f"| flags, {args.rows_go_only} rows | kerasgo predict | {r[0]:.1f} s | {r[1]:.0f} MiB | | | |")


if __name__ == "__main__":
    main()
