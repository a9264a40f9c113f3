"""Layers real models carry, exported from every file format a Keras user has,
held to Keras itself.

Each case writes a model with Keras (Keras 3: .keras and .h5; Keras 2, i.e.
tf_keras in a child process with TF_USE_LEGACY_KERAS=1: .h5 and a SavedModel
directory), trains it PRE_STEPS steps first so that its optimizer has state,
exports it with export_keras --from, loads the export with
tf.saved_model.load (the graph Go runs) and checks predictions and STEPS
training steps against the Keras that wrote the file.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import export_keras
import keras_variants as kv

FORMATS = ("keras", "h5_keras3", "h5_keras2", "savedmodel_keras2")
PREDICT_TOL = 1e-5
TRAIN_TOL = 1e-4

# Largest differences seen, printed at the end of the session (pytest -s) for the report.
MEASURED: dict = {}


@pytest.fixture(scope="session")
def keras2_files(tmp_path_factory):
    """Every variant written by tf_keras (h5 and SavedModel dir) with its golden npz."""
    out = tmp_path_factory.mktemp("keras2")
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_variants.py")
    proc = subprocess.run([sys.executable, script, str(out)] + list(kv.VARIANTS),
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def keras3_file(tmp_path, variant, fmt):
    """Writes variant with Keras 3 after PRE_STEPS steps; returns the path and
    the golden values, computed by the same in-memory model going on."""
    model = kv.build(keras, variant)
    _, pre, _ = kv.data(variant)
    for bx, by in pre:
        model.train_on_batch(bx, by)
    path = str(tmp_path / (variant + (".keras" if fmt == "keras" else ".h5")))
    model.save(path)
    return path, model


def source(tmp_path, keras2_files, variant, fmt):
    """(path to export from, golden dict, in-memory Keras 3 model or None)."""
    if fmt in ("keras", "h5_keras3"):
        path, model = keras3_file(tmp_path, variant, fmt)
        return path, None, model
    ref = dict(np.load(keras2_files / (variant + ".npz")))
    path = keras2_files / (variant + (".h5" if fmt == "h5_keras2" else "_dir"))
    return str(path), ref, None


def metadata(out):
    with open(os.path.join(out, "assets", export_keras.METADATA_FILE), encoding="utf-8") as f:
        return json.load(f)


def record(variant, fmt, what, value):
    key = (variant, fmt)
    MEASURED.setdefault(key, {})
    MEASURED[key][what] = max(MEASURED[key].get(what, 0.0), float(value))


def ones(n):
    return np.ones(n, np.float32)


def cases():
    """(variant, format) pairs. Keras 3 has no legacy optimizers, so legacy_adam
    exists only in the Keras 2 formats; a .keras file's optimizer state is
    Keras' own to restore, so the other optimizer variants skip that format
    (softmax_cce covers it)."""
    for variant in kv.VARIANTS:
        for fmt in FORMATS:
            if variant == "legacy_adam" and fmt in ("keras", "h5_keras3"):
                continue
            if variant in kv.OPTIMIZERS and fmt == "keras":
                continue
            yield variant, fmt


@pytest.mark.parametrize("variant, fmt", list(cases()))
def test_export_matches_keras(tmp_path, keras2_files, variant, fmt):
    path, ref, model = source(tmp_path, keras2_files, variant, fmt)
    out = str(tmp_path / "exported")
    assert export_keras.main(["--from", path, "--out", out]) == 0
    meta = metadata(out)
    assert meta["source_format"] == {"keras": "keras", "h5_keras3": "h5-keras3", "h5_keras2": "h5-keras2",
                                     "savedmodel_keras2": "savedmodel-keras2"}[fmt]
    assert meta["optimizer_state"] == "restored", meta["optimizer_state_note"]
    assert abs(meta["optimizer"]["config"]["learning_rate"] - kv.LEARNING_RATE) < 1e-7
    assert meta["label_mode"] == ("sparse" if kv.VARIANTS[variant][1].startswith("sparse") else "onehot")

    x, _, steps = kv.data(variant)
    loaded = tf.saved_model.load(out)
    sig = loaded.signatures

    # Predictions: the state the file was saved in.
    got = sig["serving_default"](features=x)["probabilities"].numpy()
    want = ref["predictions"] if ref is not None else model.predict(x, verbose=0)
    record(variant, fmt, "predict", np.max(np.abs(got - want)))
    np.testing.assert_allclose(got, want, atol=PREDICT_TOL)

    # Sparse signatures only where they compute what the dense ones do.
    sparse_names = {"predict_sparse", "train_step_sparse", "evaluate_step_sparse"}
    if kv.dense_first(variant):
        assert sparse_names <= set(sig) and meta["sparse_input"] is True
        assert {"predict_sparse", "train_sparse", "evaluate_sparse"} <= set(meta["signatures"])
        sp = tf.sparse.from_dense(x)
        s = sig["predict_sparse"](indices=sp.indices, values=sp.values, dense_shape=sp.dense_shape)
        np.testing.assert_allclose(s["probabilities"].numpy(), got, atol=1e-6)
    else:
        assert not sparse_names & set(sig) and meta["sparse_input"] is False
        assert not {"predict_sparse", "train_sparse", "evaluate_sparse"} & set(meta["signatures"])

    # STEPS training steps: Keras 2's dropout masks come from another random
    # generator than the export's, so those runs are compared up to the first
    # step's loss only where no dropout is drawn.
    if ref is None:
        # Dropout draws its masks from a seed generator whose counter the
        # files do not keep: start Keras' where the export's starts, and
        # the masks are the same.
        seeds = {kv.weight_name(k): v.numpy() for k, v in sig["get_weights"]().items() if "seed_generator" in k}
        mine = [v for v in model.variables if "seed_generator" in v.path]
        assert len(seeds) == len(mine)
        for v, value in zip(mine, seeds.values()):
            v.assign(value)
        golden = kv.reference(model, variant, lambda x: model.predict(x, verbose=0))
    else:
        golden = ref
    losses = [float(sig["train_step"](features=bx, labels=by, sample_weight=ones(len(bx)))["loss"])
              for bx, by in steps]
    weights = {kv.weight_name(k): v.numpy() for k, v in sig["get_weights"]().items() if "seed_generator" not in k}
    comparable = ref is None or not kv.has_dropout(variant)
    if comparable:
        record(variant, fmt, "loss", np.max(np.abs(np.asarray(losses) - golden["losses"])))
        np.testing.assert_allclose(losses, golden["losses"], atol=TRAIN_TOL)
        golden_w = {k[2:]: v for k, v in golden.items() if k.startswith("w:")}
        assert set(golden_w) == set(weights)
        for k, v in golden_w.items():
            record(variant, fmt, "weights", np.max(np.abs(weights[k] - v)))
            np.testing.assert_allclose(weights[k], v, atol=TRAIN_TOL, err_msg=k)
    else:
        assert all(np.isfinite(losses))

    # The trained export saves as a SavedModel and reloads predicting the same.
    trained = sig["serving_default"](features=x)["probabilities"].numpy()
    again = str(tmp_path / "saved_again")
    tf.saved_model.save(loaded, again, signatures=dict(sig))
    np.testing.assert_allclose(
        tf.saved_model.load(again).signatures["serving_default"](features=x)["probabilities"].numpy(),
        trained, atol=1e-6)


@pytest.mark.parametrize("variant", ["dropout", "dropout_first", "batchnorm_first", "softmax_cce"])
def test_dropout_only_in_training(tmp_path, variant):
    """train_step draws a new dropout mask each call; serving and evaluate draw none."""
    path, _ = keras3_file(tmp_path, variant, "keras")
    out = str(tmp_path / "exported")
    assert export_keras.main(["--from", path, "--out", out]) == 0
    sig = tf.saved_model.load(out).signatures
    sig["set_learning_rate"](learning_rate=tf.constant(0.0))  # the weights stay put
    x, _, steps = kv.data(variant)
    bx, by = steps[0]
    w = ones(len(bx))
    e1 = sig["evaluate_step"](features=bx, labels=by, sample_weight=w)
    e2 = sig["evaluate_step"](features=bx, labels=by, sample_weight=w)
    np.testing.assert_array_equal(e1["probabilities"].numpy(), e2["probabilities"].numpy())
    assert float(e1["loss"]) == float(e2["loss"])
    served = sig["serving_default"](features=bx)["probabilities"].numpy()
    np.testing.assert_array_equal(served, e1["probabilities"].numpy())
    t1 = sig["train_step"](features=bx, labels=by, sample_weight=w)["probabilities"].numpy()
    t2 = sig["train_step"](features=bx, labels=by, sample_weight=w)["probabilities"].numpy()
    if kv.has_dropout(variant):
        assert np.max(np.abs(t1 - t2)) > 1e-3, "train_step should draw a new dropout mask each call"
        assert np.max(np.abs(t1 - served)) > 1e-3
    elif variant == "batchnorm_first":
        # Training mode normalises with the batch's statistics, the same twice.
        np.testing.assert_allclose(t1, t2, atol=1e-6)
        assert np.max(np.abs(t1 - served)) > 1e-4
    else:
        np.testing.assert_allclose(t1, t2, atol=1e-6)
        np.testing.assert_allclose(t1, served, atol=1e-6)


def test_batchnorm_moving_statistics_move(tmp_path):
    """train_step updates the moving mean and variance, as Keras' fit does."""
    path, model = keras3_file(tmp_path, "batchnorm_first", "keras")
    out = str(tmp_path / "exported")
    assert export_keras.main(["--from", path, "--out", out]) == 0
    sig = tf.saved_model.load(out).signatures
    before = {k: v.numpy() for k, v in sig["get_weights"]().items()}
    assert any("moving_mean" in k for k in before) and any("moving_variance" in k for k in before)
    _, _, steps = kv.data("batchnorm_first")
    bx, by = steps[0]
    sig["train_step"](features=bx, labels=by, sample_weight=ones(len(bx)))
    model.train_on_batch(bx, by)
    after = {kv.weight_name(k): v.numpy() for k, v in sig["get_weights"]().items()}
    before = {kv.weight_name(k): v for k, v in before.items()}
    for k in before:
        if "moving" in k:
            assert np.max(np.abs(after[k] - before[k])) > 1e-6, k
    for v in model.variables:
        if "moving" in v.path:
            np.testing.assert_allclose(after[kv.weight_name(v.path)], np.asarray(v), atol=1e-6)


def test_regularization_loss_in_train_not_evaluate(tmp_path):
    """train_step's loss carries the L1/L2 penalties, as Keras' train_on_batch reports it."""
    path, model = keras3_file(tmp_path, "l1l2", "keras")
    out = str(tmp_path / "exported")
    assert export_keras.main(["--from", path, "--out", out]) == 0
    sig = tf.saved_model.load(out).signatures
    _, _, steps = kv.data("l1l2")
    bx, by = steps[0]
    plain = float(keras.losses.CategoricalCrossentropy()(by, model.predict(bx, verbose=0)))
    penalty = float(np.sum([np.asarray(l) for l in model.losses]))
    assert penalty > 1e-3
    got = float(sig["train_step"](features=bx, labels=by, sample_weight=ones(len(bx)))["loss"])
    want = float(model.train_on_batch(bx, by))
    assert abs(got - want) < TRAIN_TOL and abs(got - (plain + penalty)) < TRAIN_TOL


def test_report_measured_differences():
    """Prints the largest differences seen (run with -s); always passes."""
    for (variant, fmt), d in sorted(MEASURED.items()):
        print(f"{variant:16s} {fmt:18s} " + " ".join(f"{k}={v:.2e}" for k, v in sorted(d.items())))
