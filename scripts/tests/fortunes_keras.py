"""The Keras side of the learning comparison (test_learning_fortunes.py): a
small model with Dropout, BatchNormalization, an L2 regularizer and an
ExponentialDecay schedule, on the fortunes features the repository ships
(testdata/features/fortunes: 256 bag-of-words features, 20 classes).

Run by Keras 3, or by tf_keras with TF_USE_LEGACY_KERAS=1 (the Keras 2 formats):

    fortunes_keras.py save FORMAT PATH     build, train PRE_EPOCHS on the first
                                           PRE_ROWS rows, save as FORMAT
    fortunes_keras.py fit FORMAT PATH EPOCHS BATCH SEED...
                                           per seed: load_model(PATH), fit the
                                           training rows (shuffle=True), print
                                           {"seed", "top1", "loss"} on the test rows
    fortunes_keras.py run FORMAT PATH EPOCHS BATCH SEED...
                                           save, then fit (one process)

FORMAT: keras, h5_keras3 (Keras 3), h5_keras2, savedmodel_keras2 (tf_keras).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "testdata", "features", "fortunes")
FEATURES, CLASSES = 256, 20
# Enough steps before saving (250) that the schedule has decayed: a kept or
# reset iteration count changes the rate training goes on at threefold.
PRE_ROWS, PRE_EPOCHS, PRE_BATCH = 2000, 2, 16


def read_libsvm(path: str):
    """Dense rows and class indices of a libsvm file (label index:value ...)."""
    rows, labels = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            labels.append(int(parts[0]))
            row = np.zeros(FEATURES, np.float32)
            for item in parts[1:]:
                i, v = item.split(":")
                row[int(i)] = float(v)
            rows.append(row)
    return np.stack(rows), np.asarray(labels, np.int64)


def keras_module():
    sys.path.insert(0, os.path.dirname(HERE))
    from tfquiet import quiet_startup
    with quiet_startup():
        if os.environ.get("TF_USE_LEGACY_KERAS") == "1":
            import tf_keras as K
        else:
            import keras as K
    return K


def build(K, seed: int = 0):
    K.utils.set_random_seed(seed)
    model = K.Sequential([
        K.Input(shape=(FEATURES,)),
        K.layers.Dense(64, activation="relu", kernel_regularizer=K.regularizers.L2(1e-4), name="hidden"),
        K.layers.BatchNormalization(name="bn"),
        K.layers.Dropout(0.3, name="dropout"),
        K.layers.Dense(CLASSES, activation="softmax", name="out"),
    ], name="fortunes")
    schedule = K.optimizers.schedules.ExponentialDecay(3e-3, decay_steps=100, decay_rate=0.7)
    model.compile(optimizer=K.optimizers.Adam(schedule), loss="sparse_categorical_crossentropy")
    return model


def save(fmt: str, path: str) -> None:
    K = keras_module()
    model = build(K)
    x, y = read_libsvm(os.path.join(DATA, "train.libsvm"))
    model.fit(x[:PRE_ROWS], y[:PRE_ROWS], epochs=PRE_EPOCHS, batch_size=PRE_BATCH, verbose=0)
    if fmt == "savedmodel_keras2":
        model.save(path, save_format="tf")
    elif fmt == "h5_keras2":
        model.save(path, save_format="h5")
    else:
        model.save(path)


def fit(fmt: str, path: str, epochs: int, batch: int, seeds: list[int]) -> None:
    K = keras_module()
    x, y = read_libsvm(os.path.join(DATA, "train.libsvm"))
    tx, ty = read_libsvm(os.path.join(DATA, "test.libsvm"))
    for seed in seeds:
        K.utils.set_random_seed(seed)
        model = K.models.load_model(path)
        if fmt == "h5_keras3":
            # Keras 3 cannot train on from its own .h5 file's optimizer
            # ("Unknown variable"): its user recompiles, with the file's
            # optimizer configuration and a fresh state.
            opt = model.optimizer
            model.compile(optimizer=type(opt).from_config(opt.get_config()), loss=model.loss)
        model.fit(x, y, epochs=epochs, batch_size=batch, shuffle=True, verbose=0)
        p = model.predict(tx, batch_size=1024, verbose=0)
        loss = float(np.mean(-np.log(np.clip(p[np.arange(len(ty)), ty], 1e-7, 1.0))))
        print(json.dumps({"seed": seed, "top1": float(np.mean(p.argmax(1) == ty)), "loss": loss,
                          "iterations": int(np.asarray(model.optimizer.iterations))}), flush=True)


if __name__ == "__main__":
    cmd, fmt, path = sys.argv[1:4]
    if cmd in ("save", "run"):
        save(fmt, path)
    if cmd in ("fit", "run"):
        fit(fmt, path, int(sys.argv[4]), int(sys.argv[5]), [int(s) for s in sys.argv[6:]])
