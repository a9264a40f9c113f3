#!/usr/bin/env python3
"""What a version swap costs the requests that follow it, with and without
TF Serving's warmup records.

A client sends single-row Open Inference Protocol requests (whose answers
name the version) to `kerasgo serve` one after another. Version 1 of the
question's model serves; a few seconds in, version 2 (the same export)
appears under the base path, with assets.extra/tf_serving_warmup_requests
written as TF Serving's guide writes it (tf.io.TFRecordWriter over
PredictionLog) holding --records single-row predict requests. The server
runs once with warmup (its default) and once with --enable-model-warmup=false,
interleaved over --reps repetitions. Reported: the latency of the first
requests version 2 answered, against version 1's steady state. Nothing is
asserted.

Usage: python scripts/bench_warmup.py --kerasgo bin/kerasgo --model DIR [--reps 3] [--records 10]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def write_warmup(version_dir, row, records):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2
    os.makedirs(os.path.join(version_dir, "assets.extra"), exist_ok=True)
    with tf.io.TFRecordWriter(os.path.join(version_dir, "assets.extra", "tf_serving_warmup_requests")) as w:
        for _ in range(records):
            req = predict_pb2.PredictRequest()
            req.model_spec.name = "m"
            req.inputs["features"].CopyFrom(tf.make_tensor_proto(np.array([row], np.float32)))
            w.write(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=req)).SerializeToString())


def one_run(args, warmup, row, tmp):
    base = os.path.join(tmp, f"m-{warmup}")
    shutil.rmtree(base, ignore_errors=True)
    shutil.copytree(args.model, os.path.join(base, "1"))
    argv = [args.kerasgo, "serve", "--model", f"m={base}", "--rest-port", "0", "--grpc-port", "-1",
            "--poll-interval", "200ms", f"--enable-model-warmup={str(warmup).lower()}"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    address = None
    for line in proc.stderr:
        m = re.search(r"\baddress=(http://\S+)", line)
        if m:
            address = m.group(1)
            break
    if address is None:
        raise SystemExit(f"{' '.join(argv)} did not start")
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    body = json.dumps({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, len(row)], "data": row}]}).encode()
    seen, stop = [], threading.Event()

    def client():
        while not stop.is_set():
            t = time.perf_counter()
            with urllib.request.urlopen(urllib.request.Request(address + "/v2/models/m/infer", data=body), timeout=60) as r:
                version = json.load(r)["model_version"]
            seen.append((version, time.perf_counter() - t))

    th = threading.Thread(target=client)
    th.start()
    try:
        time.sleep(3)
        staged = os.path.join(base, ".staging-2")
        shutil.copytree(args.model, staged)
        if warmup:
            write_warmup(staged, row, args.records)
        os.rename(staged, os.path.join(base, "2"))
        deadline = time.time() + 60
        while sum(1 for v, _ in seen if v == "2") < args.after and time.time() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        th.join()
        proc.terminate()
        proc.wait(30)
    before = [lat for v, lat in seen if v == "1"][-200:]
    after = [lat for v, lat in seen if v == "2"][:args.after]
    return statistics.median(before), after


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--kerasgo", default="bin/kerasgo")
    p.add_argument("--model", required=True, help="an export of the question's model (D=10,000)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--records", type=int, default=10, help="warmup records in version 2")
    p.add_argument("--after", type=int, default=20, help="requests of version 2 reported")
    args = p.parse_args()
    with open(os.path.join(args.model, "assets", "kerasgo.json"), encoding="utf-8") as f:
        dim = json.load(f)["input_dim"]
    row = (np.random.default_rng(0).integers(0, 100, size=dim) == 0).astype(float).tolist()
    runs = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for warmup in (True, False):
                steady, after = one_run(args, warmup, row, tmp)
                runs[warmup].append((steady, after))
                print(json.dumps({"warmup": warmup, "rep": rep, "steady_ms": round(steady * 1e3, 2),
                                  "first_ms": [round(x * 1e3, 2) for x in after[:5]],
                                  "max_ms": round(max(after) * 1e3, 2)}), file=sys.stderr, flush=True)
    print(f"\n{args.reps} interleaved repetitions; single-row requests from one client; version 2 appears "
          f"mid-run{' with ' + str(args.records) + ' warmup records' if args.records else ''}. Medians over the repetitions.\n")
    print("| server | version 1, steady p50 | version 2: first request | slowest of its first "
          f"{args.after} | median of its first {args.after} |")
    print("| --- | --- | --- | --- | --- |")
    for warmup in (True, False):
        rs = runs[warmup]
        med = lambda xs: statistics.median(xs) * 1e3  # noqa: E731
        print(f"| {'warmup (default)' if warmup else '--enable-model-warmup=false'} | {med([s for s, _ in rs]):.2f} ms | "
              f"{med([a[0] for _, a in rs]):.2f} ms | {med([max(a) for _, a in rs]):.2f} ms | "
              f"{med([statistics.median(a) for _, a in rs]):.2f} ms |")


if __name__ == "__main__":
    main()
