"""KServe's official Python SDK (kserve) against `kerasgo serve`'s Open
Inference Protocol (KServe v2) REST API under /v2 on the REST port.

Run by `make pytest` (and `make test`). The server is bin/kerasgo unless
KERASGO_BIN names another binary. What this proves:
  * kserve's own v2 REST client (InferenceRESTClient with RESTConfig(protocol="v2"))
    finds the server live and ready and the models ready, an unknown one not;
  * its InferRequest/InferInput round trip, inputs sent as JSON and as binary
    data (Inference-Header-Content-Length), outputs asked for as either, decodes
    (InferResponse.from_bytes) to the numbers TensorFlow computes:
    TF Serving's half_plus_two run in a TF1 session by tensor name, as TF Serving
    runs it, and the question's model through Keras' own traced serving_default
    function (test_grpc_client's tf_run and keras_predict);
  * the metadata parses, strictly, into kserve's own v2 data models
    (kserve.protocol.rest.v2_datamodels, which KServe's server answers with):
    the SDK's REST client has no metadata call of its own;
  * an unknown model makes the SDK raise httpx.HTTPStatusError with 404 and the
    server's {"error": ...} text, which the SDK copies only from a response
    whose Content-Type is exactly application/json.

kserve and tritonclient.grpc (test_open_inference.py) cannot share a process:
their generated gRPC modules (kserve's grpc_predict_v2.proto, Triton's
grpc_service.proto) both put package `inference` into protobuf's one default
descriptor pool, and the second import fails with "duplicate symbol
'inference.ServerLiveRequest'". `make pytest` imports every test module into
each worker, so this module's one test_ function runs the sdk_ functions below
in a pytest process of their own, where kserve is imported.
"""

import asyncio
import os
import subprocess
import sys

import httpx
import numpy as np
import pytest

from test_grpc_client import (QUESTION_CLASSES, QUESTION_DIM, Server, keras_predict, model_dir,  # noqa: F401
                              question_model, tf_run, write_config, HALF_PLUS_TWO)

OWN_PROCESS = "KERASGO_KSERVE_OWN_PROCESS"
if os.environ.get(OWN_PROCESS) == "1":
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
    from kserve.protocol.infer_type import RequestedOutput
    from kserve.protocol.rest.v2_datamodels import ModelMetadataResponse, ServerMetadataResponse


def test_kserve_sdk_in_own_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))}
    env[OWN_PROCESS] = "1"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "python_functions=sdk_*",
           "--basetemp", str(tmp_path / "run"), __file__]
    r = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-12000:]}\n{r.stderr[-3000:]}"


@pytest.fixture(scope="module")
def server(tmp_path_factory, question_model):  # noqa: F811
    cfg = write_config(tmp_path_factory.mktemp("config") / "models.json", [
        ("default", HALF_PLUS_TWO, None, None),
        ("question", question_model, None, None),
    ])
    s = Server(["--grpc-port", "-1", "--model-config", cfg])  # REST only
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def base_url(server):
    assert server.rest_address, f"no address=http://HOST:PORT in the start-up line: {server.serving_line}"
    return f"http://{server.rest_address}"


@pytest.fixture(scope="module")
def client(base_url):
    """call(method, *args): awaits InferenceRESTClient.method(base_url, *args) on one event loop."""
    loop = asyncio.new_event_loop()
    c = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
    yield lambda method, *args, **kw: loop.run_until_complete(getattr(c, method)(base_url, *args, **kw))
    loop.run_until_complete(c.close())
    loop.close()


def sdk_health_and_metadata(client, base_url):
    assert client("is_server_live") is True
    assert client("is_server_ready") is True
    assert client("is_model_ready", "question") and client("is_model_ready", "default")
    assert not client("is_model_ready", "no_such_model")
    with httpx.Client(base_url=base_url, timeout=60) as h:
        ServerMetadataResponse.model_validate(h.get("/v2").raise_for_status().json(), strict=True)
        question = ModelMetadataResponse.model_validate(h.get("/v2/models/question").raise_for_status().json(),
                                                        strict=True)
        default = ModelMetadataResponse.model_validate(h.get("/v2/models/default").raise_for_status().json(),
                                                       strict=True)
    assert (question.name, question.versions) == ("question", ["1"])
    assert [t.model_dump() for t in question.inputs] == [
        {"name": "features", "datatype": "FP32", "shape": [-1, QUESTION_DIM]}]
    assert [t.model_dump() for t in question.outputs] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, QUESTION_CLASSES]}]
    assert (default.name, default.versions) == ("default", ["123"])
    assert [t.name for t in default.inputs] == ["x"] and "y" in [t.name for t in default.outputs]


def _infer(client, model, name, x, output, binary_in, binary_out):
    inp = InferInput(name, list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary_in)
    outputs = [RequestedOutput(output, {"binary_data": binary_out})]
    got = client("infer", InferRequest(model, [inp], request_id="k1", request_outputs=outputs), model_name=model)
    assert (got.model_name, got.id) == (model, "k1")
    assert [o.name for o in got.outputs] == [output]
    return got.get_output_by_name(output).as_numpy()


BINARY = [(False, False), (True, True), (True, False), (False, True)]
BINARY_IDS = ["json", "binary", "binary-in", "binary-out"]


@pytest.mark.parametrize("binary_in, binary_out", BINARY, ids=BINARY_IDS)
def sdk_half_plus_two_matches_tensorflow(client, binary_in, binary_out):
    x = np.array([[1.0], [2.0], [5.0]], np.float32)
    got = _infer(client, "default", "x", x, "y", binary_in, binary_out)
    np.testing.assert_array_equal(got, tf_run(model_dir("default", 123), "serving_default", {"x": x})["y"])


@pytest.mark.parametrize("binary_in, binary_out", BINARY, ids=BINARY_IDS)
def sdk_question_model_matches_keras(client, question_model, binary_in, binary_out):  # noqa: F811
    x = np.random.default_rng(6).random((4, QUESTION_DIM), dtype=np.float32)
    got = _infer(client, "question", "features", x, "probabilities", binary_in, binary_out)
    np.testing.assert_allclose(got, keras_predict(question_model + "/1", x), rtol=1e-5, atol=1e-6)


def sdk_unknown_model_raises(client):
    x = np.zeros((1, QUESTION_DIM), np.float32)
    inp = InferInput("features", list(x.shape), "FP32", data=x.ravel().tolist())
    with pytest.raises(httpx.HTTPStatusError) as e:
        client("infer", InferRequest("no_such_model", [inp]), model_name="no_such_model")
    assert e.value.response.status_code == 404, e.value
    # The SDK puts the body's "error" first; TF Serving's wording for a model it does not serve.
    assert str(e.value).startswith("Servable not found for request: Latest(no_such_model)"), e.value
