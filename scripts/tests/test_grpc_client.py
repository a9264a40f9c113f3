"""TF Serving's official Python client (tensorflow-serving-api) against `kerasgo serve`'s gRPC API.

Run by `make pytest` (and `make test`) with the cached interpreter. The server is
the kerasgo binary, bin/kerasgo unless KERASGO_BIN names another one; a missing
binary is a failure, not a skip.

Every expected answer comes from outside kerasgo:
  * numbers from TensorFlow itself: the TF1 test models run in a tf.compat.v1
    Session fed and fetched by tensor name, as TF Serving's Session::Run does
    (the Python feed shape check is bypassed as the C++ session has none), and
    the question's model through Keras' own traced serving_default function;
  * metadata from the SavedModel's MetaGraphDef, which TF Serving copies into
    its reply (get_model_metadata_impl.cc), and TF Serving's own metadata JSON;
  * behaviours, status codes and error texts from TF Serving's sources and tests
    (tensorflow/serving at the commit testdata/serving/PROVENANCE.md names):
    model_servers/tensorflow_model_server_test.py, servables/tensorflow/
    {predict_util,classifier,regressor,multi_inference,util,get_model_metadata_impl}.cc,
    model_servers/{get_model_status_impl,model_service_impl,server_core,server}.cc,
    core/basic_manager.cc.
"""

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import config_pb2, saved_model_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2, get_model_status_pb2,
                                     inference_pb2, model_service_pb2_grpc, model_management_pb2, predict_pb2,
                                     prediction_service_pb2_grpc, regression_pb2)
from tensorflow_serving.config import model_server_config_pb2

from sharing import once_per_run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVING = os.path.join(REPO, "testdata", "serving")
KERASGO = os.environ.get("KERASGO_BIN") or os.path.join(REPO, "bin", "kerasgo")
RPC_TIMEOUT = 30  # seconds; TF Serving's own test uses 5, this leaves room for a loaded 2-core machine
START_TIMEOUT = 120

HALF_PLUS_TWO = os.path.join(SERVING, "saved_model_half_plus_two_cpu")
HALF_PLUS_THREE = os.path.join(SERVING, "saved_model_half_plus_three")
TWO_VERSIONS = os.path.join(SERVING, "saved_model_half_plus_two_2_versions")
QUESTION_DIM, QUESTION_CLASSES = 300, 5

# TF Serving's test models as served here: name -> (base path, {version: version
# directory}). "default" is the name TF Serving's tests serve half_plus_two under,
# so its metadata JSON applies as written. The question's model is served as
# "question", version 1, from the export the question_model fixture makes.
TF1_MODELS = {
    "default": (HALF_PLUS_TWO, {123: "00000123"}),
    "saved_model_half_plus_three": (HALF_PLUS_THREE, {123: "00000123"}),
    "saved_model_half_plus_two_2_versions": (TWO_VERSIONS, {123: "00000123", 124: "00000124"}),
}
LABELS = {"stable": 123, "canary": 124}


# --- the server -------------------------------------------------------------


class Server:
    """A running `kerasgo serve`, its gRPC address and stubs."""

    def __init__(self, args):
        if not os.path.isfile(KERASGO):
            pytest.fail(f"{KERASGO} not found: build it with `make build` (or point KERASGO_BIN at a kerasgo binary)")
        self.args = [KERASGO, "serve", "--rest-port", "0", "--poll-interval", "0"] + args
        self.lines = []
        self.serving_line = None
        self.channel = None
        self._seen = threading.Event()
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        if not self._seen.wait(START_TIMEOUT):
            self.stop()
            pytest.fail(f"{' '.join(self.args)}: no `msg=serving` line on stderr within {START_TIMEOUT}s:\n{self.log()}")
        if self.serving_line is None:  # stderr closed: the server exited
            try:
                rc = self.proc.wait(10)
            except subprocess.TimeoutExpired:
                rc = "?"
            self.stop()
            pytest.fail(f"{' '.join(self.args)} exited with {rc} before serving:\n{self.log()}")
        m = re.search(r"\bgrpc_address=(\S+)", self.serving_line)
        self.grpc_address = m.group(1) if m else None
        m = re.search(r"\baddress=http://(\S+)", self.serving_line)
        self.rest_address = m.group(1) if m else None  # HOST:PORT of the REST API

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            # slog's text handler quotes messages with spaces, so `msg=serving `
            # is the start-up line and not `msg="serving version"`.
            if self.serving_line is None and re.search(r"\bmsg=serving(\s|$)", line):
                self.serving_line = line
                self._seen.set()
        self._seen.set()

    def log(self):
        return "\n".join(self.lines[-40:])

    def connect(self):
        assert self.grpc_address, (
            f"the start-up line has no grpc_address=HOST:PORT (the gRPC API is not served?):\n"
            f"  {self.serving_line.strip()}\n  command: {' '.join(self.args)}")
        self.channel = grpc.insecure_channel(self.grpc_address, options=[
            # The client's own receive limit (4 MiB by default); TF Serving's
            # server has no practical limit (server.cc: SetMaxMessageSize(INT32_MAX)).
            ("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)])
        grpc.channel_ready_future(self.channel).result(timeout=RPC_TIMEOUT)
        self.predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        return self

    def stop(self):
        if self.channel is not None:
            self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def write_config(path, models):
    """kerasgo's --model-config JSON: [(name, base_path, versions or None, labels or None)]."""
    entries = []
    for name, base, versions, labels in models:
        e = {"name": name, "base_path": base}
        if versions:
            e["versions"] = versions
        if labels:
            e["labels"] = labels
        entries.append(e)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"models": entries}, f)
    return str(path)


@pytest.fixture(scope="session")
def question_model(tmp_path_factory):
    """The question's architecture exported by `kerasgo export`, as a base path holding version 1
    (made once in a run, also for the other pytest-xdist worker)."""
    if not os.path.isfile(KERASGO):
        pytest.fail(f"{KERASGO} not found: build it with `make build` (or point KERASGO_BIN at a kerasgo binary)")

    def make(base):
        cmd = [KERASGO, "export", "--arch", "question", "--input-dim", str(QUESTION_DIM), "--classes",
               str(QUESTION_CLASSES), "--seed", "0", "--out", str(base / "1")]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"{' '.join(cmd)} exited {r.returncode}:\n{r.stderr}"

    return str(once_per_run(tmp_path_factory, "question_model", make))


@pytest.fixture(scope="module")
def server(tmp_path_factory, question_model):
    """One server for the module (pytest reports a failed start once per test, without restarting it)."""
    cfg = write_config(tmp_path_factory.mktemp("config") / "models.json", [
        ("default", HALF_PLUS_TWO, None, None),
        ("saved_model_half_plus_three", HALF_PLUS_THREE, None, None),
        ("saved_model_half_plus_two_2_versions", TWO_VERSIONS, [123, 124], LABELS),
        ("question", question_model, None, None),
    ])
    s = Server(["--grpc-port", "0", "--model-config", cfg])
    try:
        yield s.connect()
    finally:
        s.stop()


# --- what TensorFlow computes -------------------------------------------------


@functools.lru_cache(maxsize=None)
def tf1_session(model_dir):
    graph = tf.Graph()
    sess = tf.compat.v1.Session(graph=graph)
    meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], model_dir)
    return sess, meta


