#!/usr/bin/env python3
"""make demo's live-traffic step: serve the model the demo retrained (its
training recorded the class mix of its validation rows) with request
logging, send traffic like the validation rows and read the findings
(none), then traffic that collapses onto one class and read them again.
Then score the request log with the bundled model, which says how often it
would have answered differently.

Usage: scripts/demo_traffic.py OUT_DIR   (run from the repository root;
standard library only)
"""

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.request

out = sys.argv[1]
model, logs = os.path.join(out, "retrained"), os.path.join(out, "logs")
shutil.rmtree(logs, ignore_errors=True)
window = 300


def libsvm_rows(path, n):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            x = [0.0] * 256
            for pair in line.split()[1:]:
                i, v = pair.split(":")
                x[int(i)] = float(v)
            rows.append(x)
    random.Random(1).shuffle(rows)
    return rows[:n]


serve = subprocess.Popen(["./bin/kerasgo", "serve", "--model", f"fortunes={model}", "--rest-port", "0", "--grpc-port", "-1",
                          "--request-log-dir", logs, "--traffic-window", str(window)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
try:
    url = None
    for line in serve.stderr:
        m = re.search(r"\baddress=(http://\S+)", line)
        if m:
            url = m.group(1)
            break
    if url is None:
        sys.exit("kerasgo serve did not start")

    def predict(rows):
        req = urllib.request.Request(url + "/v1/models/fortunes:predict", json.dumps({"instances": rows}).encode())
        return json.load(urllib.request.urlopen(req))["predictions"]

    def findings():
        body = json.load(urllib.request.urlopen(url + "/kerasgo/findings"))
        (v,) = body["versions"]
        return v

    rows = libsvm_rows("testdata/features/fortunes/test.libsvm", window)
    for i in range(0, window, 3):
        predict(rows[i:i + 3])
    v = findings()
    print(f"   {window} requests like the validation rows: GET /kerasgo/findings lists {len(v['findings'])} findings "
          f"(version {v['version']}, {v['rows']} rows, validated on: {v['validated_on']})")
    one = rows[0]
    for _ in range(window):
        predict([one])
    v = findings()
    print(f"   then {window} requests of one row again and again (a stuck feature pipeline):")
    for f in v["findings"]:
        print(f"     - {f['kind']}: {f['text'][:400]}{'...' if len(f['text']) > 400 else ''}")
    time.sleep(0.3)  # the log writes what it queued every 100 ms
    metrics = urllib.request.urlopen(url + "/metrics").read().decode()
    for line in metrics.splitlines():
        if line.startswith(("kerasgo_traffic_class_mix_distance", "kerasgo_request_log_records_total")):
            print(f"     {line}")
finally:
    serve.terminate()
    serve.wait(30)
time.sleep(0.1)
files = sorted(os.path.join(logs, f) for f in os.listdir(logs))
print(f"   the request log: {', '.join(files)}; scored again with the bundled model:")
run = subprocess.run(["./bin/kerasgo", "predict", "testdata/models/fortunes", "--output", os.path.join(out, "logged-again.csv")] +
                     [a for f in files for a in ("--input", f)], capture_output=True, text=True)
if run.returncode != 0:
    sys.exit(run.stderr)
for line in run.stderr.splitlines():
    print(f"     {line}")
