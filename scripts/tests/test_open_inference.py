"""NVIDIA Triton's official client (tritonclient) against `kerasgo serve`'s
Open Inference Protocol API (KServe v2), over HTTP on the REST port and over
gRPC on the gRPC port, beside TF Serving's APIs.

Run by `make pytest` (and `make test`). The server is bin/kerasgo unless
KERASGO_BIN names another binary. Every expected number comes from
TensorFlow: TF Serving's half_plus_two run in a TF1 session by tensor name,
as TF Serving runs it, and the question's model through Keras' own traced
serving_default function (test_grpc_client's helpers). The protocol's
routes, headers and error body are the ones inference_rest.md
(kserve/open-inference-protocol) and Triton's binary data extension define.
"""


import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from test_grpc_client import (QUESTION_CLASSES, QUESTION_DIM, Server, keras_predict, model_dir,  # noqa: F401
                              question_model, tf_run, write_config, HALF_PLUS_TWO)


@pytest.fixture(scope="module")
def server(tmp_path_factory, question_model):  # noqa: F811
    cfg = write_config(tmp_path_factory.mktemp("config") / "models.json", [
        ("default", HALF_PLUS_TWO, None, None),
        ("question", question_model, None, None),
    ])
    s = Server(["--grpc-port", "0", "--model-config", cfg])
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def client(server):
    assert server.rest_address, f"no address=http://HOST:PORT in the start-up line: {server.serving_line}"
    c = triton_http.InferenceServerClient(url=server.rest_address, network_timeout=60, connection_timeout=60)
    yield c
    c.close()


@pytest.fixture(scope="module")
def grpc_client(server):
    assert server.grpc_address, f"no grpc_address in the start-up line: {server.serving_line}"
    c = triton_grpc.InferenceServerClient(url=server.grpc_address)
    yield c
    c.close()