def tf_run(model_dir, signature, feeds):
    """Runs a signature as TF Serving does: Session::Run with the signature's tensor names.

    A CallableOptions callable skips the Python client's feed-shape check, which
    the C++ session TF Serving calls does not have (x=[1,2,5] is fed to a [-1,1]
    tensor by TF Serving's REST documentation)."""
    sess, meta = tf1_session(model_dir)
    sig = meta.signature_def[signature]
    keys, outs = sorted(feeds), sorted(sig.outputs)
    opts = config_pb2.CallableOptions(feed=[sig.inputs[k].name for k in keys], fetch=[sig.outputs[k].name for k in outs])
    return dict(zip(outs, sess._make_callable_from_options(opts)(*[feeds[k] for k in keys])))


@functools.lru_cache(maxsize=None)
def keras_serving_fn(model_dir):
    return tf.saved_model.load(model_dir).signatures["serving_default"]


def keras_predict(model_dir, x):
    return keras_serving_fn(model_dir)(features=tf.constant(x))["probabilities"].numpy()


def signature_defs(model_dir):
    """The SignatureDef map of the SavedModel's `serve` MetaGraphDef, read from saved_model.pb."""
    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(model_dir, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    metas = [m for m in sm.meta_graphs if "serve" in m.meta_info_def.tags]
    assert len(metas) == 1, f"{model_dir}: {len(metas)} MetaGraphDefs tagged serve"
    return metas[0].signature_def


def model_dir(name, version):
    base, versions = TF1_MODELS[name]
    return os.path.join(base, versions[version])


# --- request helpers ----------------------------------------------------------


def model_spec(spec, name, version=None, label=None, signature=None):
    spec.name = name
    if version is not None:
        spec.version.value = version
    if label is not None:
        spec.version_label = label
    if signature is not None:
        spec.signature_name = signature


def float_val_tensor(x):
    """A DT_FLOAT TensorProto written with float_val, as TF Serving's own test writes it."""
    t = tf.make_tensor_proto(np.zeros(0, np.float32))
    t.Clear()
    t.dtype = types_pb2.DT_FLOAT
    for d in x.shape:
        t.tensor_shape.dim.add().size = d
    t.float_val.extend(x.ravel().tolist())
    return t


def encode(x, encoding):
    if encoding == "make_tensor_proto":
        return tf.make_tensor_proto(x)
    return float_val_tensor(x)


def example(**features):
    ex = tf.train.Example()
    for k, v in features.items():
        ex.features.feature[k].float_list.value.extend(v if isinstance(v, list) else [v])
    return ex


def call(rpc, request):
    return rpc(request, timeout=RPC_TIMEOUT)


def rpc_error(rpc, request):
    try:
        resp = call(rpc, request)
    except grpc.RpcError as e:
        return e
    pytest.fail(f"{describe(request)} succeeded ({type(resp).__name__} {str(resp)[:300]!r}); TF Serving refuses it")


def describe(req):
    """The request as JSON, each input tensor shown as its dtype and shape only."""
    short = type(req)()
    short.CopyFrom(req)
    if isinstance(short, predict_pb2.PredictRequest):
        for t in short.inputs.values():
            t.ClearField("tensor_content")
            for f in ("float_val", "double_val", "int_val", "int64_val", "string_val"):
                if len(getattr(t, f)) > 4:
                    t.ClearField(f)
    return f"{type(req).__name__} {json_format.MessageToJson(short, indent=None)[:600]}"


def check_model_spec(got, name, signature, version, what):
    want = (name, signature, version)
    have = (got.name, got.signature_name, got.version.value)
    assert have == want, (f"{what}: model_spec (name, signature_name, version) = {have}; TF Serving answers {want} "
                          "(util.cc MakeModelSpec: the resolved signature, 'serving_default' when empty, and the version served)")


# --- Predict on TF Serving's own test models ------------------------------------

X = np.array([1.0, 2.0, 5.0], np.float32)

# id -> (model, version, label, input x, the numbers TF Serving's docs and tests give, version that answers)
PREDICT_CASES = {
    "half_plus_two_vector": ("default", None, None, X, [2.5, 3.0, 4.5], 123),
    "half_plus_two_column": ("default", None, None, X.reshape(3, 1), [[2.5], [3.0], [4.5]], 123),
    "half_plus_two_official_test": ("default", None, None, np.array([2.0], np.float32), [3.0], 123),
    "half_plus_three_vector": ("saved_model_half_plus_three", None, None, X, [3.5, 4.0, 5.5], 123),
    "two_versions_latest": ("saved_model_half_plus_two_2_versions", None, None, X, [2.5, 3.0, 4.5], 124),
    "two_versions_123": ("saved_model_half_plus_two_2_versions", 123, None, X, [2.5, 3.0, 4.5], 123),
    "two_versions_124": ("saved_model_half_plus_two_2_versions", 124, None, X, [2.5, 3.0, 4.5], 124),
    "two_versions_label_stable": ("saved_model_half_plus_two_2_versions", None, "stable", X, [2.5, 3.0, 4.5], 123),
    "two_versions_label_canary": ("saved_model_half_plus_two_2_versions", None, "canary", X, [2.5, 3.0, 4.5], 124),
}


@pytest.mark.parametrize("encoding", ["make_tensor_proto", "float_val"])
@pytest.mark.parametrize("case", sorted(PREDICT_CASES))
def test_predict_tf_serving_models(server, case, encoding):
    name, version, label, x, want, served = PREDICT_CASES[case]
    req = predict_pb2.PredictRequest()
    model_spec(req.model_spec, name, version, label, signature="serving_default")
    req.inputs["x"].CopyFrom(encode(x, encoding))
    resp = call(server.predict.Predict, req)

    assert set(resp.outputs) == {"y"}, f"{describe(req)}: outputs {sorted(resp.outputs)}; the signature has only y"
    y = resp.outputs["y"]
    assert y.dtype == types_pb2.DT_FLOAT, f"{case}: y dtype {types_pb2.DataType.Name(y.dtype)}, want DT_FLOAT"
    got = tf.make_ndarray(y)
    oracle = tf_run(model_dir(name, served), "serving_default", {"x": x})["y"]
    assert np.array_equal(oracle, np.array(want, np.float32)), f"TF itself computes {oracle.tolist()}, docs say {want}"
    assert got.shape == oracle.shape and np.array_equal(got, oracle), (
        f"{case} x={x.tolist()}: y = {got.tolist()} (shape {list(got.shape)}); "
        f"TensorFlow and TF Serving give {oracle.tolist()} (shape {list(oracle.shape)})")
    check_model_spec(resp.model_spec, name, "serving_default", served, case)


def test_predict_empty_signature_name_means_serving_default(server):
    """TF Serving's VerifyPredictRequest sends signature_name='' in places; the reply names serving_default."""
    req = predict_pb2.PredictRequest()
    model_spec(req.model_spec, "default")
    req.inputs["x"].CopyFrom(float_val_tensor(np.array([2.0], np.float32)))
    req.output_filter.append("y")
    resp = call(server.predict.Predict, req)
    assert tf.make_ndarray(resp.outputs["y"]).tolist() == [3.0]
    check_model_spec(resp.model_spec, "default", "serving_default", 123, "empty signature_name")


def test_predict_outputs_are_typed_fields(server):
    """TF Serving writes outputs with Tensor::AsProtoField (float_val), not tensor_content, unless
    --enable_serialization_as_tensor_content (off by default, server.h); its own test reads float_val[0]."""
    req = predict_pb2.PredictRequest()
    model_spec(req.model_spec, "default", signature="serving_default")
    req.inputs["x"].CopyFrom(float_val_tensor(np.array([2.0], np.float32)))
    req.output_filter.append("y")
    y = call(server.predict.Predict, req).outputs["y"]
    assert list(y.float_val) == [3.0] and y.tensor_content == b"", (
        f"y = float_val {list(y.float_val)}, tensor_content {len(y.tensor_content)} bytes; "
        "TF Serving answers float_val [3.0] and no tensor_content (predict_util.cc kAsProtoField)")
    assert [d.size for d in y.tensor_shape.dim] == [1], f"y shape {y.tensor_shape}; want [1]"


def test_predict_string_input_on_classify_signature(server):
    """Predict runs classify/regress signatures too (predict_util.cc VerifySignature): a DT_STRING input."""
    exs = [example(x=2.0), example(x=5.0), example(x=-1.0, x2=4.0)]
    serialized = np.array([e.SerializeToString() for e in exs], dtype=object)
    req = predict_pb2.PredictRequest()
    model_spec(req.model_spec, "default", signature="classify_x_to_y")
    req.inputs["inputs"].CopyFrom(tf.make_tensor_proto(serialized))
    resp = call(server.predict.Predict, req)
    got = tf.make_ndarray(resp.outputs["scores"])
    oracle = tf_run(model_dir("default", 123), "classify_x_to_y", {"inputs": serialized})["scores"]
    assert np.array_equal(oracle, [[3.0], [4.5], [1.5]])
    assert np.array_equal(got, oracle), f"scores {got.tolist()}; TensorFlow gives {oracle.tolist()}"
    check_model_spec(resp.model_spec, "default", "classify_x_to_y", 123, "Predict on classify_x_to_y")


# --- GetModelMetadata and GetModelStatus ----------------------------------------------------


def metadata_request(name, version=None, fields=("signature_def",)):
    req = get_model_metadata_pb2.GetModelMetadataRequest()
    model_spec(req.model_spec, name, version)
    req.metadata_field.extend(fields)
    return req


METADATA_CASES = {
    # id -> (model, requested version, version that answers)
    "default": ("default", None, 123),
    "half_plus_three": ("saved_model_half_plus_three", None, 123),
    "two_versions_latest": ("saved_model_half_plus_two_2_versions", None, 124),
    "two_versions_123": ("saved_model_half_plus_two_2_versions", 123, 123),
    "question": ("question", None, 1),
}


@pytest.mark.parametrize("case", sorted(METADATA_CASES))
def test_get_model_metadata(server, question_model, case):
    name, version, served = METADATA_CASES[case]
    resp = call(server.predict.GetModelMetadata, metadata_request(name, version))
    assert (resp.model_spec.name, resp.model_spec.version.value) == (name, served), (
        f"{case}: model_spec {resp.model_spec}; TF Serving sets name {name!r} and version {served}")
    assert resp.model_spec.signature_name == "", "TF Serving leaves model_spec.signature_name empty in metadata"
    assert list(resp.metadata) == ["signature_def"], f"{case}: metadata keys {list(resp.metadata)}"
    anyv = resp.metadata["signature_def"]
    assert anyv.type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap", anyv.type_url
    got = get_model_metadata_pb2.SignatureDefMap()
    assert anyv.Unpack(got), f"{case}: metadata['signature_def'] does not unpack into a SignatureDefMap"
    d = os.path.join(question_model, "1") if name == "question" else model_dir(name, served)
    want = signature_defs(d)
    assert sorted(got.signature_def) == sorted(want), (
        f"{case}: signatures {sorted(got.signature_def)}; the SavedModel's MetaGraphDef has {sorted(want)} "
        "(TF Serving copies bundle->meta_graph_def.signature_def(), __saved_model_init_op included)")
    for key in want:
        assert got.signature_def[key] == want[key], (
            f"{case}: signature {key!r}\n{got.signature_def[key]}\nthe SavedModel's is\n{want[key]}")


@pytest.mark.parametrize("name,version,json_file", [
    ("default", None, "half_plus_two_model_metadata.json"),
    ("saved_model_half_plus_two_2_versions", 123, "saved_model_half_plus_two_2_versions_metadata.json"),
])
def test_get_model_metadata_matches_tf_serving_json(server, name, version, json_file):
    """TF Serving's expected metadata documents (its REST tests), read as protos."""
    with open(os.path.join(SERVING, json_file), encoding="utf-8") as f:
        doc = json.load(f)
    want = json_format.ParseDict(doc["metadata"]["signature_def"], get_model_metadata_pb2.SignatureDefMap())
    want_spec = json_format.ParseDict(doc["model_spec"], get_model_metadata_pb2.GetModelMetadataRequest().model_spec)
    resp = call(server.predict.GetModelMetadata, metadata_request(name, version))
    got = get_model_metadata_pb2.SignatureDefMap()
    resp.metadata["signature_def"].Unpack(got)
    assert resp.model_spec == want_spec, f"model_spec {resp.model_spec}; {json_file} has {want_spec}"
    assert got == want, f"SignatureDefMap differs from {json_file}:\n{got}\nwant\n{want}"


STATUS_CASES = {
    # id -> (model, version, label, versions TF Serving lists)
    "default": ("default", None, None, [123]),
    "half_plus_three": ("saved_model_half_plus_three", None, None, [123]),
    "two_versions_all": ("saved_model_half_plus_two_2_versions", None, None, [123, 124]),
    "two_versions_123": ("saved_model_half_plus_two_2_versions", 123, None, [123]),
    # get_model_status_impl.cc ignores version_label: every version is listed
    # (rest_cases.json h_status_all_versions, http_rest_api_handler_test.cc:494-512).
    "two_versions_label": ("saved_model_half_plus_two_2_versions", None, "canary", [123, 124]),
    "question": ("question", None, None, [1]),
}


@pytest.mark.parametrize("case", sorted(STATUS_CASES))
def test_get_model_status(server, case):
    name, version, label, versions = STATUS_CASES[case]
    req = get_model_status_pb2.GetModelStatusRequest()
    model_spec(req.model_spec, name, version, label)
    resp = call(server.models.GetModelStatus, req)
    got = sorted((s.version, get_model_status_pb2.ModelVersionStatus.State.Name(s.state), s.status.error_code,
                  s.status.error_message) for s in resp.model_version_status)
    want = [(v, "AVAILABLE", 0, "") for v in versions]
    assert got == want, f"{describe(req)}: (version, state, error_code, error_message) = {got}; TF Serving answers {want}"


# --- Classify, Regress, MultiInference ---------------------------------------------------

# id -> (rpc, model, signature, the Input: examples and optional context, TF Serving's numbers)
EXAMPLES = [example(x=2.0), example(x=5.0), example(x=-1.0, x2=4.0)]
CONTEXT = example(x=9.0, x2=1.0)
INFER_CASES = {
    "classify_official_test": ("Classify", "default", "classify_x_to_y", [example(x=2.0)], None, [3.0]),
    "classify_three_examples": ("Classify", "default", "classify_x_to_y", EXAMPLES, None, [3.0, 4.5, 1.5]),
    "classify_two_versions": ("Classify", "saved_model_half_plus_two_2_versions", "classify_x_to_y", EXAMPLES, None,
                              [3.0, 4.5, 1.5]),
    "regress_official_test": ("Regress", "default", "regress_x_to_y", [example(x=2.0)], None, [3.0]),
    "regress_x_to_y2": ("Regress", "default", "regress_x_to_y2", EXAMPLES, None, [4.0, 5.5, 2.5]),
    # Its input TensorInfo says DT_FLOAT but is the string placeholder: TF Serving feeds Examples unchecked.
    "regress_half_plus_three": ("Regress", "saved_model_half_plus_three", "tensorflow/serving/regress", EXAMPLES, None,
                                [4.0, 5.5, 2.5]),
    # example_list_with_context: each example is the context's bytes then the example's
    # (util.cc InputToSerializedExampleTensor), so an example's own x wins over the context's.
    "regress_with_context": ("Regress", "default", "regress_x_to_y", [example(x=1.0), example(x2=3.0)], CONTEXT,
                             [2.5, 6.5]),
    "classify_with_context": ("Classify", "default", "classify_x_to_y", [example(), example(x=4.0)], CONTEXT,
                              [6.5, 4.0]),
}


def fill_input(inp, examples, context):
    if context is None:
        for e in examples:
            inp.example_list.examples.add().CopyFrom(e)
    else:
        inp.example_list_with_context.context.CopyFrom(context)
        for e in examples:
            inp.example_list_with_context.examples.add().CopyFrom(e)


def serialized_examples(examples, context):
    pre = context.SerializeToString() if context is not None else b""
    return np.array([pre + e.SerializeToString() for e in examples], dtype=object)


@pytest.mark.parametrize("case", sorted(INFER_CASES))
def test_classify_regress(server, case):
    rpc, name, signature, examples, context, want = INFER_CASES[case]
    req = (classification_pb2.ClassificationRequest() if rpc == "Classify" else regression_pb2.RegressionRequest())
    model_spec(req.model_spec, name, signature=signature)
    fill_input(req.input, examples, context)
    resp = call(getattr(server.predict, rpc), req)

    served = max(TF1_MODELS[name][1])
    out_alias = "scores" if rpc == "Classify" else "outputs"
    oracle = tf_run(model_dir(name, served), signature, {"inputs": serialized_examples(examples, context)})[out_alias]
    assert oracle.ravel().tolist() == want, f"TensorFlow computes {oracle.ravel().tolist()}, expected {want}"
    if rpc == "Classify":
        got = [[(c.label, c.score) for c in cl.classes] for cl in resp.result.classifications]
        # Only a scores output: one Class per score column, label left empty (classifier.cc).
        expect = [[("", s)] for s in want]
        assert got == expect, f"{describe(req)}: classifications [(label, score)] = {got}; TF Serving answers {expect}"
    else:
        got = [r.value for r in resp.result.regressions]
        assert got == want, f"{describe(req)}: regressions {got}; TF Serving answers {want}"
    check_model_spec(resp.model_spec, name, signature, served, case)


@pytest.mark.parametrize("examples,want", [([example(x=2.0)], [3.0]), (EXAMPLES, [3.0, 4.5, 1.5])],
                         ids=["official_test", "three_examples"])
def test_multi_inference(server, examples, want):
    """TF Serving's _TestMultiInference: regress_x_to_y and classify_x_to_y on one Input."""
    req = inference_pb2.MultiInferenceRequest()
    tasks = [("regress_x_to_y", "tensorflow/serving/regress"), ("classify_x_to_y", "tensorflow/serving/classify")]
    for sig, method in tasks:
        t = req.tasks.add()
        model_spec(t.model_spec, "default", signature=sig)
        t.method_name = method
    fill_input(req.input, examples, None)
    resp = call(server.predict.MultiInference, req)
    assert len(resp.results) == 2, f"{len(resp.results)} results for 2 tasks"
    reg = [r.value for r in resp.results[0].regression_result.regressions]
    cls = [[(c.label, c.score) for c in cl.classes] for cl in resp.results[1].classification_result.classifications]
    assert reg == want, f"task 0 (regress_x_to_y): {reg}; TF Serving answers {want}"
    assert cls == [[("", s)] for s in want], f"task 1 (classify_x_to_y): {cls}; TF Serving answers scores {want}"
    for i, (sig, _) in enumerate(tasks):
        check_model_spec(resp.results[i].model_spec, "default", sig, 123, f"result {i}")


# --- the question's model ------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["make_tensor_proto", "float_val"])
@pytest.mark.parametrize("rows", [1, 7, 64])
def test_predict_question_model_matches_keras(server, question_model, rows, encoding):
    x = np.random.default_rng(rows).random((rows, QUESTION_DIM), dtype=np.float32)
    req = predict_pb2.PredictRequest()
    model_spec(req.model_spec, "question")
    req.inputs["features"].CopyFrom(encode(x, encoding))
    resp = call(server.predict.Predict, req)
    assert set(resp.outputs) == {"probabilities"}, f"outputs {sorted(resp.outputs)}"
    got = tf.make_ndarray(resp.outputs["probabilities"])
    want = keras_predict(os.path.join(question_model, "1"), x)
    assert got.shape == want.shape == (rows, QUESTION_CLASSES), f"shape {got.shape}; Keras gives {want.shape}"
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg="gRPC Predict against Keras' serving_default")
    check_model_spec(resp.model_spec, "question", "serving_default", 1, "question")


