"""The small models the layer tests export, built the same way by Keras 3 and
by Keras 2 (tf_keras), and the data they train on.

Imported by test_export_layers.py (Keras 3). Run as a script under
TF_USE_LEGACY_KERAS=1 it is the Keras 2 side: it writes each variant as an .h5
file and a SavedModel directory with tf_keras, then records what tf_keras
itself computes for them (predictions, and the losses and weights of further
train_on_batch steps) in an .npz beside each, the golden values the exported
graphs are held to.

    TF_USE_LEGACY_KERAS=1 python keras_variants.py OUTDIR VARIANT[:h5,dir,memory]...
"""

from __future__ import annotations

import os
import sys

import numpy as np

FEATURES = 40
CLASSES = 4
ROWS = 64
BATCH = 32
PRE_STEPS = 2  # steps taken before the model is saved, so the optimizer has moments
STEPS = 5  # steps taken after, by Keras and by the export (layer variants)
OPTIMIZER_STEPS = 20  # the same for the optimizer, schedule and setting variants
LEARNING_RATE = 0.01

# name -> (layers, loss, output activation). Layer specs are (kind, options).
VARIANTS = {
    "softmax_cce": ([("dense", {"units": 16, "activation": "relu"})], "categorical_crossentropy", "softmax"),
    "softmax_scce": ([("dense", {"units": 16, "activation": "relu"})], "sparse_categorical_crossentropy", "softmax"),
    "sigmoid_bce": ([("dense", {"units": 16, "activation": "relu"})], "binary_crossentropy", "sigmoid"),
    "l1l2": ([("dense", {"units": 16, "activation": "relu", "l1": 0.01, "l2": 0.01})],
             "categorical_crossentropy", "softmax"),
    "batchnorm_first": ([("batchnorm", {}), ("dense", {"units": 16, "activation": "relu"}), ("batchnorm", {})],
                        "categorical_crossentropy", "softmax"),
    "dropout": ([("dense", {"units": 16, "activation": "relu"}), ("dropout", {"rate": 0.5})],
                "categorical_crossentropy", "softmax"),
    "dropout_first": ([("dropout", {"rate": 0.2}), ("dense", {"units": 16, "activation": "relu"})],
                      "sparse_categorical_crossentropy", "softmax"),
    # The optimizers whose state the exporter carries over (model as softmax_cce).
    "sgd_momentum": ([("dense", {"units": 16, "activation": "relu"})], "categorical_crossentropy", "softmax"),
    "rmsprop_centered": ([("dense", {"units": 16, "activation": "relu"})], "categorical_crossentropy", "softmax"),
    "adam_amsgrad": ([("dense", {"units": 16, "activation": "relu"})], "categorical_crossentropy", "softmax"),
    "legacy_adam": ([("dense", {"units": 16, "activation": "relu"})], "categorical_crossentropy", "softmax"),
}

