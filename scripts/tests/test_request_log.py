"""Request logs (`kerasgo serve --request-log-dir`, or logging_config in a
model config) read by TensorFlow's own TFRecord reader (tf.data.TFRecordDataset)
and parsed by tensorflow-serving-api's PredictionLog, after traffic from four
official clients at once: REST (TF Serving's JSON), gRPC (tensorflow-serving-api),
and the Open Inference Protocol over REST and gRPC (tritonclient). Every
request is in the log once, under the id its client gave, with the tensor it
sent and the answer it got. The logs then serve as TF Serving's warmup records
for a new version, unchanged."""

import csv
import json
import os
import re
import shutil
import subprocess
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import tensorflow as tf
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from sklearn.datasets import load_svmlight_file
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2, prediction_service_pb2_grpc

from test_grpc_client import KERASGO, REPO, RPC_TIMEOUT, Server

FORTUNES = os.path.join(REPO, "testdata", "models", "fortunes")
ROWS = os.path.join(REPO, "testdata", "features", "fortunes", "test.libsvm")


def rows(n):
    x, _ = load_svmlight_file(ROWS, n_features=256)
    return np.asarray(x[:n].todense(), dtype=np.float32)


def read_logs(prefix):
    """Every record under prefix, oldest file first, by TensorFlow's reader."""
    directory, base = os.path.split(prefix)
    files = sorted(f for f in os.listdir(directory) if f.startswith(base + "-") and f.endswith(".tfrecord"))
    assert files, f"no log files under {prefix}: {os.listdir(directory)}"
    records = []
    for f in files:
        for raw in tf.data.TFRecordDataset(os.path.join(directory, f)):
            records.append(prediction_log_pb2.PredictionLog.FromString(raw.numpy()))
    return files, records


def metric(server, name):
    text = urllib.request.urlopen(f"http://{server.rest_address}/metrics", timeout=RPC_TIMEOUT).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


def send_all(server, x):
    """Sends row i of x by one of four clients, under id "req-i", eight at a
    time; returns {id: the answer's probabilities}."""
    meta = json.load(urllib.request.urlopen(f"http://{server.rest_address}/v1/models/fortunes/metadata", timeout=RPC_TIMEOUT))
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    (input_name,), (output_name,) = sig["inputs"], sig["outputs"]
    channel = grpc.insecure_channel(server.grpc_address)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    local = threading.local()

    def oip_http():
        if not hasattr(local, "http"):
            local.http = triton_http.InferenceServerClient(server.rest_address)
        return local.http

    def oip_grpc():
        if not hasattr(local, "grpc"):
            local.grpc = triton_grpc.InferenceServerClient(server.grpc_address)
        return local.grpc

    def send(i):
        rid, row = f"req-{i}", x[i:i + 1]
        match i % 4:
            case 0:  # TF Serving's REST API
                req = urllib.request.Request(f"http://{server.rest_address}/v1/models/fortunes:predict",
                                             data=json.dumps({"instances": row.tolist()}).encode(),
                                             headers={"X-Request-Id": rid})
                with urllib.request.urlopen(req, timeout=RPC_TIMEOUT) as resp:
                    assert resp.headers["X-Request-Id"] == rid
                    return rid, np.asarray(json.load(resp)["predictions"], dtype=np.float32)
            case 1:  # TF Serving's gRPC API
                req = predict_pb2.PredictRequest()
                req.model_spec.name = "fortunes"
                req.inputs[input_name].CopyFrom(tf.make_tensor_proto(row))
                resp, call = stub.Predict.with_call(req, timeout=RPC_TIMEOUT, metadata=[("x-request-id", rid)])
                assert ("x-request-id", rid) in call.initial_metadata()
                return rid, tf.make_ndarray(resp.outputs[output_name])
            case 2:  # the Open Inference Protocol over REST
                inp = triton_http.InferInput(input_name, list(row.shape), "FP32")
                inp.set_data_from_numpy(row, binary_data=i % 8 == 2)
                return rid, oip_http().infer("fortunes", [inp], request_id=rid).as_numpy(output_name)
            case 3:  # and over gRPC
                inp = triton_grpc.InferInput(input_name, list(row.shape), "FP32")
                inp.set_data_from_numpy(row)
                return rid, oip_grpc().infer("fortunes", [inp], request_id=rid).as_numpy(output_name)

    try:
        with ThreadPoolExecutor(8) as pool:
            return dict(pool.map(send, range(len(x))))
    finally:
        channel.close()