def test_predict_question_model_concurrent(server, question_model):
    """32 concurrent Predicts of different sizes (merged by the server's batching): each gets its own rows back."""
    rng = np.random.default_rng(11)
    xs = [rng.random((1 + i % 5, QUESTION_DIM), dtype=np.float32) for i in range(32)]
    want = [keras_predict(os.path.join(question_model, "1"), x) for x in xs]

    def one(x):
        req = predict_pb2.PredictRequest()
        model_spec(req.model_spec, "question")
        req.inputs["features"].CopyFrom(tf.make_tensor_proto(x))
        return tf.make_ndarray(call(server.predict.Predict, req).outputs["probabilities"])

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, xs))
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-5, err_msg=f"request {i} ({len(xs[i])} rows)")


def test_predict_question_model_sparse_signature(server, question_model):
    """The export's predict_sparse signature (indices, values, dense_shape) over gRPC, against Keras on dense rows."""
    rng = np.random.default_rng(3)
    x = np.where(rng.random((5, QUESTION_DIM)) < 0.05, rng.random((5, QUESTION_DIM)), 0).astype(np.float32)
    idx = np.argwhere(x != 0).astype(np.int64)
    req = predict_pb2.PredictRequest()
    model_spec(req.model_spec, "question", signature="predict_sparse")
    req.inputs["indices"].CopyFrom(tf.make_tensor_proto(idx))
    req.inputs["values"].CopyFrom(tf.make_tensor_proto(x[x != 0]))
    req.inputs["dense_shape"].CopyFrom(tf.make_tensor_proto(np.array(x.shape, np.int64)))
    resp = call(server.predict.Predict, req)
    got = tf.make_ndarray(resp.outputs["probabilities"])
    np.testing.assert_allclose(got, keras_predict(os.path.join(question_model, "1"), x), rtol=0, atol=1e-5,
                               err_msg="predict_sparse over gRPC against Keras on the same rows, dense")


