#!/usr/bin/env python3
"""Loads a SavedModel with TensorFlow and checks it scores as kerasgo did.

Usage: python scripts/check_saved_model.py MODEL_DIR INPUTS.npy KERASGO_PREDICTIONS.csv

The CSV is `kerasgo predict MODEL_DIR --input INPUTS.npy` output (with every
class's probability). Loads the model both ways TensorFlow users do
(tf.saved_model.load and keras.layers.TFSMLayer), and exits non-zero when
either differs from kerasgo by more than 1e-5.
"""

import csv
import os
import sys

from tfquiet import quiet_startup  # noqa: E402

with quiet_startup():
    import absl.logging
    import keras
    import numpy as np
    import tensorflow as tf


def main(model_dir, inputs, predictions):
    # Loading warns about the training functions' gradients, which serving never needs.
    absl.logging.set_verbosity(absl.logging.ERROR)
    x = np.load(inputs)
    with open(predictions, newline="") as f:
        rows = list(csv.reader(f))
    cols = [i for i, name in enumerate(rows[0]) if name.startswith("p_")]
    go = np.array([[float(r[i]) for i in cols] for r in rows[1:]], dtype=np.float32)
    loaded = tf.saved_model.load(model_dir).signatures["serving_default"](features=tf.constant(x))["probabilities"].numpy()
    layer = keras.layers.TFSMLayer(model_dir, call_endpoint="serving_default")(x)["probabilities"].numpy()
    d1, d2 = float(np.abs(loaded - go).max()), float(np.abs(layer - go).max())
    print(f"TensorFlow {tf.__version__} loaded {model_dir}: tf.saved_model.load and keras.layers.TFSMLayer "
          f"score {len(x)} rows within {max(d1, d2):.1e} of kerasgo")
    return 0 if max(d1, d2) <= 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
