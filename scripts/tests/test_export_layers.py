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
from sharing import keras_cache, once_per_run

FORMATS = ("keras", "h5_keras3", "h5_keras2", "savedmodel_keras2")
PREDICT_TOL = 1e-5
TRAIN_TOL = 1e-4

# Largest differences seen, printed at the end of the session (pytest -s) for the report.
MEASURED: dict = {}


@pytest.fixture(scope="session")
def keras2_files(tmp_path_factory):
    """Every variant written by tf_keras (h5 and SavedModel dir) with its golden npz,
    kept from run to run by keras_cache (keyed by keras_variants.py, the variants
    asked for and the installed packages)."""
    here = os.path.dirname(os.path.abspath(__file__))
    script = os.path.join(here, "keras_variants.py")
    kinds: dict = {}
    for variant, fmt in cases():
        if fmt in ("h5_keras2", "savedmodel_keras2"):
            kinds.setdefault(variant, set()).add("h5" if fmt == "h5_keras2" else "dir")
    for variant in KEEP_VARIANTS:
        kinds.setdefault(variant, set()).update({"dir", "memory"})
    kinds.setdefault("softmax_cce", set()).update({"h5", "dir"})  # the reset test
    wanted = [f"{v}:{','.join(sorted(k))}" for v, k in sorted(kinds.items())]

    def make(out):
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
        proc = subprocess.run([sys.executable, script, out] + wanted, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]

    sources = [script, os.path.join(os.path.dirname(here), "tfquiet.py")]
    return keras_cache("keras2_variants", sources, wanted, make, tmp_path_factory.mktemp("keras2"))


def keras3_file(tmp_path, variant, fmt):
    """Writes variant with Keras 3 after PRE_STEPS steps; returns the path and
    the model that computes the golden values: for a .keras file the same
    in-memory model going on (what Keras 3's load_model + fit does: measured
    equal in test_optimizer_state.py); for a Keras 3 .h5 file, which Keras 3
    cannot go on training from, the model recompiled with a fresh optimizer of
    the same configuration, as its user has to. With tmp_path None no file is
    written (path None): the same model built again (same seed, same steps),
    for a test whose export another test made."""
    model = kv.build(keras, variant)
    _, pre, _ = kv.data(variant)
    for bx, by in pre:
        model.train_on_batch(bx, by)
    path = None
    if tmp_path is not None:
        path = str(tmp_path / (variant + (".keras" if fmt == "keras" else ".h5")))
        model.save(path)
    if fmt == "h5_keras3":
        opt = model.optimizer
        model.compile(optimizer=type(opt).from_config(opt.get_config()), loss=model.loss)
    return path, model


# The optimizer state each format's default leaves (as its own Keras does).
DEFAULT_STATE = {"keras": "restored", "h5_keras3": "reset", "h5_keras2": "restored", "savedmodel_keras2": "reset"}


def source(tmp_path, keras2_files, variant, fmt, golden="native"):
    """(path to export from, golden dict, in-memory Keras 3 model or None).
    golden "native": tf_keras' own load_model + train_on_batch of the file;
    "memory": the model that was saved going on in memory."""
    if fmt in ("keras", "h5_keras3"):
        path, model = keras3_file(tmp_path, variant, fmt)
        return path, None, model
    suffix = "_memory" if golden == "memory" else ("_h5" if fmt == "h5_keras2" else "_dir")
    ref = dict(np.load(keras2_files / (variant + suffix + ".npz")))
    path = keras2_files / (variant + (".h5" if fmt == "h5_keras2" else "_dir"))
    return str(path), ref, None


class DefaultExports:
    """The directories export_keras --from writes, with its defaults, for a
    variant written in a format: each made once in a run (in this process or
    another pytest-xdist worker) for every test that exports the same file the
    same way. The tests only read them (tf.saved_model.load gives each its own
    copy)."""

    def __init__(self, tmp_path_factory, keras2_files):
        self.tmp_path_factory = tmp_path_factory
        self.keras2_files = keras2_files
        self.saved = {}  # (variant, fmt) -> the Keras 3 model this process saved the file from

    def __call__(self, variant, fmt):
        def make(d):
            path, _, model = source(d, self.keras2_files, variant, fmt)
            self.saved[variant, fmt] = model
            assert export_keras.main(["--from", path, "--out", str(d / "exported")]) == 0

        return str(once_per_run(self.tmp_path_factory, f"export-{variant}-{fmt}", make) / "exported")

    def keras3_model(self, variant, fmt):
        """keras3_file's golden model for the export: the one whose file this
        process saved, to the first test that asks; otherwise built again."""
        model = self.saved.pop((variant, fmt), None)
        return model if model is not None else keras3_file(None, variant, fmt)[1]


