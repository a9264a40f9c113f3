#!/usr/bin/env python3
"""Serving benchmark, loopback only: kerasgo serve under its batching
policies against the Python server a team would deploy.

For each model (testdata/models/fortunes, D=256; the same weights as plain
Keras model.export() wrote them, testdata/models/fortunes_export, which
kerasgo batches as any model whose signature maps one float32 matrix to
another; and the question's model at D=10,000), all servers run at once on their own ports, and single-row predict
requests come from bin/kerasgo-loadgen at 1, 4, 16, 64 and 256 concurrent
clients, a few seconds a point:

  kerasgo adaptive   kerasgo serve with its defaults (adaptive batching)
  kerasgo 0s         --batch-timeout 0s (TF Serving's fixed policy, no wait)
  kerasgo 2ms        --batch-timeout 2ms (the fixed policy, the old default)
  uvicorn            scripts/serve_uvicorn.py: Starlette under uvicorn, one
                     worker per core

kerasgo is called over REST and over TF Serving's gRPC API (one
PredictRequest with a float32 tensor_content tensor, over one multiplexed
connection), and its default server also over the Open Inference Protocol:
REST (the same row as a JSON tensor) and gRPC (ModelInfer with the row as
raw_input_contents, as Triton's client sends it). Every point of a repetition runs before the next repetition
starts, so the servers share the machine's drift. Prints JSON lines, then a
table per model and API: requests/s and p50/p99 latency, medians over the
repetitions, with adaptive's throughput over the better fixed setting's and
over uvicorn's, then each repetition's adaptive / best fixed ratio.

Usage: python scripts/bench_serve.py --kerasgo bin/kerasgo --loadgen bin/kerasgo-loadgen --model DIR
       [--seconds 5] [--reps 2] [--clients 1,4,16,64,256] [--only fortunes,plain,question]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def wait_ready(url, proc, body=None, timeout=180):
    """Waits until url answers 200 (a POST of body when given)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early ({proc.returncode})")
        try:
            req = urllib.request.Request(url, data=body, method="POST" if body else "GET")
            with urllib.request.urlopen(req, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
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


KERASGO = (("kerasgo adaptive", []), ("kerasgo 0s", ["--batch-timeout", "0s"]),
           ("kerasgo 2ms", ["--batch-timeout", "2ms"]))


def bench_model(args, label, model_dir, row, port, clients, results):
    """Serves model_dir from every server and loads them, --reps times."""
    body = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"instances": [row]}, body)
    body.close()
    # The same row as an Open Inference Protocol request (JSON tensor).
    v2body = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, len(row)], "data": row}]}, v2body)
    v2body.close()
    procs, targets = [], []
    try:
        for i, (name, flags) in enumerate(KERASGO):
            rest, grpc = port + 2 * i, port + 2 * i + 1
            p = subprocess.Popen([args.kerasgo, "serve", "--model", f"m={model_dir}", "--rest-port", str(rest),
                                  "--grpc-port", str(grpc), *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(p)
            wait_ready(f"http://127.0.0.1:{rest}/readyz", p)
            wait_port(grpc, p)
            targets.append((name, "REST", ["-url", f"http://127.0.0.1:{rest}/v1/models/m:predict"], body.name))
            targets.append((name, "gRPC", ["-grpc", f"127.0.0.1:{grpc}", "-model", "m", "-signature", "serving_default"],
                            body.name))
            if not flags:
                targets.append((name, "OIP REST", ["-url", f"http://127.0.0.1:{rest}/v2/models/m/infer"], v2body.name))
                targets.append((name, "OIP gRPC", ["-grpc", f"127.0.0.1:{grpc}", "-model", "m", "-protocol", "oip"],
                                body.name))
        uport = port + 2 * len(KERASGO)
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "serve_uvicorn.py"), model_dir, str(uport)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        url = f"http://127.0.0.1:{uport}/v1/models/m:predict"
        # Every worker loads the model on its own; wait until requests from
        # as many clients as workers are answered.
        with open(body.name, "rb") as f:
            payload = f.read()
        wait_ready(url, p, payload)
        targets.append(("uvicorn", "REST", ["-url", url], body.name))
        for rep in range(args.reps):
            for c in clients:
                for name, api, target, payload_file in targets:
                    r = load(args.loadgen, target, payload_file, c, args.seconds)
                    results.setdefault((label, api, name, c), []).append(r)
                    print(json.dumps({"model": label, "api": api, "server": name, "clients": c, "rep": rep, **r}),
                          flush=True)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
        os.unlink(body.name)
        os.unlink(v2body.name)


def med(rs, key):
    return statistics.median(r[key] for r in rs)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kerasgo", default="bin/kerasgo")
    p.add_argument("--loadgen", default="bin/kerasgo-loadgen")
    p.add_argument("--model", help="the question's model at D=10,000 (needed unless --only leaves it out)")
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--clients", default="1,4,16,64,256")
    p.add_argument("--only", default="fortunes,plain,question", help="the models to serve, by short name")
    args = p.parse_args()
    only = args.only.split(",")
    if unknown := set(only) - {"fortunes", "plain", "question"}:
        p.error(f"--only: unknown models {sorted(unknown)}; the models are fortunes, plain and question")
    if "question" in only and not args.model:
        p.error("--model is required to serve the question's model")
    clients = [int(c) for c in args.clients.split(",")]
    fortunes = os.path.join(ROOT, "testdata", "models", "fortunes")
    fortunes_row = np.load(os.path.join(ROOT, "testdata", "golden", "fortunes_inputs.npy"))[0].tolist()
    rng = np.random.default_rng(0)
    question_row = (rng.integers(0, 100, size=10000) == 0).astype(int).tolist()
    results = {}
    models = [m for m in [
        ("fortunes", "fortunes (D=256)", fortunes, fortunes_row, 18600),
        ("plain", "fortunes, plain Keras export (D=256)", os.path.join(ROOT, "testdata", "models", "fortunes_export"),
         fortunes_row, 18640),
        ("question", "question (D=10,000)", args.model and os.path.abspath(args.model), question_row, 18620),
    ] if m[0] in only]
    for _, label, model_dir, row, port in models:
        bench_model(args, label, model_dir, row, port, clients, results)
    print(f"\n{args.reps} repetitions of {args.seconds:g} s a point; medians. Ratios: kerasgo adaptive's "
          "requests/s over the better fixed setting's and over uvicorn's.")
    for _, label, *_ in models:
        for api in ("REST", "gRPC"):
            names = [n for n, _ in KERASGO] + (["uvicorn"] if api == "REST" else [])
            print(f"\n{label}, {api}:\n")
            print("| clients | " + " | ".join(f"{n}: req/s, p50, p99 ms" for n in names) +
                  " | adaptive / best fixed | adaptive / uvicorn |")
            print("| --- |" + " --- |" * (len(names) + 2))
            for c in clients:
                cells, rps = [], {}
                for n in names:
                    rs = results[(label, api, n, c)]
                    rps[n] = med(rs, "rps")
                    cells.append(f"{rps[n]:,.0f}, {med(rs, 'p50_ms'):.2f}, {med(rs, 'p99_ms'):.2f}")
                best = max(rps["kerasgo 0s"], rps["kerasgo 2ms"])
                vs_uv = f"{rps['kerasgo adaptive'] / rps['uvicorn']:.2f}×" if "uvicorn" in rps and rps["uvicorn"] else ""
                print(f"| {c} | " + " | ".join(cells) + f" | {rps['kerasgo adaptive'] / best:.2f}× | {vs_uv} |")
    for _, label, *_ in models:
        print(f"\n{label}, the Open Inference Protocol (kerasgo adaptive; REST: the row as a JSON tensor, gRPC: "
              "raw_input_contents), against TF Serving's API over the same transport on the same server:\n")
        print("| clients | OIP REST: req/s, p50, p99 ms | OIP REST / TF Serving REST "
              "| OIP gRPC: req/s, p50, p99 ms | OIP gRPC / TF Serving gRPC |")
        print("| --- | --- | --- | --- | --- |")
        for c in clients:
            cells = []
            for api in ("REST", "gRPC"):
                oip, tfs = results[(label, "OIP " + api, "kerasgo adaptive", c)], results[(label, api, "kerasgo adaptive", c)]
                cells.append(f"{med(oip, 'rps'):,.0f}, {med(oip, 'p50_ms'):.2f}, {med(oip, 'p99_ms'):.2f} | "
                             f"{med(oip, 'rps') / med(tfs, 'rps'):.2f}×")
            print(f"| {c} | " + " | ".join(cells) + " |")
    print("\nAdaptive over the better fixed setting, each repetition's ratio (the servers ran side by side): "
          "median (min–max):\n")
    print("| model, API | " + " | ".join(str(c) for c in clients) + " |")
    print("| --- |" + " --- |" * len(clients))
    for short, label, *_ in models:
        for api in ("REST", "gRPC"):
            cells = []
            for c in clients:
                ratios = sorted(a["rps"] / max(z["rps"], t["rps"]) for a, z, t in zip(
                    results[(label, api, "kerasgo adaptive", c)], results[(label, api, "kerasgo 0s", c)],
                    results[(label, api, "kerasgo 2ms", c)]))
                cells.append(f"{statistics.median(ratios):.2f}× ({ratios[0]:.2f}–{ratios[-1]:.2f})")
            print(f"| {short}, {api} | " + " | ".join(cells) + " |")
    for key, rs in results.items():
        for r in rs:
            if r["errors"]:
                print(f"{key}: {r['errors']} errors, the first: {r['first_error']}", file=sys.stderr)


if __name__ == "__main__":
    main()
