#!/usr/bin/env python3
"""The usual Python way to serve a SavedModel: a threaded http.server calling
the model's serving signature. The baseline of `make bench`'s serving
benchmark; it speaks the subset of TF Serving's REST API the benchmark uses
(POST /v1/models/NAME:predict with {"instances": [...]}).

Usage: python scripts/serve_python.py MODEL_DIR PORT   (binds 127.0.0.1)
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

model = tf.saved_model.load(sys.argv[1])
serve = model.signatures["serving_default"]
input_key = list(serve.structured_input_signature[1])[0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        x = tf.constant(np.asarray(body["instances"], dtype=np.float32))
        out = next(iter(serve(**{input_key: x}).values())).numpy()
        data = json.dumps({"predictions": out.tolist()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler).serve_forever()
