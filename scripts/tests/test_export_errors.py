"""What export --from says about models it cannot take: one line,
`export_keras: FILE: what is unsupported`, exit status 1, no traceback, and
nothing written."""

import os
import subprocess
import sys

import keras
import pytest
import tensorflow as tf

import export_keras
from sharing import keras_cache

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "export_keras.py")


def small(inputs=None):
    inputs = inputs or keras.Input((5,))
    return inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(4)(inputs))


def multi_input(tmp_path):
    a, b = keras.Input((3,)), keras.Input((2,))
    model = keras.Model([a, b], keras.layers.Dense(2, activation="softmax")(keras.layers.Concatenate()([a, b])))
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    path = str(tmp_path / "two_inputs.keras")
    model.save(path)
    return path, ["2 inputs"]


def multi_output(tmp_path):
    x = keras.Input((5,))
    h = keras.layers.Dense(4)(x)
    model = keras.Model(x, [keras.layers.Dense(2, activation="softmax")(h), keras.layers.Dense(3, activation="softmax")(h)])
    model.compile(optimizer="adam", loss=["categorical_crossentropy", "categorical_crossentropy"])
    path = str(tmp_path / "two_outputs.h5")
    model.save(path)
    return path, ["2 outputs"]


def unknown_custom_layer(tmp_path):
    @keras.saving.register_keras_serializable(package="kerasgo_test")
    class Twice(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    inputs, outputs = small()
    model = keras.Model(inputs, Twice()(outputs))
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    path = str(tmp_path / "custom_layer.keras")
    model.save(path)
    del keras.saving.get_custom_objects()["kerasgo_test>Twice"]
    return path, ["custom layer", "Twice"]


def missing_custom_loss(tmp_path):
    @keras.saving.register_keras_serializable(package="kerasgo_test")
    def my_loss(y_true, y_pred):
        return keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)

    inputs, outputs = small()
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss=my_loss)
    path = str(tmp_path / "custom_loss.keras")
    model.save(path)
    del keras.saving.get_custom_objects()["kerasgo_test>my_loss"]
    return path, ["custom", "my_loss"]


def corrupt_h5(tmp_path):
    path = tmp_path / "corrupt.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(200))
    return str(path), ["not a readable HDF5 model file"]


def weights_only_h5(tmp_path):
    inputs, outputs = small()
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / "only.weights.h5")
    model.save_weights(path)
    return path, ["holds no model"]


def neither_directory(tmp_path):
    path = tmp_path / "notamodel"
    path.mkdir()
    (path / "README").write_text("hello\n")
    return str(path), ["neither a Keras 2 SavedModel", "nor a SavedModel"]


def plain_export_directory(tmp_path):
    inputs, outputs = small()
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / "served")
    model.export(path, verbose=False)
    return path, ["SavedModel without a Keras model (no keras_metadata.pb)", ".keras or .h5 file"]


def tf_saved_model_directory(tmp_path):
    module = tf.Module()
    module.v = tf.Variable(1.0)
    module.f = tf.function(lambda x: x * module.v, input_signature=[tf.TensorSpec([None], tf.float32)])
    path = str(tmp_path / "tfmodule")
    tf.saved_model.save(module, path)
    return path, ["no keras_metadata.pb"]


def custom_schedule(tmp_path):
    @keras.saving.register_keras_serializable(package="kerasgo_test")
    class HalfEvery(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.01 * keras.ops.power(0.5, keras.ops.cast(step, "float32") / 10)

        def get_config(self):
            return {}

    inputs, outputs = small()
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(HalfEvery()), loss="categorical_crossentropy")
    path = str(tmp_path / "custom_schedule.keras")
    model.save(path)
    del keras.saving.get_custom_objects()["kerasgo_test>HalfEvery"]
    return path, ["learning-rate schedule 'HalfEvery'", "custom class"]


def registered_custom_schedule(tmp_path):
    """A schedule class the exporting process knows, still not a built-in one."""

    @keras.saving.register_keras_serializable(package="kerasgo_test")
    class Flat(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.01

        def get_config(self):
            return {}

    inputs, outputs = small()
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(Flat()), loss="categorical_crossentropy")
    path = str(tmp_path / "flat_schedule.keras")
    model.save(path)
    return path, ["learning-rate schedule 'Flat'"]


def ema(tmp_path):
    inputs, outputs = small()
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(use_ema=True), loss="categorical_crossentropy")
    path = str(tmp_path / "ema.keras")
    model.save(path)
    return path, ["use_ema=True", "moving average"]