def test_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("question")
    assert client.is_model_ready("default", "123")
    assert not client.is_model_ready("no_such_model")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    meta = client.get_model_metadata("question")
    assert meta["name"] == "question" and meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, QUESTION_DIM]}]
    assert meta["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, QUESTION_CLASSES]}]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_half_plus_two_matches_tensorflow(client, binary):
    x = np.array([[1.0], [2.0], [5.0]], np.float32)
    inp = triton_http.InferInput("x", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    out = triton_http.InferRequestedOutput("y", binary_data=binary)
    got = client.infer("default", [inp], outputs=[out], request_id="r7")
    want = tf_run(model_dir("default", 123), "serving_default", {"x": x})["y"]
    np.testing.assert_array_equal(got.as_numpy("y"), want)
    resp = got.get_response()
    assert resp["model_name"] == "default" and resp["model_version"] == "123" and resp["id"] == "r7"


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_question_model_matches_keras(client, question_model, binary):  # noqa: F811
    x = np.random.default_rng(3).random((4, QUESTION_DIM), dtype=np.float32)
    inp = triton_http.InferInput("features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    # No outputs named: the client asks for all of them as binary data.
    got = client.infer("question", [inp]) if binary else client.infer(
        "question", [inp], outputs=[triton_http.InferRequestedOutput("probabilities", binary_data=False)])
    want = keras_predict(question_model + "/1", x)
    np.testing.assert_allclose(got.as_numpy("probabilities"), want, rtol=1e-5, atol=1e-6)


def test_compressed_request(client, question_model):  # noqa: F811
    x = np.random.default_rng(4).random((2, QUESTION_DIM), dtype=np.float32)
    inp = triton_http.InferInput("features", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    for algorithm in ("gzip", "deflate"):
        got = client.infer("question", [inp], request_compression_algorithm=algorithm)
        np.testing.assert_allclose(got.as_numpy("probabilities"), keras_predict(question_model + "/1", x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make, status, says", [
    (lambda c: c.infer("no_such_model", [_input("features", np.zeros((1, QUESTION_DIM), np.float32))]),
     "404", "no_such_model"),
    (lambda c: c.infer("question", [_input("features", np.zeros((1, QUESTION_DIM), np.int8), "INT8")]),
     "400", "float but int8 is provided"),
    (lambda c: c.infer("question", [_input("features", np.zeros((1, 7), np.float32))]),
     "400", "7 features per instance, the model takes 300"),
    (lambda c: c.infer("question", [_input("features", np.zeros((1, QUESTION_DIM), np.float32))],
                       outputs=[triton_http.InferRequestedOutput("logits")]),
     "400", 'unexpected inference output "logits"'),
    (lambda c: c.get_model_metadata("question", "9"), "404", "Specific(question, 9)"),
], ids=["unknown model", "wrong datatype", "width", "unknown output", "unknown version"])
def test_errors(client, make, status, says):
    with pytest.raises(InferenceServerException) as e:
        make(client)
    assert e.value.status() == status, e.value
    assert says in e.value.message(), e.value


def _input(name, x, datatype="FP32"):
    inp = triton_http.InferInput(name, list(x.shape), datatype)
    inp.set_data_from_numpy(x)
    return inp


def test_grpc_health_and_metadata(grpc_client):
    assert grpc_client.is_server_live()
    assert grpc_client.is_server_ready()
    assert grpc_client.is_model_ready("question")
    assert grpc_client.get_server_metadata().name == "kerasgo"
    meta = grpc_client.get_model_metadata("question", as_json=True)
    assert meta["versions"] == ["1"] and meta["platform"] == "tensorflow_savedmodel"
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [str(-1), str(QUESTION_DIM)]}]
    with pytest.raises(InferenceServerException) as e:
        grpc_client.is_model_ready("no_such_model")
    assert "NOT_FOUND" in e.value.status(), e.value


def test_grpc_matches_tensorflow_and_keras(grpc_client, question_model):  # noqa: F811
    x = np.array([[1.0], [2.0], [5.0]], np.float32)
    inp = triton_grpc.InferInput("x", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    got = grpc_client.infer("default", [inp], outputs=[triton_grpc.InferRequestedOutput("y")], request_id="g1")
    np.testing.assert_array_equal(got.as_numpy("y"), tf_run(model_dir("default", 123), "serving_default", {"x": x})["y"])
    assert got.get_response().id == "g1" and got.get_response().model_version == "123"

    q = np.random.default_rng(5).random((3, QUESTION_DIM), dtype=np.float32)
    inp = triton_grpc.InferInput("features", list(q.shape), "FP32")
    inp.set_data_from_numpy(q)
    got = grpc_client.infer("question", [inp])
    np.testing.assert_allclose(got.as_numpy("probabilities"), keras_predict(question_model + "/1", q), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make, code, says", [
    (lambda c: c.infer("no_such_model", [_grpc_input(np.zeros((1, QUESTION_DIM), np.float32))]), "NOT_FOUND", "no_such_model"),
    (lambda c: c.infer("question", [_grpc_input(np.zeros((1, QUESTION_DIM), np.uint16), "UINT16")]),
     "INVALID_ARGUMENT", "float but uint16 is provided"),
    (lambda c: c.infer("question", [_grpc_input(np.zeros((1, 7), np.float32))]),
     "INVALID_ARGUMENT", "7 features per instance, the model takes 300"),
    (lambda c: c.infer("question", [_grpc_input(np.zeros((1, QUESTION_DIM), np.float32))], model_version="x"),
     "INVALID_ARGUMENT", 'version "x"'),
], ids=["unknown model", "wrong datatype", "width", "version"])
def test_grpc_errors(grpc_client, make, code, says):
    with pytest.raises(InferenceServerException) as e:
        make(grpc_client)
    assert code in e.value.status(), e.value
    assert says in e.value.message(), e.value


def _grpc_input(x, datatype="FP32"):
    inp = triton_grpc.InferInput("features", list(x.shape), datatype)
    inp.set_data_from_numpy(x)
    return inp


def _stub_infer(server, datatype, shape, **contents):
    """A ModelInferRequest built with the protocol's messages as tritonclient
    ships them, for what its InferInput refuses to send."""
    req = service_pb2.ModelInferRequest(model_name="question")
    inp = req.inputs.add(name="features", datatype=datatype, shape=shape)
    if "raw" in contents:
        req.raw_input_contents.append(contents["raw"])
    else:
        for field, values in contents.items():
            getattr(inp.contents, field).extend(values)
    with grpc.insecure_channel(server.grpc_address) as ch:
        with pytest.raises(grpc.RpcError) as e:
            service_pb2_grpc.GRPCInferenceServiceStub(ch).ModelInfer(req, timeout=30)
    return e.value


@pytest.mark.parametrize("datatype, contents, says", [
    ("BF16", {"raw": b"\0\0" * QUESTION_DIM}, 'datatype "BF16" is not one kerasgo feeds'),
    ("INT8", {"int_contents": [300] * QUESTION_DIM}, "element 0, 300, does not fit int8"),
    ("UINT16", {"uint_contents": [70000] * QUESTION_DIM}, "element 0, 70000, does not fit uint16"),
    ("FP16", {"fp32_contents": [1.0] * QUESTION_DIM}, "FP16 has no typed contents field"),
], ids=["BF16", "INT8 out of range", "UINT16 out of range", "FP16 typed"])
def test_grpc_datatype_errors(server, datatype, contents, says):
    err = _stub_infer(server, datatype, [1, QUESTION_DIM], **contents)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err
    assert says in err.details(), err
