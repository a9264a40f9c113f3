#!/usr/bin/env python3
"""What request logging costs a request, loopback only: kerasgo serve with
defaults, and the same server logging every request (--request-log-dir,
sampling 1), side by side in one run, under single-row predicts from
bin/kerasgo-loadgen over REST and gRPC, on the fortunes model (D=256) and
the question's model at D=10,000. Repetitions are interleaved: every point
of one runs before the next starts.

Prints JSON lines, then per model and API the requests/s and p50/p99 of
both, the ratio (logging / off, median of the per-repetition ratios, with
their range), and what the log wrote (MB/s, records dropped).

Usage: python scripts/bench_requestlog.py --kerasgo bin/kerasgo --loadgen bin/kerasgo-loadgen --model DIR
       [--seconds 3] [--reps 3] [--clients 1,16,64]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import urllib.request

import numpy as np

from bench_serve import ROOT, load, wait_port, wait_ready

SERVERS = ("off", "log every request")


def metric(rest, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{rest}/metrics", timeout=30).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def bench_model(args, label, model_dir, row, port, clients, results, written):
    body = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"instances": [row]}, body)
    body.close()
    logs = tempfile.mkdtemp(prefix="kerasgo-bench-logs-")
    procs, targets = [], []
    try:
        for i, name in enumerate(SERVERS):
            rest, grpc = port + 2 * i, port + 2 * i + 1
            flags = ["--request-log-dir", logs] if name != "off" else []
            p = subprocess.Popen([args.kerasgo, "serve", "--model", f"m={model_dir}", "--rest-port", str(rest),
                                  "--grpc-port", str(grpc), *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            wait_ready(f"http://127.0.0.1:{rest}/readyz", p)
            wait_port(grpc, p)
            targets.append((name, "REST", ["-url", f"http://127.0.0.1:{rest}/v1/models/m:predict"]))
            targets.append((name, "gRPC", ["-grpc", f"127.0.0.1:{grpc}", "-model", "m", "-signature", "serving_default"]))
        logged = port + 2  # the logging server's REST port
        seconds = 0.0
        for rep in range(args.reps):
            for c in clients:
                for name, api, target in targets:
                    r = load(args.loadgen, target, body.name, c, args.seconds)
                    results.setdefault((label, api, name, c), []).append(r)
                    if name != "off":
                        seconds += args.seconds
                    print(json.dumps({"model": label, "api": api, "server": name, "clients": c, "rep": rep, **r}), flush=True)
        written[label] = (metric(logged, "kerasgo_request_log_bytes_total") / seconds / 1e6,
                          metric(logged, "kerasgo_request_log_records_total"),
                          metric(logged, "kerasgo_request_log_dropped_total"))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
        os.unlink(body.name)
        shutil.rmtree(logs, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kerasgo", default="bin/kerasgo")
    p.add_argument("--loadgen", default="bin/kerasgo-loadgen")
    p.add_argument("--model", required=True, help="the question's model at D=10,000")
    p.add_argument("--seconds", type=float, default=3)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--clients", default="1,16,64")
    args = p.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    fortunes_row = np.load(os.path.join(ROOT, "testdata", "golden", "fortunes_inputs.npy"))[0].tolist()
    question_row = (np.random.default_rng(0).integers(0, 100, size=10000) == 0).astype(int).tolist()
    models = [("fortunes (D=256)", os.path.join(ROOT, "testdata", "models", "fortunes"), fortunes_row, 18700),
              ("question (D=10,000)", os.path.abspath(args.model), question_row, 18720)]
    results, written = {}, {}
    for label, model_dir, row, port in models:
        bench_model(args, label, model_dir, row, port, clients, results, written)
    print(f"\n{args.reps} interleaved repetitions of {args.seconds:g} s a point; medians, and the ratio's range over "
          "the repetitions.")
    for label, *_ in models:
        mbs, records, dropped = written[label]
        print(f"\n{label}: the log took {mbs:.1f} MB/s on average over the logging server's points "
              f"({records:,.0f} records, {dropped:,.0f} dropped).\n")
        print("| API | clients | off: req/s, p50, p99 ms | logging: req/s, p50, p99 ms | logging / off (range) |")
        print("| --- | --- | --- | --- | --- |")
        for api in ("REST", "gRPC"):
            for c in clients:
                off, on = results[(label, api, "off", c)], results[(label, api, "log every request", c)]
                ratios = [b["rps"] / a["rps"] for a, b in zip(off, on)]
                cell = lambda rs: (f"{statistics.median(r['rps'] for r in rs):,.0f}, "
                                   f"{statistics.median(r['p50_ms'] for r in rs):.2f}, {statistics.median(r['p99_ms'] for r in rs):.2f}")
                print(f"| {api} | {c} | {cell(off)} | {cell(on)} | {statistics.median(ratios):.2f}× "
                      f"({min(ratios):.2f}–{max(ratios):.2f}) |")


if __name__ == "__main__":
    main()
