#!/usr/bin/env python3
"""Writes testdata/models/dtypes, a SavedModel made by TensorFlow whose
serving_default takes one [None] input of every fixed-width dtype the Open
Inference Protocol and TF Serving name (x_<dtype>) and returns y_<dtype> =
x*2+1 in the same dtype (wrapping as TensorFlow's integer kernels do), and
y_bool = not x_bool. It also writes testdata/golden/dtypes.json: the inputs
and what TensorFlow answered for them, which tfmodel's tests compare with.
Run once; both are committed. The Python clients' tests run the SavedModel
through TensorFlow themselves."""

import json
import os
import shutil

import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "testdata", "models", "dtypes")
GOLDEN = os.path.join(ROOT, "testdata", "golden", "dtypes.json")

# Values that reach each type's ends, and wrap when doubled.
INPUTS = {
    "float16": [0.5, -3.0, 1000.0, 1.25],
    "float32": [0.1, -2.5, 3.0e30, 7.0],
    "float64": [0.1, -2.5, 1.0e300, 7.0],
    "int8": [-128, 0, 100, 127],
    "int16": [-32768, 1, 20000, 32767],
    "int32": [-2147483648, 2, 2000000000, 5],
    "int64": [-(2 ** 63), 3, 2 ** 62, 9],
    "uint8": [0, 1, 200, 255],
    "uint16": [0, 1, 40000, 65535],
    "uint32": [0, 1, 3000000000, 4294967295],
    "uint64": [0, 1, 2 ** 63, 2 ** 64 - 1],
    "bool": [True, False, True, False],
}


class Dtypes(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.as_dtype(d), name="x_" + d) for d in INPUTS])
    def serve(self, *xs):
        out = {}
        for d, x in zip(INPUTS, xs):
            out["y_" + d] = tf.logical_not(x) if d == "bool" else x * tf.constant(2, x.dtype) + tf.constant(1, x.dtype)
        return out


def main():
    m = Dtypes()
    shutil.rmtree(MODEL, ignore_errors=True)
    tf.saved_model.save(m, MODEL, signatures={"serving_default": m.serve.get_concrete_function()})
    fn = tf.saved_model.load(MODEL).signatures["serving_default"]
    got = fn(**{"x_" + d: tf.constant(np.array(v, dtype=d)) for d, v in INPUTS.items()})
    golden = {"inputs": INPUTS, "outputs": {k: v.numpy().tolist() for k, v in sorted(got.items())}}
    with open(GOLDEN, "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print(MODEL, GOLDEN)


if __name__ == "__main__":
    main()
