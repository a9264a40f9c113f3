"""Every fixed-width element type through `kerasgo serve`, with each API's
official client: NVIDIA Triton's tritonclient over the Open Inference
Protocol (HTTP with JSON and with binary data, gRPC with raw contents), TF
Serving's tensorflow-serving-api over gRPC (tensor_content and the typed
fields), and TF Serving's REST JSON.

The model is testdata/models/dtypes, made by TensorFlow
(scripts/make_dtypes_model.py): an input x_<dtype> of shape [None] for BOOL,
INT8 to INT64, UINT8 to UINT64, FP16, FP32 and FP64, and y_<dtype> = x*2+1 in
the same dtype (not x for BOOL). Inputs are drawn over each type's whole
range, so products wrap; every expected value is what TensorFlow's own
loaded SavedModel answers for the same inputs, and each answer must equal
it exactly, in value and dtype.
"""

import json
import os
import shutil
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tensorflow_serving.apis import predict_pb2

from test_grpc_client import REPO, RPC_TIMEOUT, Server, write_config

MODEL = os.path.join(REPO, "testdata", "models", "dtypes")
DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float16", "float32", "float64"]
OIP = {"bool": "BOOL", "float16": "FP16", "float32": "FP32", "float64": "FP64"}


def oip_datatype(d):
    return OIP.get(d, d.upper())


def draw(d, n, seed):
    rng = np.random.default_rng(seed)
    if d == "bool":
        return rng.random(n) < 0.5
    if d.startswith("float"):
        # Within float16's range, so FP16 and the others see the same kind of values.
        return (rng.standard_normal(n) * 1000).astype(d)
    info = np.iinfo(d)
    return rng.integers(info.min, info.max, size=n, dtype=d, endpoint=True)


@pytest.fixture(scope="module")
def inputs():
    return {d: draw(d, 6, i) for i, d in enumerate(DTYPES)}


@pytest.fixture(scope="module")
def want(inputs):
    fn = tf.saved_model.load(MODEL).signatures["serving_default"]
    got = fn(**{"x_" + d: tf.constant(x) for d, x in inputs.items()})
    return {k[len("y_"):]: v.numpy() for k, v in got.items()}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("dtypes")
    shutil.copytree(MODEL, base / "1")
    cfg = write_config(tmp_path_factory.mktemp("config") / "models.json", [("dtypes", str(base), None, None)])
    s = Server(["--grpc-port", "0", "--model-config", cfg])
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def rest_address(server):
    assert server.rest_address, f"no address=http://HOST:PORT in the start-up line: {server.serving_line}"
    return server.rest_address


def check(got, want, what):
    for d in DTYPES:
        assert got[d].dtype == want[d].dtype, f"{what}: y_{d} came back as {got[d].dtype}"
        np.testing.assert_array_equal(got[d], want[d], err_msg=f"{what}: y_{d}")


def test_model_metadata_names_every_datatype(rest_address):
    c = triton_http.InferenceServerClient(url=rest_address)
    meta = c.get_model_metadata("dtypes")
    assert sorted(meta["inputs"], key=lambda t: t["name"]) == [
        {"name": "x_" + d, "datatype": oip_datatype(d), "shape": [-1]} for d in sorted(DTYPES)]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_triton_http(rest_address, inputs, want, binary):
    c = triton_http.InferenceServerClient(url=rest_address)
    ins = []
    for d, x in inputs.items():
        i = triton_http.InferInput("x_" + d, list(x.shape), oip_datatype(d))
        i.set_data_from_numpy(x, binary_data=binary)
        ins.append(i)
    outs = [triton_http.InferRequestedOutput("y_" + d, binary_data=binary) for d in DTYPES]
    r = c.infer("dtypes", ins, outputs=outs)
    check({d: r.as_numpy("y_" + d) for d in DTYPES}, want, f"tritonclient HTTP, binary={binary}")


def test_triton_grpc(server, inputs, want):
    c = triton_grpc.InferenceServerClient(url=server.grpc_address)
    ins = []
    for d, x in inputs.items():
        i = triton_grpc.InferInput("x_" + d, list(x.shape), oip_datatype(d))
        i.set_data_from_numpy(x)
        ins.append(i)
    r = c.infer("dtypes", ins)
    check({d: r.as_numpy("y_" + d) for d in DTYPES}, want, "tritonclient gRPC")


def typed_fields(x):
    """A TensorProto with the values in its typed field (int_val for the narrow
    integers, half_val for float16's bits), as a client that does not use
    tensor_content writes it."""
    t = tf.make_tensor_proto(x)
    t.ClearField("tensor_content")
    if x.dtype == np.float16:
        t.half_val.extend(x.view(np.uint16).astype(np.int32).tolist())
    else:
        field = {np.dtype(np.bool_): "bool_val", np.dtype(np.float32): "float_val", np.dtype(np.float64): "double_val",
                 np.dtype(np.int64): "int64_val", np.dtype(np.uint32): "uint32_val",
                 np.dtype(np.uint64): "uint64_val"}.get(x.dtype, "int_val")
        getattr(t, field).extend(x.tolist())
    return t


@pytest.mark.parametrize("encode", [tf.make_tensor_proto, typed_fields], ids=["make_tensor_proto", "typed_fields"])
def test_tensorflow_serving_api(server, inputs, want, encode):
    server.connect()
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "dtypes"
    for d, x in inputs.items():
        req.inputs["x_" + d].CopyFrom(encode(x))
    resp = server.predict.Predict(req, timeout=RPC_TIMEOUT)
    check({d: tf.make_ndarray(resp.outputs["y_" + d]) for d in DTYPES}, want, f"tensorflow-serving-api, {encode.__name__}")


def test_rest_json(rest_address, inputs, want):
    body = {"inputs": {"x_" + d: x.tolist() for d, x in inputs.items()}}
    req = urllib.request.Request(f"http://{rest_address}/v1/models/dtypes:predict", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=RPC_TIMEOUT) as r:
        outputs = json.loads(r.read())["outputs"]
    check({d: np.array(outputs["y_" + d], dtype=d) for d in DTYPES}, want, "REST JSON")


@pytest.mark.parametrize("d, value", [("int8", 128), ("uint8", -1), ("uint16", 65536), ("int32", 1.5)])
def test_rest_json_refuses_a_value_the_type_cannot_hold(rest_address, inputs, d, value):
    body = {"inputs": {"x_" + k: x.tolist() for k, x in inputs.items()}}
    body["inputs"]["x_" + d][0] = value
    req = urllib.request.Request(f"http://{rest_address}/v1/models/dtypes:predict", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=RPC_TIMEOUT)
    assert e.value.code == 400
    assert f"is not of expected type: {d}" in json.loads(e.value.read())["error"]
