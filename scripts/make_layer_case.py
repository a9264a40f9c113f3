#!/usr/bin/env python3
"""Keras-made cases for kerasgo's layer parity test (tfmodel TestLayersMatchKeras).

For one variant of scripts/tests/keras_variants.py (the models and data the
exporter's own layer tests use), Keras builds and compiles the model, takes
its pre-save steps, saves it to OUT/model.keras, and the exporter writes
OUT/exported from that file, as a user would. Keras then scores OUT/x.npy
(OUT/probabilities.npy), binary rows OUT/flags_x.npy
(OUT/flags_probabilities.npy) and the same non-zeros as counts and as tf-idf
weights (OUT/counts_x.npy, OUT/tfidf_x.npy and their probabilities), and takes the variant's training steps from the saved
state, on the batches stacked in OUT/train_x.npy and OUT/train_y.npy, writing
OUT/losses.npy and OUT/weights.npz (every variable, keyed as the exporter's
get_weights signature keys them). The Go test runs the same steps through
the exported signatures and compares.

Usage: make_layer_case.py --variant NAME --out DIR
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "tests"))
import tfquiet  # noqa: E402,F401
import keras  # noqa: E402

import export_keras  # noqa: E402
import keras_variants  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", required=True, choices=sorted(keras_variants.VARIANTS))
    p.add_argument("--out", required=True)
    args = p.parse_args()
    model = keras_variants.build(keras, args.variant)
    x, pre, steps = keras_variants.data(args.variant)
    # Steps before saving, so the file carries optimizer moments and moved
    # batch statistics, as a trained model does.
    for bx, by in pre:
        model.train_on_batch(bx, by)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "model.keras")
    model.save(path)
    if export_keras.main(["--from", path, "--out", os.path.join(args.out, "exported")]) != 0:
        return 1

    model = keras.saving.load_model(path)
    np.save(os.path.join(args.out, "x.npy"), x)
    np.save(os.path.join(args.out, "probabilities.npy"), model.predict(x, verbose=0).astype(np.float32))
    # Presence flags (every non-zero 1, ~10% of them, one row empty), the
    # rows of a bag-of-words model.
    flags = (np.random.default_rng(1).random(x.shape) < 0.1).astype(np.float32)
    flags[len(flags) // 2] = 0
    np.save(os.path.join(args.out, "flags_x.npy"), flags)
    np.save(os.path.join(args.out, "flags_probabilities.npy"), model.predict(flags, verbose=0).astype(np.float32))
    # The same positions as word counts (1 to 3) and as tf-idf weights
    # (positive reals): the values the sparse signatures' CSR product takes.
    rng = np.random.default_rng(2)
    for name, values in (("counts", rng.integers(1, 4, x.shape)), ("tfidf", rng.random(x.shape) * 4 + 0.05)):
        rows = (flags * values).astype(np.float32)
        np.save(os.path.join(args.out, name + "_x.npy"), rows)
        np.save(os.path.join(args.out, name + "_probabilities.npy"), model.predict(rows, verbose=0).astype(np.float32))
    # Class indices as floats for sparse labels: the Go test reads float NPY.
    np.save(os.path.join(args.out, "train_x.npy"), np.concatenate([bx for bx, _ in steps]))
    np.save(os.path.join(args.out, "train_y.npy"), np.concatenate([by for _, by in steps]).astype(np.float32))
    losses = [float(model.train_on_batch(bx, by)) for bx, by in steps]
    np.save(os.path.join(args.out, "losses.npy"), np.asarray(losses, np.float32))
    np.savez(os.path.join(args.out, "weights.npz"),
             **{export_keras.weight_key(v): np.asarray(v.numpy()) for v in model.variables})
    return 0


if __name__ == "__main__":
    sys.exit(main())
