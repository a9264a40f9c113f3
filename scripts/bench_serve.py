#!/usr/bin/env python3
"""Serving benchmark, loopback only: kerasgo serve (with and without dynamic
batching) against a Python http.server calling the same SavedModel.

Single-row predict requests for the question's architecture (D=10,000, C=20)
from 1, 16 and 64 concurrent clients (bin/kerasgo-loadgen), a bounded time
each. The batching kerasgo server is also called over TF Serving's gRPC API
(PredictionService/Predict) with the same row, which the load generator turns
into one PredictRequest (a float32 [1, 10000] tensor_content tensor, as
tf.make_tensor_proto builds it) and sends over one multiplexed connection;
REST and gRPC alternate at each client count. Prints JSON lines, a Markdown
table with throughput and p50/p99 latency and the ratios to the Python
baseline, and a second table of gRPC against REST on the batching server.

Usage: python scripts/bench_serve.py --kerasgo bin/kerasgo --loadgen bin/kerasgo-loadgen --model DIR [--seconds 8]
"""

import argparse
import json
import os
import socket
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


def wait_port(port, proc, timeout=60):
    """Waits until 127.0.0.1:port accepts connections."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"127.0.0.1:{port} never accepted a connection")


def load(loadgen, target, body, clients, seconds):
    """Runs the load generator once; target is its -url or -grpc arguments."""
    out = subprocess.run([loadgen, *target, "-body", body, "-c", str(clients), "-d", f"{seconds}s"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"kerasgo-loadgen {' '.join(target)} -c {clients}: {out.stderr.strip()}")
    return json.loads(out.stdout)


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
    # (name, argv, REST port, gRPC port or None): the batching server also
    # answers gRPC, reported as grpc_name.
    # The Python server's readiness probe is a predict call.
    grpc_name = "kerasgo gRPC, batching"
    servers = [
        ("kerasgo, batching", [args.kerasgo, "serve", "--model", f"m={args.model}", "--rest-port", "18511",
                               "--grpc-port", "18521", "--max-batch-size", "64", "--batch-timeout", "2ms"],
         18511, 18521),
        ("kerasgo, no batching", [args.kerasgo, "serve", "--model", f"m={args.model}", "--rest-port", "18512",
                                  "--grpc-port=-1", "--max-batch-size", "1"], 18512, None),
        ("Python http.server", [sys.executable, os.path.join(HERE, "serve_python.py"), args.model, "18513"],
         18513, None),
    ]
    results = {}
    try:
        for name, argv, port, grpc_port in servers:
            proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                url = f"http://127.0.0.1:{port}/v1/models/m:predict"
                if "kerasgo" in name:
                    wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
                    if grpc_port is not None:
                        wait_port(grpc_port, proc)
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
                runs = [(name, ["-url", url])]
                if grpc_port is not None:
                    runs.append((grpc_name, ["-grpc", f"127.0.0.1:{grpc_port}", "-model", "m",
                                             "-signature", "serving_default"]))
                for clients in (1, 16, 64):
                    for run_name, target in runs:
                        r = load(args.loadgen, target, body.name, clients, args.seconds)
                        results[(run_name, clients)] = r
                        print(json.dumps({"server": run_name, **r}), flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
    finally:
        os.unlink(body.name)
    base = "Python http.server"
    print("\n| server | clients | requests/s | p50 ms | p99 ms | throughput vs Python | p99 vs Python |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    names = [name for name, *_ in servers]
    names.insert(names.index("kerasgo, batching") + 1, grpc_name)
    for name in names:
        for c in (1, 16, 64):
            r, b = results[(name, c)], results[(base, c)]
            print(f"| {name} | {c} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                  f"{ratio(r['rps'], b['rps'])} | {ratio(r['p99_ms'], b['p99_ms'])} |")
    print("\ngRPC vs REST, kerasgo batching server:\n")
    print("| clients | REST requests/s | gRPC requests/s | throughput gRPC/REST | REST p99 ms | gRPC p99 ms | p99 gRPC/REST |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for c in (1, 16, 64):
        rest, grpc = results[("kerasgo, batching", c)], results[(grpc_name, c)]
        print(f"| {c} | {rest['rps']:.0f} | {grpc['rps']:.0f} | {ratio(grpc['rps'], rest['rps'])} | "
              f"{rest['p99_ms']:.1f} | {grpc['p99_ms']:.1f} | {ratio(grpc['p99_ms'], rest['p99_ms'])} |")
    for (name, c), r in results.items():
        if r["errors"]:
            print(f"{name}, {c} clients: {r['errors']} errors, the first: {r['first_error']}", file=sys.stderr)


def ratio(a, b):
    """a / b as the tables print it, or n/a when b is 0 (no answered request)."""
    return f"{a / b:.2f}×" if b else "n/a"


if __name__ == "__main__":
    main()