@pytest.fixture(scope="session")
def default_export(tmp_path_factory, keras2_files):
    return DefaultExports(tmp_path_factory, keras2_files)


def metadata(out):
    with open(os.path.join(out, "assets", export_keras.METADATA_FILE), encoding="utf-8") as f:
        return json.load(f)


def record(variant, fmt, what, value):
    key = (variant, fmt)
    MEASURED.setdefault(key, {})
    MEASURED[key][what] = max(MEASURED[key].get(what, 0.0), float(value))


def ones(n):
    return np.ones(n, np.float32)


# KERASGO_FULL_MATRIX=1 runs every schedule and optimizer setting on every
# format (docs/optimizer-parity.md); by default each runs on the formats below,
# which covers each one in Keras 3 and in tf_keras within make test's budget.
FULL_MATRIX = os.environ.get("KERASGO_FULL_MATRIX") == "1"
SETTING_FORMATS = {
    "sched_exponential": FORMATS, "sched_cosine_warmup": ("keras", "h5_keras2"),
    "sched_piecewise": ("h5_keras2",), "sched_inverse_time": ("keras",),
    "sched_polynomial": ("h5_keras2",), "sched_cosine_restarts": ("keras",),
    "adamw": ("keras", "h5_keras2"), "nadam": ("keras", "h5_keras2"), "adagrad": ("h5_keras2",),
    "adamax": ("keras",), "sgd_nesterov": ("h5_keras2",), "clipnorm": ("keras",),
    "clipvalue": ("h5_keras2",), "global_clipnorm": ("keras",),
    "grad_accumulation": ("keras",), "legacy_decay": ("h5_keras2",),
}
# The variants of test_keep_on_a_keras2_directory_goes_on_as_in_memory.
KEEP_VARIANTS = ("softmax_cce", "sched_exponential")
# tf_keras' Nadam keeps its running momentum product behind a Python counter
# compared inside the traced step, and so multiplies it by other factors than
# Keras 3 does; its steps are held to the first step exactly, the rest within this.
NADAM_KERAS2_TOL = 0.03


def cases():
    """(variant, format) pairs. Keras 3 has no legacy optimizers, so legacy_adam
    exists only in the Keras 2 formats; a .keras file's optimizer state is
    Keras' own to restore, so the other optimizer variants skip that format
    (softmax_cce covers it)."""
    for variant in kv.VARIANTS:
        for fmt in FORMATS:
            if variant in kv.KERAS2_ONLY and fmt in ("keras", "h5_keras3"):
                continue
            if variant in kv.KERAS3_ONLY and fmt not in ("keras", "h5_keras3"):
                continue
            if variant in kv.OPTIMIZERS and fmt == "keras":
                continue
            if variant in kv.SETTINGS and not FULL_MATRIX and fmt not in SETTING_FORMATS[variant]:
                continue
            yield variant, fmt


@pytest.mark.parametrize("variant, fmt", list(cases()))
def test_export_matches_keras(tmp_path, keras2_files, default_export, variant, fmt):
    out = default_export(variant, fmt)
    if fmt in ("keras", "h5_keras3"):
        ref, model = None, default_export.keras3_model(variant, fmt)
    else:
        _, ref, model = source(tmp_path, keras2_files, variant, fmt)
    meta = metadata(out)
    assert meta["source_format"] == {"keras": "keras", "h5_keras3": "h5-keras3", "h5_keras2": "h5-keras2",
                                     "savedmodel_keras2": "savedmodel-keras2"}[fmt]
    assert meta["optimizer_state"] == DEFAULT_STATE[fmt], meta["optimizer_state_note"]
    assert meta["optimizer_state_mode"] == ("keep" if DEFAULT_STATE[fmt] == "restored" else "reset")
    if kv.schedule(variant):
        assert meta["learning_rate_schedule"]["class_name"] == kv.schedule(variant)
    elif variant == "legacy_decay":
        assert meta["learning_rate_schedule"]["class_name"] == "InverseTimeDecay"
    else:
        assert meta["learning_rate_schedule"] is None
        want_rate = kv.SETTINGS.get(variant, (None, {}))[1].get("learning_rate", kv.LEARNING_RATE)
        assert abs(meta["optimizer"]["config"]["learning_rate"] - want_rate) < 1e-7
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
    if variant == "nadam" and ref is not None:
        record(variant, fmt, "loss", np.max(np.abs(np.asarray(losses) - golden["losses"])))
        assert abs(losses[0] - golden["losses"][0]) < TRAIN_TOL
        np.testing.assert_allclose(losses, golden["losses"], rtol=NADAM_KERAS2_TOL)
    elif comparable:
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