def test_logs_read_by_tensorflow(tmp_path):
    x = rows(200)
    logs = tmp_path / "logs"
    # Small files, so that the log rotates under load.
    s = Server(["--grpc-port", "0", "--model", f"fortunes={FORTUNES}",
                "--request-log-dir", str(logs), "--request-log-max-file-bytes", str(64 << 10)])
    try:
        answers = send_all(s, x)
    finally:
        s.stop()  # SIGTERM: drains, then writes what the log holds
    files, records = read_logs(str(logs / "fortunes"))
    assert len(files) > 1, "the log did not rotate"
    assert all(os.path.getsize(logs / f) <= 64 << 10 for f in files)
    assert len(records) == len(x), f"{len(records)} records for {len(x)} requests"
    seen = set()
    for rec in records:
        meta = rec.log_metadata
        rid = meta.request_origin
        assert rid in answers and rid not in seen, rid
        seen.add(rid)
        assert meta.model_spec.name == "fortunes" and meta.model_spec.version.value == 1
        assert meta.model_spec.signature_name == "serving_default" and meta.sampling_config.sampling_rate == 1
        assert rec.WhichOneof("log_type") == "predict_log"
        (sent,) = rec.predict_log.request.inputs.values()
        (got,) = rec.predict_log.response.outputs.values()
        i = int(rid.split("-")[1])
        np.testing.assert_array_equal(tf.make_ndarray(sent), x[i:i + 1])
        np.testing.assert_array_equal(tf.make_ndarray(got).reshape(answers[rid].shape), answers[rid])

    # The logs as `kerasgo predict` input: every logged row scored again,
    # under its request id, and the disagreement with the logged answers
    # counted as this test counts it from the two sets of probabilities.
    out = tmp_path / "again.csv"
    run = subprocess.run([KERASGO, "predict", FORTUNES, "--output", str(out)] +
                         [a for f in files for a in ("--input", str(logs / f))], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    again = {}
    with open(out, newline="") as f:
        for r in csv.DictReader(f):
            again[r["id"]] = np.array([float(v) for k, v in r.items() if k.startswith("p_")], dtype=np.float32)
    assert sorted(again) == sorted(answers)
    differ = sum(int(np.argmax(again[rid]) != np.argmax(answers[rid].reshape(-1))) for rid in answers)
    reports = [line for line in run.stderr.splitlines() if "against the logged answers" in line]
    assert len(reports) == len(files), run.stderr
    said = sum(int(re.search(r"differs on (\d+) of (\d+) rows", line).group(1)) for line in reports)
    rows_said = sum(int(re.search(r"differs on \d+ of (\d+) rows", line).group(1)) for line in reports)
    assert (said, rows_said) == (differ, len(x)), run.stderr
    for rid in answers:
        np.testing.assert_allclose(again[rid], answers[rid].reshape(-1), rtol=1e-5, atol=1e-6)


def test_logs_are_warmup_records(tmp_path):
    """A version whose assets.extra/tf_serving_warmup_requests is a request
    log, copied as it is, warms up on the logged requests."""
    x = rows(12)
    logs = tmp_path / "logs"
    s = Server(["--grpc-port", "0", "--model", f"fortunes={FORTUNES}", "--request-log-dir", str(logs)])
    try:
        send_all(s, x)
    finally:
        s.stop()
    (log_file,) = [f for f in os.listdir(logs) if f.endswith(".tfrecord")]
    base = tmp_path / "fortunes"
    shutil.copytree(FORTUNES, base / "2")
    os.makedirs(base / "2" / "assets.extra", exist_ok=True)
    shutil.copy(logs / log_file, base / "2" / "assets.extra" / "tf_serving_warmup_requests")
    s = Server(["--grpc-port", "0", "--model", f"fortunes={base}"])
    try:
        lines = [line for line in s.lines if "msg=warmup" in line]
        assert len(lines) == 1 and f"records={len(x)}" in lines[0] and "version=2" in lines[0], s.log()
        assert metric(s, "kerasgo_warmup_records") == len(x)
    finally:
        s.stop()


def mix_and_evaluation(model):
    """The class mix recorded in model, and kerasgo evaluate's report on the
    validation rows, which must hold the same counts."""
    with open(model / "assets" / "kerasgo-class-mix.json", encoding="utf-8") as f:
        mix = json.load(f)
    run = subprocess.run([KERASGO, "evaluate", str(model), "--data", ROWS, "--json"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)["report"]
    assert mix["predicted"] == report["predicted_counts"] and mix["labels"] == report["baselines"]["class_counts"]
    return mix, report


def test_findings_on_live_traffic(tmp_path):
    """kerasgo train records the class mix of its validation rows; kerasgo
    serve compares each version's latest answers with it. Traffic drawn from
    the validation rows is silent; traffic that collapses onto one class gets
    the finding, with the numbers kerasgo evaluate gives on those rows."""
    model = tmp_path / "model"
    run = subprocess.run([KERASGO, "train", FORTUNES, "--data", os.path.join(REPO, "testdata", "features", "fortunes", "train.libsvm"),
                          "--validation-data", ROWS, "--epochs", "1", "--seed", "1", "--out", str(model)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    mix, report = mix_and_evaluation(model)

    x = rows(1255)
    s = Server(["--grpc-port", "-1", "--model", f"fortunes={model}", "--traffic-window", "500"])
    try:
        def predict(batch):
            req = urllib.request.Request(f"http://{s.rest_address}/v1/models/fortunes:predict",
                                         data=json.dumps({"instances": batch.tolist()}).encode())
            return np.asarray(json.load(urllib.request.urlopen(req, timeout=RPC_TIMEOUT))["predictions"])

        def findings():
            body = json.load(urllib.request.urlopen(f"http://{s.rest_address}/kerasgo/findings", timeout=RPC_TIMEOUT))
            (v,) = body["versions"]
            assert v["model"] == "fortunes" and v["rows"] == 500, v
            return v["findings"]

        order = np.random.default_rng(7).permutation(len(x))
        answers = np.concatenate([predict(x[order[i:i + 5]]) for i in range(0, len(x), 5)])
        assert findings() == [], "traffic drawn from the validation rows"
        assert metric(s, "kerasgo_traffic_finding") == 0

        # Collapse: only rows the model answers with one class.
        top = answers.argmax(axis=1)
        cls = int(np.bincount(top).argmax())
        picked = x[order][top == cls]
        for i in range(0, 500, 5):
            predict(picked[np.arange(i, i + 5) % len(picked)])
        found = {f["kind"]: f["text"] for f in findings()}
        name, n = mix["classes"][cls], sum(report["predicted_counts"])
        want = (f'"{name}" receives 100.0% of the predictions (500 of 500 rows) but received '
                f'{100 * report["predicted_counts"][cls] / n:.1f}% of them on the validation rows '
                f'({report["predicted_counts"][cls]} of {n}), where it holds '
                f'{100 * report["baselines"]["class_counts"][cls] / n:.1f}% of the labels ({report["baselines"]["class_counts"][cls]})')
        assert want in found.get("prediction_collapse", ""), found
        assert "classes_never_predicted" in found and "class_mix_shift" in found, found
        assert metric(s, "kerasgo_traffic_finding") == 3
    finally:
        s.stop()


def test_export_records_class_mix(tmp_path):
    """kerasgo export --validation-data records the class mix kerasgo
    evaluate reports on those rows."""
    out = tmp_path / "exported"
    run = subprocess.run([KERASGO, "export", "--arch", "question", "--input-dim", "256", "--classes", "20", "--seed", "3",
                          "--out", str(out), "--validation-data", ROWS], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    mix, _ = mix_and_evaluation(out)
    assert mix["rows"] == 1255


def test_classify_and_regress_logs(tmp_path):
    """TF Serving's half_plus_two, asked over REST (TF Serving's documented
    :classify and :regress JSON) and gRPC: each request is logged as TF
    Serving's ClassifyLog or RegressLog, with the examples sent and the
    results the client got."""
    from tensorflow_serving.apis import classification_pb2, input_pb2, regression_pb2

    from test_grpc_client import HALF_PLUS_TWO

    logs = tmp_path / "logs"
    s = Server(["--grpc-port", "0", "--model", f"default={HALF_PLUS_TWO}", "--request-log-dir", str(logs)])
    got = {}
    try:
        for verb, sig, x in (("classify", "classify_x_to_y", 2.0), ("regress", "regress_x_to_y", 5.0)):
            req = urllib.request.Request(f"http://{s.rest_address}/v1/models/default:{verb}", headers={"X-Request-Id": f"rest-{verb}"},
                                         data=json.dumps({"signature_name": sig, "examples": [{"x": x}]}).encode())
            got[f"rest-{verb}"] = json.load(urllib.request.urlopen(req, timeout=RPC_TIMEOUT))["results"]
        channel = grpc.insecure_channel(s.grpc_address)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        examples = input_pb2.Input(example_list=input_pb2.ExampleList(examples=[
            tf.train.Example(features=tf.train.Features(feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[7.0]))}))]))
        creq = classification_pb2.ClassificationRequest(input=examples)
        creq.model_spec.name, creq.model_spec.signature_name = "default", "classify_x_to_y"
        got["grpc-classify"] = stub.Classify(creq, timeout=RPC_TIMEOUT, metadata=[("x-request-id", "grpc-classify")])
        rreq = regression_pb2.RegressionRequest(input=examples)
        rreq.model_spec.name, rreq.model_spec.signature_name = "default", "regress_x_to_y"
        got["grpc-regress"] = stub.Regress(rreq, timeout=RPC_TIMEOUT, metadata=[("x-request-id", "grpc-regress")])
        channel.close()
    finally:
        s.stop()
    _, records = read_logs(str(logs / "default"))
    by_id = {r.log_metadata.request_origin: r for r in records}
    assert sorted(by_id) == sorted(got)
    for rid, rec in by_id.items():
        kind = rec.WhichOneof("log_type")
        assert kind == ("classify_log" if "classify" in rid else "regress_log"), (rid, kind)
        log = getattr(rec, kind)
        (ex,) = log.request.input.example_list.examples
        sent = ex.features.feature["x"].float_list.value[0]
        if rid.startswith("rest-"):
            assert sent == (2.0 if "classify" in rid else 5.0)
            if kind == "classify_log":
                (classes,) = log.response.result.classifications
                assert [[c.label, c.score] for c in classes.classes] == got[rid][0]
            else:
                assert [r.value for r in log.response.result.regressions] == got[rid]
        else:
            assert sent == 7.0 and log.response.result == got[rid].result
        assert rec.log_metadata.model_spec.version.value == 123
