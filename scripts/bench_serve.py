#!/usr/bin/env python3
"""Serving benchmark, loopback only: kerasgo serve (with and without dynamic
batching) against a Python http.server calling the same SavedModel.

Single-row predict requests for the question's architecture (D=10,000, C=20)
from 1, 16 and 64 concurrent clients (bin/kerasgo-loadgen), a bounded time
each. Prints JSON lines and a Markdown table with throughput and p50/p99
latency, and the ratios to the Python baseline.

Usage: python scripts/bench_serve.py --kerasgo bin/kerasgo --loadgen bin/kerasgo-loadgen --model DIR [--seconds 8]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def wait_ready(url, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} never became ready")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kerasgo", default="bin/kerasgo")
    p.add_argument("--loadgen", default="bin/kerasgo-loadgen")
    p.add_argument("--model", required=True)
    p.add_argument("--seconds", type=float, default=8)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    row = (rng.integers(0, 100, size=10000) == 0).astype(int).tolist()
    body = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"instances": [row]}, body)
    body.close()
    # The Python server's readiness probe is a predict call.
    servers = [
        ("kerasgo, batching", [args.kerasgo, "serve", "--model", f"m={args.model}", "--rest-port", "18511",
                               "--max-batch-size", "64", "--batch-timeout", "2ms"], 18511),
        ("kerasgo, no batching", [args.kerasgo, "serve", "--model", f"m={args.model}", "--rest-port", "18512",
                                  "--max-batch-size", "1"], 18512),
        ("Python http.server", [sys.executable, os.path.join(HERE, "serve_python.py"), args.model, "18513"], 18513),
    ]
    results = {}
    try:
        for name, argv, port in servers:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                url = f"http://127.0.0.1:{port}/v1/models/m:predict"
                if "kerasgo" in name:
                    wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
                else:
                    deadline = time.time() + 120
                    while True:
                        try:
                            req = urllib.request.Request(url, data=open(body.name, "rb").read(), method="POST")
                            urllib.request.urlopen(req, timeout=5).read()
                            break
                        except OSError:
                            if time.time() > deadline or proc.poll() is not None:
                                raise SystemExit("python server never became ready")
                            time.sleep(0.5)
                for clients in (1, 16, 64):
                    out = subprocess.run([args.loadgen, "-url", url, "-body", body.name, "-c", str(clients),
                                          "-d", f"{args.seconds}s"], capture_output=True, text=True, check=True)
                    r = json.loads(out.stdout)
                    results[(name, clients)] = r
                    print(json.dumps({"server": name, **r}), flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
    finally:
        os.unlink(body.name)
    base = "Python http.server"
    print("\n| server | clients | requests/s | p50 ms | p99 ms | throughput vs Python | p99 vs Python |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, _, _ in servers:
        for c in (1, 16, 64):
            r, b = results[(name, c)], results[(base, c)]
            print(f"| {name} | {c} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                  f"{r['rps'] / b['rps']:.2f}× | {r['p99_ms'] / b['p99_ms']:.2f}× |")


if __name__ == "__main__":
    main()