# Learning-rate schedules and optimizer settings, each on softmax_cce's model:
# variant -> (optimizer class, options, schedule class or None, schedule options).
_PLAIN = ([("dense", {"units": 16, "activation": "relu"})], "categorical_crossentropy", "softmax")
SETTINGS = {
    "sched_exponential": ("Adam", {}, "ExponentialDecay", {"initial_learning_rate": 0.01, "decay_steps": 5, "decay_rate": 0.5}),
    "sched_cosine_warmup": ("Adam", {}, "CosineDecay", {"initial_learning_rate": 0.005, "decay_steps": 15, "alpha": 0.1,
                                                        "warmup_target": 0.01, "warmup_steps": 5}),
    "sched_piecewise": ("SGD", {"momentum": 0.9}, "PiecewiseConstantDecay", {"boundaries": [8, 14], "values": [0.05, 0.02, 0.005]}),
    "sched_inverse_time": ("Adam", {}, "InverseTimeDecay", {"initial_learning_rate": 0.01, "decay_steps": 2, "decay_rate": 0.5}),
    "sched_polynomial": ("Adam", {}, "PolynomialDecay", {"initial_learning_rate": 0.01, "decay_steps": 15,
                                                         "end_learning_rate": 0.001, "power": 2.0}),
    "sched_cosine_restarts": ("Adam", {}, "CosineDecayRestarts", {"initial_learning_rate": 0.01, "first_decay_steps": 6}),
    "adamw": ("AdamW", {"weight_decay": 0.05}, None, {}),
    "nadam": ("Nadam", {}, None, {}),
    "adagrad": ("Adagrad", {"learning_rate": 0.05}, None, {}),
    "adamax": ("Adamax", {}, None, {}),
    "sgd_nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}, None, {}),
    "clipnorm": ("Adam", {"clipnorm": 0.05}, None, {}),
    "clipvalue": ("Adam", {"clipvalue": 0.002}, None, {}),
    "global_clipnorm": ("Adam", {"global_clipnorm": 0.05}, None, {}),
    "grad_accumulation": ("Adam", {"gradient_accumulation_steps": 3}, None, {}),  # Keras 3 only
    "legacy_decay": ("legacy.SGD", {"momentum": 0.9, "decay": 0.05}, None, {}),  # tf_keras only
}
VARIANTS.update({name: _PLAIN for name in SETTINGS})
KERAS3_ONLY = {"grad_accumulation"}
KERAS2_ONLY = {"legacy_adam", "legacy_decay"}

# variant -> (optimizer class, options); Adam otherwise. "legacy_adam" is
# tf_keras.optimizers.legacy.Adam, which Keras 3 does not have.
OPTIMIZERS = {
    "sgd_momentum": ("SGD", {"momentum": 0.9}),
    "rmsprop_centered": ("RMSprop", {"momentum": 0.5, "centered": True}),
    "adam_amsgrad": ("Adam", {"amsgrad": True}),
    "legacy_adam": ("legacy.Adam", {}),
}


def has_dropout(variant: str) -> bool:
    return any(kind == "dropout" for kind, _ in VARIANTS[variant][0])


def dense_first(variant: str) -> bool:
    return VARIANTS[variant][0][0][0] == "dense"


def build(K, variant: str, seed: int = 0):
    """The compiled model of variant, with K = keras (3) or tf_keras (2).
    Layers are named, so weights line up across the two Keras versions."""
    K.utils.set_random_seed(seed)
    specs, loss, activation = VARIANTS[variant]
    layers = [K.Input(shape=(FEATURES,))]
    for i, (kind, opt) in enumerate(specs):
        name = f"{kind}_{i}"
        if kind == "dense":
            reg = None
            if opt.get("l1") or opt.get("l2"):
                reg = K.regularizers.L1L2(l1=opt.get("l1", 0.0), l2=opt.get("l2", 0.0))
            layers.append(K.layers.Dense(opt["units"], activation=opt["activation"],
                                         kernel_regularizer=reg, name=name))
        elif kind == "batchnorm":
            layers.append(K.layers.BatchNormalization(name=name))
        elif kind == "dropout":
            layers.append(K.layers.Dropout(opt["rate"], name=name))
    reg = K.regularizers.L2(0.01) if variant == "l1l2" else None
    layers.append(K.layers.Dense(CLASSES, activation=activation, kernel_regularizer=reg, name="out"))
    model = K.Sequential(layers, name="m")
    name, options = OPTIMIZERS.get(variant, ("Adam", {}))
    rate = LEARNING_RATE
    if variant in SETTINGS:
        name, options, sched, sched_options = SETTINGS[variant]
        options = dict(options)
        rate = options.pop("learning_rate", LEARNING_RATE)
        if sched is not None:
            rate = getattr(K.optimizers.schedules, sched)(**sched_options)
    if name.startswith("legacy."):
        name = name[len("legacy."):]
        cls = getattr(K.optimizers.legacy, name) if hasattr(K.optimizers, "legacy") else getattr(K.optimizers, name)
    else:
        cls = getattr(K.optimizers, name)
    model.compile(optimizer=cls(learning_rate=rate, **options), loss=loss)
    return model


