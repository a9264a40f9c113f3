"""TF Serving's warmup records (assets.extra/tf_serving_warmup_requests),
written as TF Serving's guide (g3doc/saved_model_warmup.md) writes them:
tf.io.TFRecordWriter over tensorflow_serving's PredictionLog messages.
`kerasgo serve` replays them before a version takes traffic, says so in its
log and its metrics, and refuses a version whose records fail, as TF
Serving does."""

import os
import re
import shutil
import subprocess
import urllib.request

import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, input_pb2, predict_pb2, prediction_log_pb2,
                                     regression_pb2)

from test_grpc_client import HALF_PLUS_TWO, KERASGO, Server, write_config


def example(x):
    return tf.train.Example(features=tf.train.Features(feature={"x": tf.train.Feature(float_list=tf.train.FloatList(value=[x]))}))


def warmup_logs():
    """Five logs of the kinds TF Serving replays, for half_plus_two."""
    logs = []
    for x in ([[1.0]], [[2.0], [5.0]], [[0.0]]):
        req = predict_pb2.PredictRequest()
        req.model_spec.name = "m"
        req.model_spec.signature_name = "serving_default"
        req.inputs["x"].CopyFrom(tf.make_tensor_proto(x, dtype=tf.float32))
        logs.append(prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=req)))
    examples = input_pb2.Input(example_list=input_pb2.ExampleList(examples=[example(1.0), example(3.0)]))
    reg = regression_pb2.RegressionRequest(input=examples)
    reg.model_spec.signature_name = "regress_x_to_y"
    logs.append(prediction_log_pb2.PredictionLog(regress_log=prediction_log_pb2.RegressLog(request=reg)))
    cls = classification_pb2.ClassificationRequest(input=examples)
    cls.model_spec.signature_name = "classify_x_to_y"
    logs.append(prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(request=cls)))
    return logs


def version_with_warmup(tmp_path, records):
    base = tmp_path / "half_plus_two"
    shutil.copytree(os.path.join(HALF_PLUS_TWO, "00000123"), base / "123")
    os.makedirs(base / "123" / "assets.extra")
    with tf.io.TFRecordWriter(str(base / "123" / "assets.extra" / "tf_serving_warmup_requests")) as w:
        for r in records:
            w.write(r if isinstance(r, bytes) else r.SerializeToString())
    return str(base)


def test_warmup_runs_before_traffic(tmp_path):
    base = version_with_warmup(tmp_path, warmup_logs())
    s = Server(["--grpc-port", "-1", "--model-config", write_config(tmp_path / "models.json", [("m", base, None, None)])])
    try:
        lines = [line for line in s.lines if "msg=warmup" in line]
        assert len(lines) == 1 and "records=5" in lines[0] and "version=123" in lines[0], s.log()
        metrics = urllib.request.urlopen(f"http://{s.rest_address}/metrics", timeout=30).read().decode()
        assert 'kerasgo_warmup_records{model="m",version="123"} 5' in metrics, metrics
        assert re.search(r'kerasgo_warmup_seconds\{model="m",version="123"\} [0-9.e-]+', metrics)
    finally:
        s.stop()


def test_failing_warmup_fails_the_version(tmp_path):
    bad = predict_pb2.PredictRequest()
    bad.inputs["nope"].CopyFrom(tf.make_tensor_proto([[1.0]], dtype=tf.float32))
    for name, records, says in [
        ("a request the model refuses", warmup_logs()[:1] + [prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=bad))], "record 2"),
        ("not a PredictionLog", [b"\xff\xff\xff"], "record 1 is not a PredictionLog"),
    ]:
        base = version_with_warmup(tmp_path / name.replace(" ", "_"), records)
        cfg = write_config(tmp_path / (name.replace(" ", "_") + ".json"), [("m", base, None, None)])
        r = subprocess.run([KERASGO, "serve", "--rest-port", "0", "--grpc-port", "-1", "--poll-interval", "0",
                            "--model-config", cfg], capture_output=True, text=True, timeout=120)
        assert r.returncode != 0, f"{name}: served anyway"
        assert "tf_serving_warmup_requests" in r.stderr and says in r.stderr, f"{name}: {r.stderr}"
