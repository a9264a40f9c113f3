#!/usr/bin/env python3
"""Writes the loadgen's gRPC fixtures: for each REST predict body NAME.json,
NAME.pb is the PredictRequest TF Serving's official Python client builds for
the same call (tensorflow_serving.apis.predict_pb2, inputs from
tf.make_tensor_proto of a float32 NumPy array), serialized. The loadgen's
conversion of NAME.json must equal it (grpc_test.go). For the bodies of the
serving_default signature, NAME.oip.pb is the Open Inference Protocol's
ModelInferRequest that Triton's official client (tritonclient.grpc) builds
from the same float32 arrays, inputs in name order.

Usage (from the repository root, with the toolchain's Python):
    python cmd/kerasgo-loadgen/testdata/make_testdata.py
"""

import json
import os

import numpy as np
import tensorflow as tf
import tritonclient.grpc as triton
from tensorflow_serving.apis import predict_pb2
from tritonclient.grpc import _utils as triton_utils

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (body, signature the request names, {input: value})
ROWS = [[1, 2.5, -3, 0.1], [4, 5, 6, 1e-3], [0, 0, 0, 3.4028234e38]]
CASES = {
    "rows": ({"instances": ROWS}, "serving_default", {"features": ROWS}),
    "row_objects": ({"instances": [{"features": r} for r in ROWS]}, "serving_default", {"features": ROWS}),
    "named_columns": ({"signature_name": "predict", "inputs": {"features": ROWS, "bias": [0.5, -0.25, 1]}},
                      "predict", {"features": ROWS, "bias": [0.5, -0.25, 1]}),
    "one_row": ({"instances": [[(i % 7) / 10 for i in range(100)]]}, "serving_default",
                {"features": [[(i % 7) / 10 for i in range(100)]]}),
    "two_inputs": ({"inputs": {"features": ROWS, "bias": [0.5, -0.25, 1]}}, "serving_default",
                   {"features": ROWS, "bias": [0.5, -0.25, 1]}),
}


def main():
    for name, (body, signature, inputs) in CASES.items():
        with open(os.path.join(HERE, name + ".json"), "w") as f:
            json.dump(body, f)
            f.write("\n")
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "m"
        req.model_spec.signature_name = signature
        for key, value in inputs.items():
            req.inputs[key].CopyFrom(tf.make_tensor_proto(np.array(value, dtype=np.float32)))
        with open(os.path.join(HERE, name + ".pb"), "wb") as f:
            f.write(req.SerializeToString(deterministic=True))
        if signature != "serving_default":
            continue
        triton_inputs = []
        for key in sorted(inputs):
            array = np.array(inputs[key], dtype=np.float32)
            triton_inputs.append(triton.InferInput(key, list(array.shape), "FP32"))
            triton_inputs[-1].set_data_from_numpy(array)
        # The request InferenceServerClient.infer sends (its own builder).
        infer = triton_utils._get_inference_request(
            model_name="m", inputs=triton_inputs, model_version="", request_id="", outputs=None,
            sequence_id=0, sequence_start=False, sequence_end=False, priority=0, timeout=None, parameters=None)
        with open(os.path.join(HERE, name + ".oip.pb"), "wb") as f:
            f.write(infer.SerializeToString(deterministic=True))


if __name__ == "__main__":
    main()
