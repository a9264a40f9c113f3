#!/usr/bin/env python3
"""Soak and abuse test of `kerasgo serve`, on loopback only.

Serves a TF Serving base path holding the bundled fortunes model as version 1,
logging every request (a small --request-log-max-bytes, and the disk "full"
from 60% of the run on),
and sends, from many concurrent clients (bin/kerasgo-loadgen -mix), a mix of
valid small and large predict bodies, raw texts, malformed, oversized, deeply
nested, NaN and wrong-width bodies, a large body to an API the model lacks and
to an unknown model. Partway through, version 2 appears in the base path (a
version swap); near the end the server gets SIGTERM while the load goes on.

It samples the server's RSS every quarter second and reports the requests per
kind and status code, the connection errors (there must be none before the
SIGTERM) and RSS over time (its peak must stay under the bound
docs/serving.md gives for the configured limits). It exits 1 if either check
fails. Not a unit test: `make soak` runs it, for a few minutes.

Usage: python scripts/soak_serve.py --kerasgo bin/kerasgo --loadgen bin/kerasgo-loadgen [--seconds 150] [--clients 64]
"""

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MIB = 1 << 20


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


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


def bodies(tmp, dim):
    """Writes the request bodies; returns {name: (path, api)}."""
    rng = random.Random(0)

    def rows(n, width):
        return [[round(rng.random(), 2) for _ in range(width)] for _ in range(n)]

    large = json.dumps({"instances": rows(5000, dim)})
    texts = ["You will have a long and happy life.", "Beware of the dog.", "Fortune favours the bold."]
    made = {
        "valid small": (json.dumps({"instances": rows(1, dim)}), "predict"),
        "valid large (5,000 rows)": (large, "predict"),
        "valid columnar": (json.dumps({"inputs": rows(64, dim)}), "predict"),
        "raw texts": (json.dumps({"instances": texts * 20}), "predict"),
        "malformed (truncated)": (large[: len(large) // 2], "predict"),
        "oversized (20 MB)": ('{"instances": [' + ",".join(["[" + ",".join(["0.5"] * dim) + "]"] * 20000) + "]}", "predict"),
        "deeply nested": ('{"instances": ' + "[" * 100000 + "]" * 100000 + "}", "predict"),
        "NaN": ('{"instances": [[' + ",".join(["NaN"] + ["0"] * (dim - 1)) + "]]}", "predict"),
        "wrong width": (json.dumps({"instances": rows(100, dim - 1)}), "predict"),
        "large body to :classify": (large, "classify"),
        "large body to an unknown model": (large, "predict unknown"),
    }
    out = {}
    for i, (name, (body, api)) in enumerate(made.items()):
        path = os.path.join(tmp, f"body{i}.json")
        with open(path, "w") as f:
            f.write(body)
        out[name] = (path, api, len(body))
    return out


WEIGHTS = {
    "valid small": 30, "valid large (5,000 rows)": 8, "valid columnar": 10, "raw texts": 10,
    "malformed (truncated)": 6, "oversized (20 MB)": 3, "deeply nested": 4, "NaN": 4, "wrong width": 4,
    "large body to :classify": 4, "large body to an unknown model": 3,
}


LOG_FILE_MIB, LOG_TOTAL_MIB = 1, 8  # the request log's bounds


def read_logs(directory, files):
    """Reads every request log file with TensorFlow's TFRecord reader (a
    damaged record raises) and tensorflow-serving-api's PredictionLog."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    n = 0
    for f in files:
        for raw in tf.data.TFRecordDataset(os.path.join(directory, f)):
            prediction_log_pb2.PredictionLog.FromString(raw.numpy())
            n += 1
    return n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kerasgo", default="bin/kerasgo")
    p.add_argument("--loadgen", default="bin/kerasgo-loadgen")
    p.add_argument("--model", default=os.path.join(ROOT, "testdata/models/fortunes"))
    p.add_argument("--seconds", type=float, default=150)
    p.add_argument("--clients", type=int, default=64)
    p.add_argument("--port", type=int, default=18531)
    p.add_argument("--max-inflight-mib", type=int, default=256)
    p.add_argument("--max-body-mib", type=int, default=16)
    args = p.parse_args()
    meta = json.load(open(os.path.join(args.model, "assets", "kerasgo.json")))
    dim = meta["input_dim"]

    tmp = tempfile.mkdtemp(prefix="kerasgo-soak-")
    try:
        base = os.path.join(tmp, "base")
        shutil.copytree(args.model, os.path.join(base, "1"))
        made = bodies(tmp, dim)
        root = f"http://127.0.0.1:{args.port}/v1/models"
        urls = {"predict": f"{root}/f:predict", "classify": f"{root}/f:classify", "predict unknown": f"{root}/nosuch:predict"}
        mix = [{"name": name, "url": urls[api], "body": path, "weight": WEIGHTS[name]} for name, (path, api, _) in made.items()]
        mix_path = os.path.join(tmp, "mix.json")
        with open(mix_path, "w") as f:
            json.dump(mix, f)

        log = open(os.path.join(tmp, "serve.log"), "w")
        logs = os.path.join(tmp, "requests")
        server = subprocess.Popen([args.kerasgo, "serve", "--model", f"f={base}", "--rest-port", str(args.port),
                                   "--poll-interval", "1s", "--max-inflight-bytes", str(args.max_inflight_mib * MIB),
                                   "--max-body-bytes", str(args.max_body_mib * MIB),
                                   "--request-log-dir", logs, "--request-log-max-file-bytes", str(LOG_FILE_MIB * MIB),
                                   "--request-log-max-bytes", str(LOG_TOTAL_MIB * MIB)], stderr=log)
        wait_ready(f"http://127.0.0.1:{args.port}/readyz", server)
        ready_rss = rss_mib(server.pid)
        samples = []
        sampling = threading.Event()

        def sample():
            t0 = time.time()
            while not sampling.is_set():
                r = rss_mib(server.pid)
                if r is None or server.poll() is not None:
                    break
                samples.append((time.time() - t0, r))
                time.sleep(0.25)

        sampler = threading.Thread(target=sample)
        sampler.start()
        load = subprocess.Popen([args.loadgen, "-mix", mix_path, "-c", str(args.clients), "-d", f"{args.seconds}s"],
                                stdout=subprocess.PIPE, text=True)
        start = time.time()
        swap_at, full_at, term_at = start + args.seconds * 0.4, start + args.seconds * 0.6, start + args.seconds - 8
        time.sleep(max(0, swap_at - time.time()))
        # A new version appears atomically: copied beside, then renamed in.
        staging = os.path.join(base, ".staging-2")
        shutil.copytree(args.model, staging)
        os.rename(staging, os.path.join(base, "2"))
        swapped = time.time() - start
        # The disk fills up: from here on no file of the server's may grow
        # past 64 KiB (a file-size limit, set from outside, stands in for a
        # full disk). Its request log drops records; requests are answered.
        time.sleep(max(0, full_at - time.time()))
        resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (64 << 10, resource.RLIM_INFINITY))
        time.sleep(max(0, term_at - time.time() - 2))
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{args.port}/metrics", timeout=10).read().decode()
        logged = {name: sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(name + "{"))
                  for name in ("kerasgo_request_log_records_total", "kerasgo_request_log_dropped_total")}
        time.sleep(max(0, term_at - time.time()))
        term_ms = int(time.time() * 1000)
        server.send_signal(signal.SIGTERM)
        out, _ = load.communicate()
        sampling.set()
        sampler.join()
        code = server.wait(timeout=60)
        result = json.loads(out)
        log_files = sorted(os.listdir(logs))
        log_bytes = sum(os.path.getsize(os.path.join(logs, f)) for f in log_files)
        log_records = read_logs(logs, log_files)
    finally:
        log_text = open(os.path.join(tmp, "serve.log")).read() if os.path.exists(os.path.join(tmp, "serve.log")) else ""
        shutil.rmtree(tmp, ignore_errors=True)

    swapped_in = "version=2" in log_text
    before_term = [e for e in result["first_connection_errors"] if e["unix_ms"] < term_ms]
    peak = max(r for _, r in samples)
    n = len(samples)
    halves = [max(r for _, r in samples[: n // 2]), max(r for _, r in samples[n // 2:])]
    # The bound of docs/serving.md: RSS once ready, plus twice the bytes
    # requests may reserve (the Go heap's garbage collection target), plus
    # TensorFlow's working set for the batches in flight and the connections.
    bound = ready_rss + 2 * args.max_inflight_mib + 128

    total = sum(sum(c.values()) for c in result["codes"].values())
    print(json.dumps({"clients": args.clients, "seconds": result["seconds"], "requests": total,
                      "codes": result["codes"], "connection_errors": result["connection_errors"],
                      "connection_errors_before_sigterm": len(before_term), "server_exit": code,
                      "version_2_loaded": swapped_in, "rss_ready_mib": ready_rss, "rss_peak_mib": peak,
                      "rss_peak_by_half_mib": halves, "rss_bound_mib": bound}))
    print(f"\n{total:,} requests from {args.clients} clients in {result['seconds']:.0f} s; version 2 copied in at "
          f"{swapped:.0f} s ({'loaded' if swapped_in else 'NOT loaded'}); SIGTERM at {args.seconds - 8:.0f} s, server exit {code}\n")
    codes = sorted({c for kinds in result["codes"].values() for c in kinds})
    print("| request | bytes | " + " | ".join(codes) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in codes) + " |")
    for name, (_, _, size) in made.items():
        row = result["codes"].get(name, {})
        print(f"| {name} | {size:,} | " + " | ".join(f"{row.get(c, 0):,}" for c in codes) + " |")
    print(f"\nconnection errors: {result['connection_errors']:,} in all, {len(before_term)} before SIGTERM"
          + (f" (first: {result['first_connection_errors'][0]})" if before_term else ""))
    print(f"RSS: {ready_rss:.0f} MiB once ready, peak {peak:.0f} MiB (first half {halves[0]:.0f}, second half {halves[1]:.0f}); "
          f"bound {bound:.0f} MiB for --max-inflight-bytes {args.max_inflight_mib} MiB")
    failed = []
    if before_term:
        failed.append("connection errors before SIGTERM")
    if peak > bound:
        failed.append("RSS above the bound")
    if code != 0:
        failed.append(f"server exited {code} after SIGTERM")
    if not swapped_in:
        failed.append("version 2 was not loaded")
    print(f"request log: {logged['kerasgo_request_log_records_total']:,.0f} records written and "
          f"{logged['kerasgo_request_log_dropped_total']:,.0f} dropped (the disk full from {args.seconds * 0.6:.0f} s); "
          f"{len(log_files)} files of {log_bytes / MIB:.1f} MiB (bound {LOG_TOTAL_MIB} MiB) holding {log_records:,} records, "
          "all read by TensorFlow's TFRecord reader")
    if log_bytes > LOG_TOTAL_MIB * MIB:
        failed.append("request log files past --request-log-max-bytes")
    if not logged["kerasgo_request_log_dropped_total"] or not logged["kerasgo_request_log_records_total"]:
        failed.append("the full disk did not show in the request log's counts")
    if failed:
        print("FAILED: " + "; ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