@pytest.mark.parametrize("variant", KEEP_VARIANTS)
def test_keep_on_a_keras2_directory_goes_on_as_in_memory(tmp_path, keras2_files, variant):
    """--optimizer-state keep on a tf_keras SavedModel directory carries the
    checkpoint's moments and iteration count: the export goes on as the model
    that was saved would have in memory (tf_keras' own load_model does not)."""
    path, ref, _ = source(tmp_path, keras2_files, variant, "savedmodel_keras2", golden="memory")
    out = str(tmp_path / "exported")
    assert export_keras.main(["--from", path, "--out", out, "--optimizer-state", "keep"]) == 0
    meta = metadata(out)
    assert meta["optimizer_state"] == "restored" and meta["optimizer_state_mode"] == "keep"
    sig = tf.saved_model.load(out).signatures
    _, _, steps = kv.data(variant)
    losses = [float(sig["train_step"](features=bx, labels=by, sample_weight=ones(len(bx)))["loss"])
              for bx, by in steps]
    native = dict(np.load(keras2_files / (variant + "_dir.npz")))
    assert np.max(np.abs(np.asarray(losses) - native["losses"])) > 1e-3, "keep should differ from a fresh start"
    np.testing.assert_allclose(losses, ref["losses"], atol=TRAIN_TOL)
    weights = {kv.weight_name(k): v.numpy() for k, v in sig["get_weights"]().items()}
    for k, v in ((k[2:], v) for k, v in ref.items() if k.startswith("w:")):
        np.testing.assert_allclose(weights[k], v, atol=TRAIN_TOL, err_msg=k)


def test_reset_on_an_h5_file_starts_afresh(tmp_path, keras2_files):
    """--optimizer-state reset on a tf_keras .h5 file, whose own default is to
    keep: the export steps as tf_keras does from a SavedModel directory of the
    same model (a fresh optimizer)."""
    path, _, _ = source(tmp_path, keras2_files, "softmax_cce", "h5_keras2")
    out = str(tmp_path / "exported")
    assert export_keras.main(["--from", path, "--out", out, "--optimizer-state", "reset"]) == 0
    meta = metadata(out)
    assert meta["optimizer_state"] == "reset" and "--optimizer-state reset" in meta["optimizer_state_why"]
    loaded = tf.saved_model.load(out)
    _, _, steps = kv.data("softmax_cce")
    losses = [float(loaded.signatures["train_step"](features=bx, labels=by, sample_weight=ones(len(bx)))["loss"])
              for bx, by in steps]
    fresh = dict(np.load(keras2_files / "softmax_cce_dir.npz"))
    np.testing.assert_allclose(losses, fresh["losses"], atol=TRAIN_TOL)


@pytest.mark.parametrize("fmt", ["keras", "h5_keras2"])
def test_learning_rate_replaces_a_schedule(default_export, fmt):
    """set_learning_rate replaces a schedule with the constant: the steps after
    it are Keras' steps at that constant rate."""
    sig = tf.saved_model.load(default_export("sched_exponential", fmt)).signatures
    got = sig["set_learning_rate"](learning_rate=tf.constant(0.0))["learning_rate"]
    assert float(got) == 0.0
    before = {k: v.numpy() for k, v in sig["get_weights"]().items()}
    _, _, steps = kv.data("sched_exponential")
    bx, by = steps[0]
    sig["train_step"](features=bx, labels=by, sample_weight=ones(len(bx)))
    after = {k: v.numpy() for k, v in sig["get_weights"]().items()}
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)


@pytest.mark.parametrize("variant", ["dropout", "dropout_first", "batchnorm_first", "softmax_cce"])
def test_dropout_only_in_training(default_export, variant):
    """train_step draws a new dropout mask each call; serving and evaluate draw none."""
    sig = tf.saved_model.load(default_export(variant, "keras")).signatures
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


def test_batchnorm_moving_statistics_move(default_export):
    """train_step updates the moving mean and variance, as Keras' fit does."""
    sig = tf.saved_model.load(default_export("batchnorm_first", "keras")).signatures
    model = default_export.keras3_model("batchnorm_first", "keras")
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


def test_regularization_loss_in_train_not_evaluate(default_export):
    """train_step's loss carries the L1/L2 penalties, as Keras' train_on_batch reports it."""
    sig = tf.saved_model.load(default_export("l1l2", "keras")).signatures
    model = default_export.keras3_model("l1l2", "keras")
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