def test_predict_larger_than_grpc_default_limit(server, question_model):
    """A 4.8 MB request: past gRPC's 4 MiB default, well inside TF Serving's INT32_MAX (server.cc)."""
    x = np.random.default_rng(9).random((4000, QUESTION_DIM), dtype=np.float32)
    req = predict_pb2.PredictRequest()
    model_spec(req.model_spec, "question")
    req.inputs["features"].CopyFrom(tf.make_tensor_proto(x))
    assert req.ByteSize() > 4 << 20
    resp = call(server.predict.Predict, req)
    np.testing.assert_allclose(tf.make_ndarray(resp.outputs["probabilities"]),
                               keras_predict(os.path.join(question_model, "1"), x), rtol=0, atol=1e-5)


# --- errors, with TF Serving's codes (and texts where TF Serving writes them) -------------


def predict_req(name="default", version=None, label=None, signature=None, inputs=None, output_filter=()):
    req = predict_pb2.PredictRequest()
    model_spec(req.model_spec, name, version, label, signature)
    for k, v in (inputs if inputs is not None else {"x": tf.make_tensor_proto(X)}).items():
        req.inputs[k].CopyFrom(v)
    req.output_filter.extend(output_filter)
    return req


def infer_req(kind, name="default", signature=None, examples=(example(x=2.0),)):
    req = classification_pb2.ClassificationRequest() if kind == "Classify" else regression_pb2.RegressionRequest()
    model_spec(req.model_spec, name, signature=signature)
    fill_input(req.input, list(examples), None)
    return req