def loss_scale(tmp_path):
    inputs, outputs = small()
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.SGD(loss_scale_factor=128.0), loss="categorical_crossentropy")
    path = str(tmp_path / "scaled.keras")
    model.save(path)
    return path, ["loss_scale_factor=128.0"]


CASES = {
    "custom schedule": custom_schedule,
    "registered custom schedule": registered_custom_schedule,
    "use_ema": ema,
    "loss_scale_factor": loss_scale,
    "several inputs": multi_input,
    "several outputs": multi_output,
    "unknown custom layer": unknown_custom_layer,
    "missing custom loss": missing_custom_loss,
    "corrupt h5": corrupt_h5,
    "weights-only h5": weights_only_h5,
    "neither format": neither_directory,
    "model.export() directory": plain_export_directory,
    "tf.saved_model.save directory": tf_saved_model_directory,
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_in_one_line(tmp_path, capsys, case):
    path, phrases = CASES[case](tmp_path)
    capsys.readouterr()
    out = tmp_path / "out"
    assert export_keras.main(["--from", path, "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("export_keras: ") and path.rstrip("/") in err, err
    for phrase in phrases:
        assert phrase in err, err
    assert "Traceback" not in err
    assert not out.exists()


def test_verbose_shows_the_traceback(tmp_path):
    """--verbose (kerasgo export --verbose sets KERASGO_VERBOSE) adds the
    Python traceback before the one line."""
    path, _ = ema(tmp_path)
    run = subprocess.run([sys.executable, SCRIPT, "--from", path, "--out", str(tmp_path / "out"), "--verbose"],
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert "Traceback" in run.stderr and run.stderr.strip().splitlines()[-1].startswith(f"export_keras: {path}")


def test_keras2_files_refused(tmp_path):
    """tf_keras SavedModels and .h5 files with a custom layer class (read where
    the class is unknown) or two outputs, exported as kerasgo export runs the
    script: a process of its own."""
    code = r"""
import sys, numpy as np, tf_keras as K
class Twice(K.layers.Layer):
    def call(self, x):
        return 2 * x
m = K.Sequential([K.Input((5,)), K.layers.Dense(3, activation="softmax"), Twice()])
m.compile(optimizer="adam", loss="categorical_crossentropy")
m.save(sys.argv[1] + "/custom_dir", save_format="tf")
m.save(sys.argv[1] + "/custom.h5", save_format="h5")
x = K.Input((5,))
h = K.layers.Dense(4)(x)
m = K.Model(x, [K.layers.Dense(2, activation="softmax")(h), K.layers.Dense(3, activation="softmax")(h)])
m.compile(optimizer="adam", loss=["categorical_crossentropy", "categorical_crossentropy"])
m.save(sys.argv[1] + "/two_outputs_dir", save_format="tf")
class Flat(K.optimizers.schedules.LearningRateSchedule):
    def __call__(self, step):
        return 0.01
    def get_config(self):
        return {}
m = K.Sequential([K.Input((5,)), K.layers.Dense(3, activation="softmax")])
m.compile(optimizer=K.optimizers.Adam(Flat()), loss="categorical_crossentropy")
m.save(sys.argv[1] + "/schedule_dir", save_format="tf")
m.save(sys.argv[1] + "/schedule.h5", save_format="h5")
m = K.Sequential([K.Input((5,)), K.layers.Dense(3, activation="softmax")])
m.compile(optimizer=K.optimizers.Adam(use_ema=True), loss="categorical_crossentropy")
m.save(sys.argv[1] + "/ema.h5", save_format="h5")
"""

    def make(out):
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
        proc = subprocess.run([sys.executable, "-c", code, out], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]

    keras_cache("keras2_refused", [], [code], make, tmp_path)  # the files tf_keras wrote, kept from run to run
    cases = {"custom_dir": ["custom layer 'Twice'"], "custom.h5": ["custom layer 'Twice'"],
             "two_outputs_dir": ["2 outputs"], "schedule_dir": ["learning-rate schedule 'Flat'"],
             "schedule.h5": ["learning-rate schedule 'Flat'"], "ema.h5": ["use_ema=True"]}
    for name, phrases in cases.items():
        path = tmp_path / name
        run = subprocess.run([sys.executable, SCRIPT, "--from", str(path), "--out", str(tmp_path / "out")],
                             capture_output=True, text=True)
        assert run.returncode == 1
        err = run.stderr.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert err.startswith(f"export_keras: {path}"), err
        for phrase in phrases:
            assert phrase in err, err
        assert not (tmp_path / "out").exists()
