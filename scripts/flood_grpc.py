#!/usr/bin/env python3
"""Flood `kerasgo serve`'s gRPC API with large Predict messages and report its peak RSS.

Each of --clients clients (threads of TF Serving's official Python client,
tensorflow-serving-api, over their own channels) sends one PredictRequest of
about --mb MB (a float32 tensor_content of rows x the model's width), all at
once, --rounds times. The server's peak RSS is read from /proc/PID/status
(VmHWM, the kernel's high-water mark), against the bound of docs/serving.md:

    RSS once ready + 2 x --max-inflight-bytes + 128 MiB
      + clients x 1 MiB (the flow-control windows of the clients' connections;
        docs/serving.md counts --max-connections of them)

Prints one JSON line per run and exits 1 when the peak passes the bound.

Usage: flood_grpc.py --kerasgo bin/kerasgo --model testdata/models/fortunes --clients 48 [--mb 100]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

MIB = 1 << 20


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def start(args) -> tuple[subprocess.Popen, str]:
    cmd = [args.kerasgo, "serve", "--model", f"m={args.model}", "--rest-port", "0", "--grpc-port", "0",
           "--poll-interval", "0", "--max-inflight-bytes", str(args.max_inflight_mib * MIB),
           "--max-grpc-message-bytes", str(args.max_message_mib * MIB)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    for line in proc.stderr:
        m = re.search(r"\bgrpc_address=(\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, m.group(1)
        if time.time() > deadline:
            break
    proc.kill()
    sys.exit(f"{' '.join(cmd)}: no gRPC address on stderr")


def request(width: int, mb: float) -> predict_pb2.PredictRequest:
    rows = max(1, int(mb * 1e6) // (4 * width))
    x = np.random.default_rng(0).random((rows, width), dtype=np.float32)
    t = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=x.tobytes(),
                               tensor_shape=tensor_shape_pb2.TensorShapeProto(
                                   dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=rows),
                                        tensor_shape_pb2.TensorShapeProto.Dim(size=width)]))
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "m"
    req.inputs["features"].CopyFrom(t)
    return req


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kerasgo", default="bin/kerasgo")
    ap.add_argument("--model", default="testdata/models/fortunes")
    ap.add_argument("--width", type=int, default=256, help="the model's input width")
    ap.add_argument("--clients", type=int, default=48)
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--max-inflight-mib", type=int, default=256, help="kerasgo serve's default")
    ap.add_argument("--max-message-mib", type=int, default=128, help="kerasgo serve's default")
    args = ap.parse_args()

    proc, address = start(args)
    try:
        time.sleep(1)
        ready = status_kib(proc.pid, "VmRSS") * 1024
        req = request(args.width, args.mb)
        codes: dict[str, int] = {}
        lock = threading.Lock()

        def client():
            with grpc.insecure_channel(address, options=[("grpc.max_send_message_length", -1),
                                                         ("grpc.max_receive_message_length", -1)]) as ch:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
                for _ in range(args.rounds):
                    try:
                        stub.Predict(req, timeout=120)
                        code = "OK"
                    except grpc.RpcError as e:
                        code = e.code().name
                    with lock:
                        codes[code] = codes.get(code, 0) + 1

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        start_t = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.time() - start_t
        peak = status_kib(proc.pid, "VmHWM") * 1024
        alive = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(30)
    bound = ready + 2 * args.max_inflight_mib * MIB + 128 * MIB + args.clients * MIB
    out = {"clients": args.clients, "message_mb": args.mb, "rounds": args.rounds, "codes": codes,
           "rss_ready_mib": round(ready / MIB), "rss_peak_mib": round(peak / MIB), "bound_mib": round(bound / MIB),
           "server_alive": alive, "seconds": round(took, 1)}
    print(json.dumps(out))
    return 0 if peak <= bound and alive else 1


if __name__ == "__main__":
    sys.exit(main())