def multi_req(tasks):
    req = inference_pb2.MultiInferenceRequest()
    for name, sig, method in tasks:
        t = req.tasks.add()
        model_spec(t.model_spec, name, signature=sig)
        t.method_name = method
    fill_input(req.input, [example(x=2.0)], None)
    return req


def status_req(name, version=None):
    req = get_model_status_pb2.GetModelStatusRequest()
    model_spec(req.model_spec, name, version)
    return req


Q = "question"
REG, CLS = "tensorflow/serving/regress", "tensorflow/serving/classify"
# id -> (service, rpc, request, code, text TF Serving's message contains or None where TensorFlow's runtime writes it)
ERROR_CASES = {
    "predict_unknown_model": ("predict", "Predict", lambda: predict_req("nope"), grpc.StatusCode.NOT_FOUND,
                              "Servable not found for request: Latest(nope)"),
    "predict_unknown_version": ("predict", "Predict", lambda: predict_req(version=999), grpc.StatusCode.NOT_FOUND,
                                "Servable not found for request: Specific(default, 999)"),
    "predict_unknown_version_label": ("predict", "Predict",
                                      lambda: predict_req("saved_model_half_plus_two_2_versions", label="nope"),
                                      grpc.StatusCode.INVALID_ARGUMENT, "Unrecognized servable version label: nope"),
    "predict_unknown_signature": ("predict", "Predict", lambda: predict_req(signature="nope"),
                                  grpc.StatusCode.FAILED_PRECONDITION, 'Serving signature key "nope" not found.'),
    "predict_wrong_dtype_string": ("predict", "Predict",
                                   lambda: predict_req(inputs={"x": tf.make_tensor_proto(np.array([b"a"], object))}),
                                   grpc.StatusCode.INVALID_ARGUMENT, None),
    "predict_wrong_dtype_double": ("predict", "Predict", lambda: predict_req(Q, inputs={
        "features": tf.make_tensor_proto(np.zeros((2, QUESTION_DIM), np.float64))}), grpc.StatusCode.INVALID_ARGUMENT,
                                   None),
    "predict_wrong_width": ("predict", "Predict", lambda: predict_req(Q, inputs={
        "features": tf.make_tensor_proto(np.zeros((2, 7), np.float32))}), grpc.StatusCode.INVALID_ARGUMENT, None),
    "predict_wrong_rank": ("predict", "Predict", lambda: predict_req(Q, inputs={
        "features": tf.make_tensor_proto(np.zeros((QUESTION_DIM,), np.float32))}), grpc.StatusCode.INVALID_ARGUMENT,
                           None),
    # TensorFlow's saved_model::GetInputValues (tensorflow/cc/saved_model/util.cc), which predict_util.cc calls.
    "predict_unknown_input_alias": ("predict", "Predict", lambda: predict_req(inputs={"z": tf.make_tensor_proto(X)}),
                                    grpc.StatusCode.INVALID_ARGUMENT,
                                    "Signature input alias: x(feed name: x:0) not found in request"),
    "predict_missing_input": ("predict", "Predict", lambda: predict_req(inputs={}), grpc.StatusCode.INVALID_ARGUMENT,
                              "input size does not match signature: 0!=1 len({}) != len({x}). Sent extra: {}. "
                              "Missing but required: {x}."),
    "predict_extra_input": ("predict", "Predict", lambda: predict_req(inputs={
        "x": tf.make_tensor_proto(X), "w": tf.make_tensor_proto(X)}), grpc.StatusCode.INVALID_ARGUMENT,
                            "input size does not match signature: 2!=1 len({w,x}) != len({x}). Sent extra: {w}. "
                            "Missing but required: {}."),
    "predict_unknown_output_filter": ("predict", "Predict", lambda: predict_req(output_filter=["nope"]),
                                      grpc.StatusCode.INVALID_ARGUMENT,
                                      "output tensor alias not found in signature: nope Outputs expected to be in the "
                                      "set {y}."),
    "predict_duplicate_output_filter": ("predict", "Predict", lambda: predict_req(output_filter=["y", "y"]),
                                        grpc.StatusCode.INVALID_ARGUMENT, "duplicate output tensor alias: y"),
    "classify_unknown_signature": ("predict", "Classify", lambda: infer_req("Classify", signature="nope"),
                                   grpc.StatusCode.INVALID_ARGUMENT, "No signature was found with the name: nope"),
    "regress_unknown_signature": ("predict", "Regress", lambda: infer_req("Regress", signature="nope"),
                                  grpc.StatusCode.INVALID_ARGUMENT, "No signature was found with the name: nope"),
    "classify_unknown_model": ("predict", "Classify", lambda: infer_req("Classify", "nope", "classify_x_to_y"),
                               grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)"),
    # serving_default's input is `x`, not `inputs` (classifier.cc PreProcessClassification).
    "classify_predict_signature": ("predict", "Classify", lambda: infer_req("Classify"),
                                   grpc.StatusCode.INVALID_ARGUMENT, "No classification inputs found in SignatureDef"),
    "regress_predict_signature": ("predict", "Regress", lambda: infer_req("Regress"),
                                  grpc.StatusCode.INVALID_ARGUMENT, "No regression inputs found in SignatureDef"),
    "regress_no_examples": ("predict", "Regress", lambda: infer_req("Regress", signature="regress_x_to_y", examples=()),
                            grpc.StatusCode.INVALID_ARGUMENT, "Input is empty."),
    "multi_two_models": ("predict", "MultiInference", lambda: multi_req([
        ("default", "regress_x_to_y", REG), ("saved_model_half_plus_three", "tensorflow/serving/regress", REG)]),
                         grpc.StatusCode.INVALID_ARGUMENT,
                         "All ModelSpecs in a MultiInferenceRequest must access the same model name."),
    "multi_duplicate_signature": ("predict", "MultiInference", lambda: multi_req([
        ("default", "regress_x_to_y", REG), ("default", "regress_x_to_y", REG)]), grpc.StatusCode.INVALID_ARGUMENT,
                                  "Duplicate evaluation of signature: regress_x_to_y"),
    "multi_unknown_signature": ("predict", "MultiInference", lambda: multi_req([("default", "nope", REG)]),
                                grpc.StatusCode.INVALID_ARGUMENT, "Requested signature not found in model graph: nope"),
    "multi_predict_method": ("predict", "MultiInference", lambda: multi_req([
        ("default", "serving_default", "tensorflow/serving/predict")]), grpc.StatusCode.UNIMPLEMENTED,
                             "Unsupported signature method_name: tensorflow/serving/predict"),
    "metadata_unknown_model": ("predict", "GetModelMetadata", lambda: metadata_request("nope"),
                               grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(nope)"),
    "metadata_unknown_version": ("predict", "GetModelMetadata", lambda: metadata_request("default", 999),
                                 grpc.StatusCode.NOT_FOUND, "Servable not found for request: Specific(default, 999)"),
    "metadata_no_field": ("predict", "GetModelMetadata", lambda: metadata_request("default", fields=()),
                          grpc.StatusCode.INVALID_ARGUMENT,
                          "GetModelMetadataRequest must specify at least one metadata_field"),
    "metadata_unknown_field": ("predict", "GetModelMetadata", lambda: metadata_request("default", fields=["nope"]),
                               grpc.StatusCode.INVALID_ARGUMENT, "Metadata field nope is not supported"),
    "status_unknown_model": ("models", "GetModelStatus", lambda: status_req("nope"), grpc.StatusCode.NOT_FOUND,
                             "Could not find any versions of model nope"),
    "status_unknown_version": ("models", "GetModelStatus", lambda: status_req("default", 999),
                               grpc.StatusCode.NOT_FOUND, "Could not find version 999 of model default"),
    # kerasgo serve is started as the README starts it: model management off.
    "reload_off_by_default": ("models", "HandleReloadConfigRequest",
                              lambda: reload_request(model_config("x", HALF_PLUS_THREE)),
                              grpc.StatusCode.PERMISSION_DENIED, "model management is off"),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_errors(server, case):
    service, rpc, make, code, text = ERROR_CASES[case]
    req = make()
    err = rpc_error(getattr(getattr(server, service), rpc), req)
    assert err.code() == code, (f"{rpc} {describe(req)}: {err.code()} {err.details()!r}; "
                                f"TF Serving answers {code}" + (f" {text!r}" if text else ""))
    if text is not None:
        assert text in (err.details() or ""), f"{rpc}: message {err.details()!r}; TF Serving's says {text!r}"


TF_RUNTIME_ERRORS = {
    # id -> (model, feeds): the requests above whose errors TensorFlow's runtime writes
    "predict_wrong_dtype_string": ("default", {"x": np.array([b"a"], object)}),
    "predict_wrong_dtype_double": (Q, {"features": np.zeros((2, QUESTION_DIM), np.float64)}),
    "predict_wrong_width": (Q, {"features": np.zeros((2, 7), np.float32)}),
    "predict_wrong_rank": (Q, {"features": np.zeros((QUESTION_DIM,), np.float32)}),
}


@pytest.mark.parametrize("case", sorted(TF_RUNTIME_ERRORS))
def test_errors_tensorflow_agrees(question_model, case):
    """The same feeds make TensorFlow's Session::Run fail with InvalidArgument, which TF Serving
    returns as INVALID_ARGUMENT (no check of its own on dtype or shape before the run)."""
    name, feeds = TF_RUNTIME_ERRORS[case]
    d = os.path.join(question_model, "1") if name == Q else model_dir(name, 123)
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf_run(d, "serving_default", feeds)


# --- health, reload, limits, start-up ---------------------------------------------------


# "" is the whole server; the other two are the names TF Serving marks SERVING
# (server.cc, with --enable_grpc_healthcheck_service).
@pytest.mark.parametrize("service", ["", "ModelService", "PredictionService"], ids=["server", "ModelService",
                                                                                     "PredictionService"])
def test_health(server, service):
    try:
        resp = call(server.health.Check, health_pb2.HealthCheckRequest(service=service))
    except grpc.RpcError as e:
        pytest.fail(f"grpc.health.v1 Check(service={service!r}): {e.code()} {e.details()!r}; TF Serving answers SERVING")
    assert resp.status == health_pb2.HealthCheckResponse.SERVING, (f"grpc.health.v1 Check(service={service!r}): "
                                   f"{health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)}; want SERVING")


def test_health_unknown_service(server):
    err = rpc_error(server.health.Check, health_pb2.HealthCheckRequest(service="nope"))
    assert err.code() == grpc.StatusCode.NOT_FOUND, f"Check(service='nope'): {err.code()}; the health protocol says NOT_FOUND"


def model_config(name, base, versions=(), labels=None):
    c = model_server_config_pb2.ModelConfig(name=name, base_path=base, model_platform="tensorflow")
    if versions:
        c.model_version_policy.specific.versions.extend(versions)
    for k, v in (labels or {}).items():
        c.version_labels[k] = v
    return c


def reload_request(*configs):
    req = model_management_pb2.ReloadConfigRequest()
    req.config.model_config_list.config.extend(configs)
    return req


TOKEN = "reload-token-for-the-tests"


def reload_server(tmp_path, root=SERVING):
    """A server started with model management on: reloads of base paths under root, with TOKEN."""
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    return Server(["--grpc-port", "0", "--model", f"default={HALF_PLUS_TWO}",
                   "--allow-reload-under", root, "--reload-token-file", str(token)]).connect()


def reload_call(s, req, token=TOKEN):
    metadata = [("authorization", f"Bearer {token}")] if token else None
    return s.models.HandleReloadConfigRequest(req, timeout=RPC_TIMEOUT, metadata=metadata)


def test_reload_refused(tmp_path):
    """With model management on, a reload without the token, with another, or of a base path outside the allowed
    directories is refused, and the served models stay as they were."""
    s = reload_server(tmp_path)
    try:
        outside = tmp_path / "elsewhere"
        shutil.copytree(HALF_PLUS_THREE, outside)
        cases = [
            ("no token", reload_request(model_config("x", HALF_PLUS_THREE)), None, grpc.StatusCode.UNAUTHENTICATED),
            ("another token", reload_request(model_config("x", HALF_PLUS_THREE)), "guess", grpc.StatusCode.UNAUTHENTICATED),
            ("outside the roots", reload_request(model_config("x", str(outside))), TOKEN, grpc.StatusCode.PERMISSION_DENIED),
            ("no model_config_list", model_management_pb2.ReloadConfigRequest(), TOKEN, grpc.StatusCode.INVALID_ARGUMENT),
        ]
        for name, req, token, code in cases:
            with pytest.raises(grpc.RpcError) as e:
                reload_call(s, req, token)
            assert e.value.code() == code, f"{name}: {e.value.code()} {e.value.details()!r}, want {code}"
        assert tf.make_ndarray(call(s.predict.Predict, predict_req()).outputs["y"]).tolist() == [2.5, 3.0, 4.5]
        err = rpc_error(s.predict.Predict, predict_req("x"))
        assert err.code() == grpc.StatusCode.NOT_FOUND, f"model x after refused reloads: {err.code()}"
    finally:
        s.stop()


def test_reload_config(tmp_path):
    """HandleReloadConfigRequest serves exactly the new config, as TF Serving's ServerCore::ReloadConfig does
    (g3doc/serving_config.md): new models are available when it answers OK, removed ones are unloaded."""
    s = reload_server(tmp_path)
    try:
        req = reload_request(model_config("default", HALF_PLUS_TWO), model_config("three", HALF_PLUS_THREE))
        try:
            resp = reload_call(s, req)
        except grpc.RpcError as e:
            pytest.fail(f"HandleReloadConfigRequest adding a model: {e.code()} {e.details()!r}; TF Serving loads it "
                        "and answers OK once it is available (model_service_impl.cc -> server_core.cc ReloadConfig, "
                        "WaitUntilModelsAvailable; g3doc/serving_config.md)")
        assert resp.status.error_code == 0, f"{describe(req)}: status {resp.status}"
        p = call(s.predict.Predict, predict_req("three"))
        assert tf.make_ndarray(p.outputs["y"]).tolist() == [3.5, 4.0, 5.5], "half_plus_three right after the reload"
        assert tf.make_ndarray(call(s.predict.Predict, predict_req()).outputs["y"]).tolist() == [2.5, 3.0, 4.5]

        req = reload_request(
            model_config("three", HALF_PLUS_THREE),
            model_config("two", TWO_VERSIONS, versions=[123, 124], labels={"stable": 123}))
        resp = reload_call(s, req)
        assert resp.status.error_code == 0, f"{describe(req)}: status {resp.status}"
        p = call(s.predict.Predict, predict_req("two", label="stable"))
        check_model_spec(p.model_spec, "two", "serving_default", 123, "label after reload")
        st = call(s.models.GetModelStatus, status_req("two"))
        assert sorted(v.version for v in st.model_version_status) == [123, 124]
        # A removed model is unloaded asynchronously (its version is no longer aspired).
        deadline = time.monotonic() + 20
        while True:
            try:
                call(s.predict.Predict, predict_req("default"))
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND, f"removed model: {e.code()} {e.details()}"
                break
            assert time.monotonic() < deadline, "model 'default' still answers 20 s after a reload removed it"
            time.sleep(0.2)
    finally:
        s.stop()


def test_max_grpc_message_bytes():
    """A request past --max-grpc-message-bytes is refused by gRPC itself: RESOURCE_EXHAUSTED."""
    s = Server(["--grpc-port", "0", "--max-grpc-message-bytes", "4096", "--model", f"default={HALF_PLUS_TWO}"]).connect()
    try:
        small = call(s.predict.Predict, predict_req())
        assert tf.make_ndarray(small.outputs["y"]).tolist() == [2.5, 3.0, 4.5]
        big = predict_req(inputs={"x": tf.make_tensor_proto(np.ones(2000, np.float32))})
        err = rpc_error(s.predict.Predict, big)
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, f"{big.ByteSize()}-byte request: {err.code()} {err.details()}"
    finally:
        s.stop()


def test_grpc_disabled():
    """--grpc-port -1 serves REST only: the start-up line names no grpc_address."""
    s = Server(["--grpc-port", "-1", "--model", f"default={HALF_PLUS_TWO}"])
    try:
        assert s.grpc_address is None, f"--grpc-port -1 logged grpc_address={s.grpc_address}: {s.serving_line}"
        assert s.proc.poll() is None, f"exited {s.proc.returncode}:\n{s.log()}"
    finally:
        s.stop()