def schedule(variant: str):
    """The schedule class name of variant, or None."""
    return SETTINGS.get(variant, (None, None, None, None))[2]


def steps(variant: str) -> int:
    """How many steps Keras and the export take after loading."""
    return OPTIMIZER_STEPS if variant in SETTINGS or variant in OPTIMIZERS else STEPS


def data(variant: str):
    """(x for prediction, [(x, y)] PRE_STEPS batches, [(x, y)] steps(variant) batches)."""
    rng = np.random.default_rng(42)
    x = rng.random((ROWS, FEATURES), dtype=np.float32)
    x[x < 0.6] = 0  # sparse-ish rows, as bag-of-words features are
    loss = VARIANTS[variant][1]
    classes = rng.integers(0, CLASSES, ROWS)
    if loss == "sparse_categorical_crossentropy":
        y = classes.astype(np.int64)
    elif loss == "binary_crossentropy":
        y = (rng.random((ROWS, CLASSES)) > 0.6).astype(np.float32)
    else:
        y = np.eye(CLASSES, dtype=np.float32)[classes]
    batches = []
    for _ in range(PRE_STEPS + steps(variant)):
        idx = rng.permutation(ROWS)[:BATCH]
        batches.append((x[idx], y[idx]))
    return x, batches[:PRE_STEPS], batches[PRE_STEPS:]


def weight_name(path: str) -> str:
    """"m/dense_0/kernel:0", "m__dense_0__kernel" -> "dense_0/kernel"."""
    parts = path.split(":")[0].replace("__", "/").split("/")
    return "/".join(parts[-2:])


def reference(model, variant: str, predict) -> dict:
    """Runs variant's steps(variant) batches through model.train_on_batch; returns the
    golden values: predictions first, then losses and every weight after."""
    x, _, steps = data(variant)
    out = {"predictions": np.asarray(predict(x), np.float32)}
    losses = []
    for bx, by in steps:
        losses.append(float(np.asarray(model.train_on_batch(bx, by)).reshape(-1)[0]))
    out["losses"] = np.asarray(losses, np.float64)
    for w in model.weights:
        name = weight_name(w.path if hasattr(w, "path") and isinstance(w.path, str) else w.name)
        if "seed_generator" in name:
            continue
        out["w:" + name] = np.asarray(w.numpy())
    out["iterations"] = np.asarray(int(model.optimizer.iterations.numpy()))
    return out


def _keras2_main(outdir: str, variants: list[str]) -> None:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tfquiet import quiet_startup
    with quiet_startup():
        import tf_keras as K
    for spec in variants:
        # VARIANT or VARIANT:KIND,... with KIND h5, dir or memory: the goldens
        # to record (all three by default).
        variant, _, kinds = spec.partition(":")
        kinds = set(kinds.split(",")) if kinds else {"h5", "dir", "memory"}
        if variant in KERAS3_ONLY:
            continue
        model = build(K, variant)
        _, pre, _ = data(variant)
        for bx, by in pre:
            model.train_on_batch(bx, by)
        h5, saved_dir = os.path.join(outdir, variant + ".h5"), os.path.join(outdir, variant + "_dir")
        model.save(h5, save_format="h5")
        model.save(saved_dir, save_format="tf")
        # What tf_keras itself does when its user loads the file and trains on:
        # the goldens for the exporter's defaults.
        for path, suffix in ((h5, "_h5"), (saved_dir, "_dir")):
            if suffix[1:] not in kinds:
                continue
            loaded = K.models.load_model(path)
            ref = reference(loaded, variant, lambda x: loaded(x, training=False).numpy())
            np.savez(os.path.join(outdir, variant + suffix + ".npz"), **ref)
        # The saved model going on in memory, optimizer state and all: the
        # golden of --optimizer-state keep on a SavedModel directory.
        if "memory" in kinds:
            ref = reference(model, variant, lambda x: model(x, training=False).numpy())
            np.savez(os.path.join(outdir, variant + "_memory.npz"), **ref)


if __name__ == "__main__":
    _keras2_main(sys.argv[1], sys.argv[2:])
