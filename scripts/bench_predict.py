#!/usr/bin/env python3
"""Batch scoring, kerasgo against the Python way, on the same file and machine.

Makes (once, cached) a libsvm file of bag-of-words rows for the question's
architecture at D=10,000, C=20 (about 100 of 10,000 words set per row), then
times and measures peak RSS of:

  kerasgo  bin/kerasgo predict MODEL --input FILE --output OUT.csv
  python   scikit-learn's load_svmlight_file, Keras model.predict(batch_size=500)
           on the sparse matrix, and the same CSV written with NumPy

Each runs in its own process; peak RSS is that process's ru_maxrss, CPU use
its user + system time over wall time and cores. Beside them, the limit:
tfmodel's calls alone for the same batches of the same file (the root
package's BenchmarkScoreLimit: parsed beforehand, nothing written, as many
goroutines as kerasgo predict's workers); kerasgo's scoring time (its own
"scored N rows in T" line, after the model has loaded) minus the limit is
what reading, parsing, batching and writing add. Prints a Markdown table with
the ratios.

With --kerasgo-beam, also runs the Beam pipeline (beam/cmd/kerasgo-beam) on
Prism over the same file, and compares it with kerasgo predict.

Usage: python scripts/bench_predict.py --kerasgo bin/kerasgo --model DIR [--rows 300000] [--rows-go-only 1000000]
       [--kerasgo-beam bin/kerasgo-beam]
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


def make_file(path, rows, seed=0):
    """Writes rows libsvm lines (zero-based indices) unless path exists."""
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
                feats = " ".join(f"{i}:1" for i in np.unique(row))
                lines.append(f"{lab} {feats}\n")
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


def python_way(data, out):
    """The usual Python way: load with scikit-learn, predict with Keras, write CSV."""
    import numpy as np
    from sklearn.datasets import load_svmlight_file
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import export_keras
    model = export_keras.question_model(D, C, seed=0)
    x, _ = load_svmlight_file(data, n_features=D, dtype=np.float32, zero_based=True)
    probs = model.predict(x, batch_size=500, verbose=0)
    classes = [f"class_{i}" for i in range(C)]
    best = probs.argmax(axis=1)
    with open(out, "w") as f:
        f.write("id,label,score," + ",".join("p_" + c for c in classes) + "\n")
        for start in range(0, len(probs), 10000):
            chunk = probs[start:start + 10000]
            ids = np.arange(start + 1, start + 1 + len(chunk))
            for i, row, b in zip(ids, chunk, best[start:start + 10000]):
                f.write(f"{i},{classes[b]},{row[b]:.7g}," + ",".join(f"{v:.7g}" for v in row) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kerasgo", default="bin/kerasgo")
    p.add_argument("--model", required=False, help="the exported D=10,000 model for kerasgo")
    p.add_argument("--kerasgo-beam", help="the Beam pipeline's binary, run on Prism over the --rows file")
    p.add_argument("--rows", type=int, default=300000)
    p.add_argument("--rows-go-only", type=int, default=1000000, help="a larger file scored by kerasgo only (0: skip)")
    p.add_argument("--cache", default=os.path.join(os.environ.get("KERASGO_CACHE", os.path.expanduser("~/.cache/kerasgo")), "bench"))
    p.add_argument("--python-way", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.python_way:
        python_way(*args.python_way)
        return
    os.makedirs(args.cache, exist_ok=True)
    out = os.path.join(args.cache, "predictions.csv")
    results = {}
    sizes = [args.rows] + ([args.rows_go_only] if args.rows_go_only else [])
    for rows in sizes:
        data = os.path.join(args.cache, f"bow-{rows}.libsvm")
        make_file(data, rows)
        go = measure([args.kerasgo, "predict", args.model, "--input", data, "--output", out])
        results[f"kerasgo/{rows}"] = go
        print(json.dumps({"case": f"kerasgo predict, {rows} rows", "seconds": round(go[0], 2), "peak_rss_mib": round(go[1]),
                          "cpu_use": round(go[2], 2), "scoring_seconds": scoring_seconds(go[3])}), flush=True)
        if rows == args.rows:
            py = measure([sys.executable, os.path.abspath(__file__), "--python-way", data, out])
            results[f"python/{rows}"] = py
            print(json.dumps({"case": f"python way, {rows} rows", "seconds": round(py[0], 1), "peak_rss_mib": round(py[1]),
                              "cpu_use": round(py[2], 2)}), flush=True)
            limit = limit_seconds(args.model, data)
            print(json.dumps({"case": f"limit (model calls alone), {rows} rows", "seconds": round(limit, 2)}), flush=True)
            if args.kerasgo_beam:
                beam_out = os.path.join(args.cache, "beam")
                shutil.rmtree(beam_out, ignore_errors=True)
                os.makedirs(beam_out)
                bm = measure([args.kerasgo_beam, "--model", args.model, "--input", data,
                              "--output", os.path.join(beam_out, "pred")])
                written = sum(sum(1 for _ in open(os.path.join(beam_out, f))) - 1 for f in os.listdir(beam_out))
                if written != rows:
                    raise SystemExit(f"the Beam pipeline wrote {written} rows, want {rows}")
                results[f"beam/{rows}"] = bm
                print(json.dumps({"case": f"kerasgo-beam on Prism, {rows} rows", "seconds": round(bm[0], 2),
                                  "peak_rss_mib": round(bm[1]), "cpu_use": round(bm[2], 2)}), flush=True)
    go, py = results[f"kerasgo/{args.rows}"], results[f"python/{args.rows}"]
    scoring = scoring_seconds(go[3])
    print(f"\n| {args.rows} rows, D={D}, C={C} | wall time | CPU use ({os.cpu_count()} cores) | peak RSS |\n| --- | --- | --- | --- |")
    print(f"| kerasgo predict | {go[0]:.2f} s (scoring {scoring:.2f} s) | {go[2]:.0%} | {go[1]:.0f} MiB |")
    print(f"| Python (load_svmlight_file + model.predict + CSV) | {py[0]:.1f} s | {py[2]:.0%} | {py[1]:.0f} MiB |")
    print(f"| ratio (Python / kerasgo) | {py[0] / go[0]:.2f}× | | {py[1] / go[1]:.2f}× |")
    print(f"| limit: the model calls alone, same batches | {limit:.2f} s | | |")
    print(f"| kerasgo's own share of its scoring time | {(scoring - limit) / scoring:.0%} | | |")
    if args.kerasgo_beam:
        bm = results[f"beam/{args.rows}"]
        print(f"| kerasgo-beam on Prism (loopback, one process) | {bm[0]:.2f} s | {bm[2]:.0%} | {bm[1]:.0f} MiB |")
        print(f"| Beam on Prism / kerasgo predict | {bm[0] / go[0]:.2f}× the time | | {bm[1] / go[1]:.2f}× |")
    if args.rows_go_only:
        big = results[f"kerasgo/{args.rows_go_only}"]
        print(f"| kerasgo predict, {args.rows_go_only} rows | {big[0]:.1f} s | {big[2]:.0%} | {big[1]:.0f} MiB |")

if __name__ == "__main__":
    main()
