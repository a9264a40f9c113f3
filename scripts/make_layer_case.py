#!/usr/bin/env python3
"""Keras-made cases for kerasgo's layer parity test (tfmodel TestLayersMatchKeras).

For one variant of the question's architecture, Keras builds and compiles the
model, saves it to OUT/model.keras, and the exporter writes OUT/exported from
that file, as a user would. Keras then scores OUT/x.npy (OUT/probabilities.npy)
and takes five train_on_batch steps on batches of OUT/x.npy and OUT/y.npy from
the saved state, writing OUT/losses.npy and OUT/weights.npz (every variable,
keyed as the exporter's get_weights signature keys them). The Go test runs the
same steps through the exported signatures and compares.

Variants:
  batchnorm   Input -> BatchNormalization -> Dense(relu) -> Dense(softmax), categorical cross-entropy
  l1l2        Input -> Dense(relu, L1 and L2 kernel regularizers) -> Dense(sigmoid), binary cross-entropy
  sparse_cce  Input -> Dense(relu) -> Dense(softmax), sparse categorical cross-entropy (labels are indices)

Usage: make_layer_case.py --variant NAME --out DIR
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tfquiet  # noqa: E402,F401
import keras  # noqa: E402

import export_keras  # noqa: E402

DIM, CLASSES, ROWS, BATCH, STEPS = 40, 4, 80, 16, 5


def build(variant: str) -> tuple[keras.Model, np.ndarray]:
    """The compiled model and its training labels for a variant."""
    rng = np.random.default_rng(7)
    classes = rng.integers(0, CLASSES, size=ROWS)
    onehot = np.eye(CLASSES, dtype=np.float32)[classes]
    inputs = keras.Input((DIM,), name="features")
    if variant == "batchnorm":
        h = keras.layers.BatchNormalization()(inputs)
        h = keras.layers.Dense(16, activation="relu")(h)
        out = keras.layers.Dense(CLASSES, activation="softmax")(h)
        loss, y = "categorical_crossentropy", onehot
    elif variant == "l1l2":
        h = keras.layers.Dense(16, activation="relu",
                               kernel_regularizer=keras.regularizers.L1L2(l1=1e-3, l2=1e-2))(inputs)
        out = keras.layers.Dense(CLASSES, activation="sigmoid")(h)
        loss, y = "binary_crossentropy", onehot
    elif variant == "sparse_cce":
        h = keras.layers.Dense(16, activation="relu")(inputs)
        out = keras.layers.Dense(CLASSES, activation="softmax")(h)
        loss, y = "sparse_categorical_crossentropy", classes.astype(np.int64)
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    model = keras.Model(inputs, out)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss=loss)
    return model, y


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", required=True)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    keras.utils.set_random_seed(3)
    model, y = build(args.variant)
    x = (np.random.default_rng(11).random((ROWS, DIM)) < 0.2).astype(np.float32) * 3
    # One step first, so the saved file carries optimizer moments and moved
    # batch statistics, as a trained model does.
    model.train_on_batch(x[:BATCH], y[:BATCH])
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "model.keras")
    model.save(path)
    if export_keras.main(["--from", path, "--out", os.path.join(args.out, "exported")]) != 0:
        return 1

    model = keras.saving.load_model(path)
    np.save(os.path.join(args.out, "x.npy"), x)
    np.save(os.path.join(args.out, "y.npy"), np.asarray(y, np.float32))  # class indices as floats for sparse_cce
    np.save(os.path.join(args.out, "probabilities.npy"), model.predict(x, verbose=0).astype(np.float32))
    losses = []
    for s in range(STEPS):
        sl = slice(s * BATCH, (s + 1) * BATCH)
        losses.append(float(model.train_on_batch(x[sl], y[sl])))
    np.save(os.path.join(args.out, "losses.npy"), np.asarray(losses, np.float32))
    np.savez(os.path.join(args.out, "weights.npz"),
             **{export_keras.weight_key(v): np.asarray(v.numpy()) for v in model.variables})
    return 0


if __name__ == "__main__":
    sys.exit(main())
