#!/usr/bin/env python3
"""Export a Keras model as a SavedModel that kerasgo can predict with and train from Go.

Two sources:

  --arch question --input-dim D --classes C [--multi-label]
      builds the model of the question kerasgo started from:
      Input(D) -> Dense(500, relu) -> Dense(250, relu) -> Dense(C, sigmoid),
      binary cross-entropy, Adam.
  --from FILE.keras|FILE.h5|DIR
      ports an existing Keras model, keeping its compiled loss and optimizer
      when it has them (--loss/--optimizer/--learning-rate override): a .keras
      file (Keras 3), an .h5 file written by Keras 3 or Keras 2 (tf_keras), or
      a Keras 2 SavedModel directory (tf_keras model.save("dir"), which holds
      keras_metadata.pb; read by tf_keras in a child process). The optimizer's
      state (iterations, moments) comes along where the file holds it;
      metadata "optimizer_state" says whether it did.

The SavedModel has these signatures (all loadable by the TF C API):

  serving_default    features -> probabilities
  train_step         features, labels, sample_weight -> loss, probabilities
                     (one optimizer step; updates weights and optimizer state;
                     probabilities are the training-mode forward pass before the update)
  evaluate_step      features, labels, sample_weight -> loss, probabilities (updates nothing)
  set_learning_rate  learning_rate -> learning_rate (assigns the optimizer's rate)
  get_weights        () -> every model variable, keyed by its Keras path with
                     "/" replaced by "__" (for checks and inspection)
  predict_sparse, train_step_sparse, evaluate_step_sparse
                     the same three with the features as a sparse batch:
                     indices int64[nnz, 2] (row, column), values float32[nnz],
                     dense_shape int64[2]; for bag-of-words rows, where the
                     dense batch would be ~99% zeros. Written only when every
                     layer reading the input is a Dense layer (metadata
                     "sparse_input": true); otherwise absent from the
                     SavedModel and from metadata "signatures". When a
                     single Dense layer reads the input, its product is a
                     CSR × dense one (see SparseFirstLayer; rows in order;
                     metadata "sparse_product": "csr", else "densify").

and assets/kerasgo.json, the metadata the Go side must not guess.

Export route and why: Keras 3 wraps every tf.Variable in its own Variable
object. Saving a module that tracks those wrappers writes two VarHandleOps per
variable into the MetaGraph; the checkpoint restores one while the functions
read the other, and session-based loaders (the C API) fail with "Could not find
variable dense/bias" (keras-team/keras#20095, #19274). This exporter keeps the
Keras model and optimizer out of the tracked object graph and tracks the
backing tf.Variables directly, so each variable has exactly one handle.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
import warnings
import zipfile

from tfquiet import quiet_startup  # noqa: E402  (beside this file; kerasgo export writes both)

with quiet_startup():
    import numpy as np
    import tensorflow as tf
    import keras

METADATA_FILE = "kerasgo.json"
METADATA_FORMAT = "kerasgo.export/v1"
LABEL_MODES = ("onehot", "sparse", "multilabel")

# What the Keras that wrote each format does with the saved optimizer when its
# user calls load_model(path) and then fit, measured with Keras 3.15 and
# tf_keras 2.21 (scripts/tests/test_optimizer_state.py holds them to it). The
# exporter does the same unless --optimizer-state says otherwise.
OPTIMIZER_STATE_DEFAULT = {
    "keras": ("keep", "Keras 3's load_model restores a .keras file's optimizer variables and iteration "
                      "count, and fit continues from them"),
    "h5-keras3": ("reset", "Keras 3's load_model cannot continue a Keras 3 .h5 file's optimizer (it builds "
                           "the optimizer for no variables and fit fails with 'Unknown variable'), so the model "
                           "is recompiled and its optimizer starts afresh"),
    "h5-keras2": ("keep", "tf_keras' load_model restores an .h5 file's optimizer weights and iteration "
                          "count, and fit continues from them"),
    "savedmodel-keras2": ("reset", "tf_keras' load_model of a SavedModel directory starts the optimizer "
                                   "afresh (iterations 0 after loading), although the checkpoint holds its "
                                   "variables"),
}

# Keras' built-in learning-rate schedules (Keras 3 and tf_keras share the names
# and formulas); the export evaluates them at the optimizer's iteration count.
BUILTIN_SCHEDULES = ("ExponentialDecay", "PiecewiseConstantDecay", "PolynomialDecay", "InverseTimeDecay",
                     "CosineDecay", "CosineDecayRestarts")


def question_model(input_dim: int, classes: int, seed: int) -> keras.Model:
    """Builds and compiles the question's architecture."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(input_dim,), name="features", dtype="float32")
    h = keras.layers.Dense(500, activation="relu", name="dense_500")(inputs)
    h = keras.layers.Dense(250, activation="relu", name="dense_250")(h)
    outputs = keras.layers.Dense(classes, activation="sigmoid", name="probabilities")(h)
    model = keras.Model(inputs, outputs, name="question")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss=keras.losses.BinaryCrossentropy(),
    )
    return model


def _loss_object(loss) -> keras.losses.Loss:
    """Turns whatever model.compile received into a Loss object with Keras' reduction."""
    if loss is None:
        raise ValueError("model has no compiled loss; pass --loss")
    if isinstance(loss, keras.losses.Loss):
        return loss
    name = loss if isinstance(loss, str) else getattr(loss, "__name__", "")
    try:
        obj = keras.losses.get({"class_name": _loss_class_name(name), "config": {}})
    except (ValueError, TypeError):
        obj = None
    if isinstance(obj, keras.losses.Loss):
        return obj
    if callable(loss):
        return _FunctionLoss(loss)
    raise ValueError(f"unsupported loss {loss!r}")


class _FunctionLoss(keras.losses.Loss):
    """A plain loss function with Keras' default reduction (mean over the batch)."""

    def __init__(self, fn):
        super().__init__(name=getattr(fn, "__name__", "loss"))
        self.fn = fn

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


def _loss_class_name(name: str) -> str:
    aliases = {
        "binary_crossentropy": "BinaryCrossentropy",
        "bce": "BinaryCrossentropy",
        "categorical_crossentropy": "CategoricalCrossentropy",
        "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
        "mean_squared_error": "MeanSquaredError",
        "mse": "MeanSquaredError",
    }
    return aliases.get(name, name)


def _label_mode(loss: keras.losses.Loss, multi_label: bool | None) -> str:
    fn = getattr(loss, "fn", None)
    if type(loss).__name__ == "SparseCategoricalCrossentropy" or getattr(fn, "__name__", "") == "sparse_categorical_crossentropy":
        return "sparse"
    if multi_label:
        return "multilabel"
    return "onehot"


class _TrainableModule(tf.Module):
    """The tracked object: the model's backing tf.Variables plus the traced functions.

    The Keras model and optimizer are held outside tf.Module's attribute
    tracking (see the module docstring for why).
    """

    def __init__(self, model: keras.Model, loss: keras.losses.Loss, label_mode: str, sparse: bool,
                 first_layer: SparseFirstLayer | None = None):
        super().__init__(name="kerasgo")
        object.__setattr__(self, "_keras", (model, model.optimizer, loss))
        self.model_variables = [_backing(v) for v in model.variables]
        self.optimizer_variables = [_backing(v) for v in model.optimizer.variables]
        schedule = model.optimizer._learning_rate
        if isinstance(schedule, _ScheduleOrConstant):
            self.rate_override = schedule.constant
        dim = int(model.inputs[0].shape[-1])
        classes = int(model.outputs[0].shape[-1])
        features = tf.TensorSpec([None, dim], tf.float32, name="features")
        if label_mode == "sparse":
            labels = tf.TensorSpec([None], tf.int64, name="labels")
        else:
            labels = tf.TensorSpec([None, classes], tf.float32, name="labels")
        weights = tf.TensorSpec([None], tf.float32, name="sample_weight")
        rate = tf.TensorSpec([], tf.float32, name="learning_rate")
        sparse_specs = [tf.TensorSpec([None, 2], tf.int64, name="indices"),
                        tf.TensorSpec([None], tf.float32, name="values"),
                        tf.TensorSpec([2], tf.int64, name="dense_shape")]
        self.serve = tf.function(self._serve, input_signature=[features])
        self.train = tf.function(self._train, input_signature=[features, labels, weights])
        self.evaluate = tf.function(self._evaluate, input_signature=[features, labels, weights])
        self.sparse = sparse
        if sparse and first_layer is not None:
            # Any values: the first layer as a CSR × dense product
            # (SparseFirstLayer), never a dense copy of the batch.
            self.serve_sparse = tf.function(
                lambda i, v, s: {"probabilities": first_layer(i, v, s)}, input_signature=sparse_specs)
            self.train_sparse = tf.function(
                lambda i, v, s, y, w: self._train((i, v, s), y, w, forward=first_layer),
                input_signature=sparse_specs + [labels, weights])
            self.evaluate_sparse = tf.function(
                lambda i, v, s, y, w: self._evaluate((i, v, s), y, w, forward=first_layer),
                input_signature=sparse_specs + [labels, weights])
        elif sparse:
            self.serve_sparse = tf.function(
                lambda i, v, s: self._serve(tf.SparseTensor(i, v, s)), input_signature=sparse_specs)
            self.train_sparse = tf.function(
                lambda i, v, s, y, w: self._train(tf.SparseTensor(i, v, s), y, w),
                input_signature=sparse_specs + [labels, weights])
            self.evaluate_sparse = tf.function(
                lambda i, v, s, y, w: self._evaluate(tf.SparseTensor(i, v, s), y, w),
                input_signature=sparse_specs + [labels, weights])
        self.set_rate = tf.function(self._set_rate, input_signature=[rate])
        self.weights = tf.function(self._weights, input_signature=[])

    def signatures(self) -> dict:
        """The concrete functions to save, keyed by signature name."""
        sigs = {
            "serving_default": self.serve.get_concrete_function(),
            "train_step": self.train.get_concrete_function(),
            "evaluate_step": self.evaluate.get_concrete_function(),
            "set_learning_rate": self.set_rate.get_concrete_function(),
            "get_weights": self.weights.get_concrete_function(),
        }
        if self.sparse:
            sigs["predict_sparse"] = self.serve_sparse.get_concrete_function()
            sigs["train_step_sparse"] = self.train_sparse.get_concrete_function()
            sigs["evaluate_step_sparse"] = self.evaluate_sparse.get_concrete_function()
        return sigs

    def _serve(self, features):
        model = self._keras[0]
        return {"probabilities": model(features, training=False)}

    def _loss(self, labels, probabilities, sample_weight, training):
        model, _, loss = self._keras
        value = loss(labels, probabilities, sample_weight=sample_weight)
        if training and model.losses:
            value = value + tf.add_n(model.losses)
        return value

    def _train(self, features, labels, sample_weight, forward=None):
        """One optimizer step. forward, when given, is a SparseFirstLayer and
        features its (indices, values, dense_shape)."""
        model, optimizer, _ = self._keras
        with tf.GradientTape() as tape:
            if forward is None:
                probabilities = model(features, training=True)
            else:
                probabilities = forward(*features, training=True)
            loss = self._loss(labels, probabilities, sample_weight, training=True)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return {"loss": loss, "probabilities": probabilities}

    def _evaluate(self, features, labels, sample_weight, forward=None):
        model = self._keras[0]
        if forward is None:
            probabilities = model(features, training=False)
        else:
            probabilities = forward(*features)
        loss = self._loss(labels, probabilities, sample_weight, training=False)
        return {"loss": loss, "probabilities": probabilities}

    def _set_rate(self, learning_rate):
        optimizer = self._keras[1]
        schedule = optimizer._learning_rate
        if isinstance(schedule, _ScheduleOrConstant):
            # A schedule is replaced by the constant from here on.
            schedule.constant.assign(learning_rate)
            return {"learning_rate": tf.identity(schedule.constant)}
        optimizer.learning_rate.assign(learning_rate)
        return {"learning_rate": tf.identity(optimizer.learning_rate)}

    def _weights(self):
        model = self._keras[0]
        return {weight_key(v): tf.identity(v.value) for v in model.variables}


class _ScheduleOrConstant(keras.optimizers.schedules.LearningRateSchedule):
    """A built-in Keras schedule, evaluated by the optimizer at its iteration
    count as Keras does, until set_learning_rate replaces it with a constant
    (constant >= 0; negative means "follow the schedule")."""

    def __init__(self, schedule):
        self.schedule = schedule
        self.constant = tf.Variable(-1.0, dtype=tf.float32, trainable=False, name="kerasgo_learning_rate")

    def __call__(self, step):
        scheduled = tf.cast(self.schedule(step), tf.float32)
        return tf.where(self.constant < 0, scheduled, self.constant)

    def get_config(self):
        return self.schedule.get_config()


def schedule_of(optimizer):
    """The optimizer's learning-rate schedule, or None for a constant rate.
    A schedule class Keras does not ship raises SourceError naming it."""
    schedule = getattr(optimizer, "_learning_rate", None)
    if isinstance(schedule, _ScheduleOrConstant):
        schedule = schedule.schedule
    if not isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        if callable(schedule) and not isinstance(schedule, (tf.Variable, keras.Variable)):
            raise SourceError(f"the learning rate is the callable {getattr(schedule, '__name__', type(schedule).__name__)!r}, "
                              "not a built-in Keras schedule; the exporter carries " + ", ".join(BUILTIN_SCHEDULES))
        return None
    name = type(schedule).__name__
    if name not in BUILTIN_SCHEDULES or not type(schedule).__module__.startswith("keras."):
        raise SourceError(_custom_schedule_message(name))
    return schedule


def _custom_schedule_message(name: str) -> str:
    return (f"the optimizer's learning-rate schedule {name!r} is a custom class kerasgo cannot carry "
            f"into the exported train step (it carries Keras' built-in {', '.join(BUILTIN_SCHEDULES)}; "
            "pass --optimizer NAME --learning-rate R to train with a new optimizer at a constant rate instead)")


def weight_key(variable) -> str:
    """The get_weights output key of a Keras variable."""
    return variable.path.replace("/", "__")


def _backing(variable):
    """Returns the tf.Variable behind a Keras 3 variable."""
    inner = getattr(variable, "_value", None)
    return inner if isinstance(inner, tf.Variable) else variable


def sparse_input_ok(model: keras.Model) -> bool:
    """Whether the model may be fed a tf.SparseTensor: every layer that reads
    the input is a Dense layer, which multiplies the sparse batch as it is
    (matmul with a SparseTensor). Any other first layer (BatchNormalization,
    Dropout, Reshape ...) would compute on a sparse batch something else than
    on the dense one, or fail."""
    readers = [n.operation for n in _input_nodes(model)]
    return bool(readers) and all(type(l) is keras.layers.Dense for l in readers)


def _input_nodes(model: keras.Model) -> list:
    """The call nodes of the model's layers that read its input."""
    history = getattr(model.inputs[0], "_keras_history", None)
    if history is None:
        return []
    layers = {id(l) for l in model.layers}
    return [n for n in history.operation._outbound_nodes if id(n.operation) in layers]


class SparseFirstLayer:
    """The model on a sparse batch, its input layer computed from the
    non-zeros alone, as a CSR × dense product (SparseMatrixMatMul): x·W for
    any values (presence flags, counts, tf-idf weights).

    Keras' Dense layer densifies a sparse batch (SparseToDense, then MatMul),
    so it does the dense batch's work. Timed in TensorFlow 2.21 on a 2-core
    machine (500 rows, D=10,000, 500 units, 1% non-zero; the first layer
    alone, in a tf.function): SparseToDense + MatMul 38–39 ms,
    sparse_dense_matmul 33 ms, gather × values + segment sum 73 ms,
    embedding_lookup_sparse 39 ms, SparseSegmentSum (flags only) 7.7–8.7 ms,
    SparseTensorToCSRSparseMatrix + SparseMatrixMatMul 5.7–6.5 ms. Sessions
    do not compile jit_compile functions without process-wide XLA flags.

    A train step needs the kernel's gradient xᵀ·upstream: a CSR product with
    the transpose built by sorting the entries by column (8.8 ms;
    SparseMatrixMatMul's own transpose_a took 23 ms).

    It needs the rows in order, which every batch kerasgo sends has: the
    graph checks it and rejects others with InvalidArgument (the CSR product
    would otherwise be silently wrong).
    """

    def __init__(self, layer, rest: keras.Model):
        self.layer = layer
        self.rest = rest

    @classmethod
    def of(cls, model: keras.Model) -> "SparseFirstLayer | None":
        """The split of model at the one Dense layer that reads its input, or
        None when there is no such single layer, or the split does not
        reproduce the model's output within 1e-5 on random rows."""
        nodes = _input_nodes(model)
        if len({id(n.operation) for n in nodes}) != 1 or type(nodes[0].operation) is not keras.layers.Dense:
            return None
        layer = nodes[0].operation
        if getattr(layer, "lora_enabled", False) or getattr(layer, "quantization_mode", None) \
                or layer.kernel.dtype != "float32" or layer.activity_regularizer is not None:
            return None
        # The layer's output where it reads the model's input. A Sequential
        # loaded from a file has called it on its input twice, and only one
        # of the two outputs leads to the model's output.
        split = None
        for node in nodes:
            try:
                split = cls(layer, keras.Model(node.output_tensors[0], model.outputs[0]))
                break
            except (ValueError, AttributeError, TypeError, IndexError):
                continue
        if split is None:
            return None
        rng = np.random.default_rng(0)
        dim = int(model.inputs[0].shape[-1])
        for density in (0.2, 0.0):
            flags = (rng.random((5, dim)) < density).astype(np.float32)
            for x in (flags, flags * rng.random(flags.shape).astype(np.float32) * 3):
                want = model(x, training=False).numpy()
                sp = tf.sparse.from_dense(x)
                got = split(sp.indices, sp.values, sp.dense_shape).numpy()
                if got.shape != want.shape or not np.allclose(got, want, rtol=1e-5, atol=1e-5):
                    return None
        return split

    def __call__(self, indices, values, dense_shape, training=False):
        """The model's output for the batch whose entries at indices (row,
        column; rows in order) are values, and the rest 0."""
        layer = self.layer
        rows, cols = indices[:, 0], indices[:, 1]
        in_order = tf.debugging.assert_non_negative(
            rows[1:] - rows[:-1], message="sparse batch: the entries' rows must be in order")
        with tf.control_dependencies([in_order]):
            rows = tf.identity(rows)

        @tf.custom_gradient
        def product(kernel):
            x = tf.raw_ops.SparseTensorToCSRSparseMatrix(indices=tf.stack([rows, cols], axis=1), values=values,
                                                         dense_shape=dense_shape)

            def grad(upstream):
                # xᵀ·upstream, with xᵀ as a CSR matrix of its own: the entries
                # sorted by column, rows and columns swapped.
                by_column = tf.argsort(cols, stable=True)
                xt = tf.raw_ops.SparseTensorToCSRSparseMatrix(
                    indices=tf.stack([tf.gather(cols, by_column), tf.gather(rows, by_column)], axis=1),
                    values=tf.gather(values, by_column), dense_shape=tf.reverse(dense_shape, [0]))
                return tf.raw_ops.SparseMatrixMatMul(a=xt, b=upstream)
            return tf.raw_ops.SparseMatrixMatMul(a=x, b=kernel), grad

        kernel = tf.convert_to_tensor(_backing(layer.kernel))
        h = product(kernel)
        if layer.use_bias:
            h = h + _backing(layer.bias)
        if layer.activation is not None:
            h = layer.activation(h)
        return self.rest(h, training=training)


# Optimizer settings the exported train step cannot reproduce, with why.
_REFUSED_SETTINGS = {
    "use_ema": "Keras' fit overwrites the weights with their moving average when training ends, "
               "which a kerasgo train step cannot tell",
    "loss_scale_factor": "kerasgo trains in float32 without loss scaling",
}


def check_optimizer(optimizer) -> None:
    """Refuses, by name, an optimizer or setting the exported train step
    would not reproduce. Everything else in Keras' built-in optimizers
    (weight decay, clipnorm, clipvalue, global_clipnorm, momentum, nesterov,
    amsgrad, centered, gradient_accumulation_steps ...) runs in Keras' own
    apply_gradients inside the exported step."""
    cls = type(optimizer)
    if not cls.__module__.startswith("keras."):
        raise SourceError(f"the optimizer {cls.__name__!r} is not a built-in Keras optimizer")
    if cls.__name__ == "LossScaleOptimizer":
        raise SourceError("the optimizer is a LossScaleOptimizer (mixed precision); kerasgo trains in float32")
    config = optimizer.get_config()
    for key, why in _REFUSED_SETTINGS.items():
        value = config.get(key)
        if value not in (None, False, 0, 1.0) or (key == "use_ema" and value):
            raise SourceError(f"the optimizer setting {key}={value} cannot be carried: {why}")


def _check_exportable(model: keras.Model) -> None:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
            "the exporter handles one 2-D float input and one output")
    if len(model.inputs[0].shape) != 2 or model.inputs[0].shape[-1] is None:
        raise ValueError(f"model input shape {model.inputs[0].shape} is not (batch, features)")


VECTORIZER_FILE = "vectorizer.json"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_MODES = ("binary", "count", "freq", "tfidf")


def tokenizer_width(tokenizer_json: str) -> int:
    """The texts_to_matrix width of a legacy Keras Tokenizer's to_json()."""
    config = json.loads(tokenizer_json)["config"]
    if config.get("num_words"):
        return int(config["num_words"])
    word_index = config["word_index"]
    if isinstance(word_index, str):
        word_index = json.loads(word_index)
    return len(word_index) + 1


def vectorizer_config(layer) -> dict:
    """The JSON kerasgo's Go vectorizer (package textvec) reads, from a fitted
    keras.layers.TextVectorization (multi_hot, count or tf_idf output)."""
    config = layer.get_config()
    mode = config["output_mode"]
    if mode not in ("multi_hot", "count", "tf_idf"):
        raise ValueError(f"TextVectorization output_mode {mode!r}: kerasgo reproduces multi_hot, count and tf_idf")
    out = {
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "max_tokens": config.get("max_tokens"),
        "standardize": config["standardize"],
        "split": config["split"],
        "ngrams": config["ngrams"],
        "output_mode": mode,
        "vocabulary": [str(t) for t in layer.get_vocabulary()],
    }
    if mode == "tf_idf":
        out["idf"] = [float(v) for v in np.asarray(layer._lookup_layer.idf_weights.numpy(), dtype=np.float32)]
    return out


def export(model: keras.Model, out: str, *, class_names=None, multi_label=None,
           seed=None, source="", learning_rate=None, vectorizer=None,
           tokenizer=None, tokenizer_mode="binary", source_format="",
           optimizer_state=None, optimizer_state_note="", optimizer_state_mode="keep",
           optimizer_state_why="") -> dict:
    """Writes model to out as a SavedModel with kerasgo's signatures and metadata.

    optimizer_state is recorded in the metadata: "restored" (the optimizer
    goes on from a saved state), "reset" (a saved state was set aside, as the
    source's Keras does on load_model + fit or as --optimizer-state reset
    asked), "fresh" (a saved state could not be carried over;
    optimizer_state_note says why) or "new" (there was none); by default
    "restored" when the optimizer has taken a step, else "new".
    optimizer_state_mode ("keep" or "reset") and optimizer_state_why record
    the choice and its reason.

    A built-in learning-rate schedule is carried into the train steps,
    evaluated at the optimizer's iteration count; learning_rate (or the
    set_learning_rate signature) replaces it with a constant.

    The directory is written beside out and renamed into place, so an existing
    model at out is replaced whole or not at all. Returns the metadata.
    """
    _check_exportable(model)
    if model.optimizer is None:
        raise ValueError("model has no optimizer; compile it or pass --optimizer")
    loss = _loss_object(model.loss)
    mode = _label_mode(loss, multi_label)
    optimizer = model.optimizer
    check_optimizer(optimizer)
    schedule = schedule_of(optimizer)
    optimizer_config = _jsonable(optimizer.get_config())
    optimizer.build(model.trainable_variables)
    if optimizer_state is None:
        optimizer_state = "restored" if has_state(optimizer) else "new"
    schedule_meta = None
    if schedule is not None:
        wrapper = optimizer._learning_rate
        if not isinstance(wrapper, _ScheduleOrConstant):
            wrapper = _ScheduleOrConstant(schedule)
            optimizer._learning_rate = wrapper
        schedule_meta = {"class_name": type(schedule).__name__, "config": _jsonable(schedule.get_config()),
                         "replaced_by": None}
        if learning_rate is not None:
            wrapper.constant.assign(learning_rate)
            schedule_meta["replaced_by"] = learning_rate
    elif learning_rate is not None:
        optimizer.learning_rate.assign(learning_rate)
        optimizer_config["learning_rate"] = learning_rate
    dim = int(model.inputs[0].shape[-1])
    classes = int(model.outputs[0].shape[-1])
    if class_names is None:
        class_names = [f"class_{i}" for i in range(classes)]
    if len(class_names) != classes:
        raise ValueError(f"{len(class_names)} class names for {classes} outputs")

    sparse = sparse_input_ok(model)
    first_layer = SparseFirstLayer.of(model) if sparse else None
    module = _TrainableModule(model, loss, mode, sparse, first_layer)
    signatures = {
        "predict": "serving_default",
        "train": "train_step",
        "evaluate": "evaluate_step",
        "set_learning_rate": "set_learning_rate",
        "weights": "get_weights",
    }
    if sparse:
        signatures.update(predict_sparse="predict_sparse", train_sparse="train_step_sparse",
                          evaluate_sparse="evaluate_step_sparse")
    meta = {
        "format": METADATA_FORMAT,
        "source": source,
        "source_format": source_format,
        "seed": seed,
        "input_key": "features",
        "input_dim": dim,
        "input_dtype": "float32",
        "output_key": "probabilities",
        "output_activation": _output_activation(model),
        "classes": list(class_names),
        "label_mode": mode,
        "labels_key": "labels",
        "labels_dtype": "int64" if mode == "sparse" else "float32",
        "sample_weight_key": "sample_weight",
        "loss": {"class_name": type(loss).__name__, "config": _jsonable(loss.get_config())},
        "optimizer": {"class_name": type(optimizer).__name__, "config": optimizer_config},
        "optimizer_state": optimizer_state,
        "optimizer_state_note": optimizer_state_note,
        "optimizer_state_mode": optimizer_state_mode,
        "optimizer_state_why": optimizer_state_why,
        "learning_rate_schedule": schedule_meta,
        "signatures": signatures,
        "sparse_input": sparse,
        "sparse_product": ("csr" if first_layer is not None else "densify") if sparse else "",
        "parameters": int(model.count_params()),
        "vectorizer": VECTORIZER_FILE if vectorizer is not None else "",
        "tokenizer": TOKENIZER_FILE if tokenizer is not None else "",
        "tokenizer_mode": tokenizer_mode if tokenizer is not None else "",
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
    }

    parent = os.path.dirname(os.path.abspath(out)) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        target = os.path.join(tmp, "model")
        tf.saved_model.save(module, target, signatures=module.signatures())
        assets = os.path.join(target, "assets")
        os.makedirs(assets, exist_ok=True)
        with open(os.path.join(assets, METADATA_FILE), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
            f.write("\n")
        if tokenizer is not None:
            if vectorizer is not None:
                raise ValueError("give a vectorizer or a tokenizer, not both")
            if tokenizer_mode not in TOKENIZER_MODES:
                raise ValueError(f"tokenizer mode {tokenizer_mode!r}, want one of {', '.join(TOKENIZER_MODES)}")
            if tokenizer_width(tokenizer) != dim:
                raise ValueError(f"the tokenizer makes {tokenizer_width(tokenizer)} features, the model takes {dim}")
            with open(os.path.join(assets, TOKENIZER_FILE), "w", encoding="utf-8") as f:
                f.write(tokenizer)
        if vectorizer is not None:
            if len(vectorizer["vocabulary"]) != dim:
                raise ValueError(f"the vectorizer makes {len(vectorizer['vocabulary'])} features, the model takes {dim}")
            with open(os.path.join(assets, VECTORIZER_FILE), "w", encoding="utf-8") as f:
                json.dump(vectorizer, f, ensure_ascii=False, indent=1, sort_keys=True)
                f.write("\n")
        _replace_dir(target, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def _replace_dir(src: str, dst: str) -> None:
    """Moves src to dst; an existing dst is swapped out only once src is complete."""
    if os.path.exists(dst):
        old = dst.rstrip("/") + ".old-export"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(dst, old)
        os.rename(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(src, dst)


def _output_activation(model: keras.Model) -> str:
    layer = model.layers[-1]
    act = getattr(layer, "activation", None)
    return getattr(act, "__name__", "unknown") if act is not None else "unknown"


def _jsonable(value):
    return json.loads(json.dumps(value, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o)))


def _build_optimizer(name: str, learning_rate):
    config = {} if learning_rate is None else {"learning_rate": learning_rate}
    return keras.optimizers.get({"class_name": name, "config": config})


class SourceError(ValueError):
    """A model the exporter cannot take, with a one-line reason naming the file."""


class Loaded:
    """A Keras 3 model read from a file, and what became of its optimizer state."""

    def __init__(self, model, source_format, optimizer_state="new", note="", dropped=()):
        self.model = model
        self.source_format = source_format
        self.optimizer_state = optimizer_state  # "restored", "fresh" or "new"
        self.note = note
        self.dropped = list(dropped)  # optimizer settings Keras 3 has no place for


def load_model_file(path: str) -> Loaded:
    """Reads a .keras file, an .h5 file (Keras 3 or Keras 2) or a Keras 2
    SavedModel directory into a compiled Keras 3 model."""
    name = path.rstrip("/")
    if os.path.isdir(path):
        if os.path.exists(os.path.join(path, "keras_metadata.pb")):
            return _load_keras2_savedmodel(path)
        if os.path.exists(os.path.join(path, "saved_model.pb")) or os.path.exists(os.path.join(path, "saved_model.pbtxt")):
            raise SourceError(
                f"{name} is a SavedModel without a Keras model (no keras_metadata.pb): export from the "
                f".keras or .h5 file the model was saved to, or serve/predict {name} directly")
        raise SourceError(
            f"{name} is neither a Keras 2 SavedModel (keras_metadata.pb) nor a SavedModel (saved_model.pb): "
            "pass a .keras file, an .h5 file or a directory written by tf_keras model.save(dir)")
    if not os.path.exists(path):
        raise SourceError(f"{path}: no such file")
    if path.endswith((".h5", ".hdf5")):
        return _load_h5(path)
    if path.endswith(".keras"):
        return _load_keras(path)
    raise SourceError(f"{path}: unknown model format (want a .keras file, an .h5 file or a Keras 2 SavedModel directory)")


def _why(path: str, err: BaseException) -> SourceError:
    """Turns what Keras raised while reading path into one line saying what is unsupported."""
    text = " ".join(str(err).split())
    m = re.search(r"Could not locate (class|function) '([^']+)'", text) or \
        re.search(r"Unknown (layer|object|loss|activation|regularizer|initializer|constraint|optimizer|metric)[^'\"]*['\"]([^'\"]+)['\"]", text)
    if m:
        kind = "layer" if m.group(1) in ("class", "layer") else m.group(1)
        return SourceError(
            f"{path}: the model uses the custom {kind} {m.group(2)!r}, which is not a built-in Keras object; "
            "the exporter handles models made of built-in layers, losses and optimizers")
    if len(text) > 300:
        text = text[:300] + "..."
    return SourceError(f"{path}: cannot read the model: {type(err).__name__}: {text}")


def _schedule_class_in(text: str):
    """The class of the learning-rate schedule a saved training configuration
    (JSON text) gives its optimizer, or None for a constant rate."""
    m = re.search(r'"learning_rate":\s*\{[^{}]*?"class_name":\s*"([^"]+)"', text)
    return m.group(1) if m else None


def _refuse_custom_schedule(path: str, text: str) -> None:
    """Refuses a file whose optimizer has a schedule Keras does not ship:
    reading it would fail on the unknown class with a message about layers."""
    name = _schedule_class_in(text)
    if name is not None and name.split(">")[-1] not in BUILTIN_SCHEDULES:
        raise SourceError(f"{path}: {_custom_schedule_message(name.split('>')[-1])}")


def _load_keras(path: str) -> Loaded:
    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
        _refuse_custom_schedule(path, json.dumps(config.get("compile_config") or {}))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as e:
        if isinstance(e, SourceError):
            raise
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = keras.saving.load_model(path, compile=True)
    except Exception as e:  # noqa: BLE001 (every reading failure becomes one line)
        raise _why(path, e) from None
    skipped = [str(w.message) for w in caught if "Skipping variable loading for optimizer" in str(w.message)]
    if model.optimizer is None:
        return Loaded(model, "keras", "new")
    if skipped:
        if not has_state(model.optimizer):
            return Loaded(model, "keras", "new", "the file's optimizer had taken no step")
        return Loaded(model, "keras", "fresh", "the file's optimizer variables did not match the model's")
    if not has_state(model.optimizer):
        return Loaded(model, "keras", "new", "the file's optimizer had taken no step")
    return Loaded(model, "keras", "restored")


def has_state(optimizer) -> bool:
    """Whether the optimizer has taken a step, or accumulated gradients
    towards one (gradient_accumulation_steps: iterations count applied steps)."""
    if int(np.asarray(optimizer.iterations)) > 0:
        return True
    return any(np.any(np.asarray(v) != 0) for v in getattr(optimizer, "_accumulated_gradients", None) or [])


def _h5_attr(f, key):
    value = f.attrs.get(key)
    if hasattr(value, "decode"):
        value = value.decode("utf-8")
    return value


def _load_h5(path: str, source_format: str = "") -> Loaded:
    try:
        import h5py
        with h5py.File(path, "r") as f:
            model_config = _h5_attr(f, "model_config")
            training = _h5_attr(f, "training_config")
            writer = _h5_attr(f, "keras_version") or ""
            saved = []
            if "optimizer_weights" in f:
                group = f["optimizer_weights"]
                for n in group.attrs.get("weight_names", []):
                    n = n.decode("utf-8") if hasattr(n, "decode") else str(n)
                    saved.append((n, np.asarray(group[n])))
    except OSError as e:
        raise SourceError(f"{path}: not a readable HDF5 model file ({' '.join(str(e).split())})") from None
    if model_config is None:
        raise SourceError(f"{path}: the HDF5 file holds no model (no model_config; weights only?)")
    if not source_format:
        source_format = "h5-keras3" if writer.startswith("3") else "h5-keras2"
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:  # noqa: BLE001
        raise _why(path, e) from None
    try:
        _check_exportable(model)
    except ValueError as e:
        raise SourceError(f"{path}: {e}") from None
    if training is None:
        return Loaded(model, source_format, "new", "the file holds no training configuration")
    try:
        training = json.loads(training)
        loss = _h5_loss(training.get("loss"))
        optimizer, dropped = _h5_optimizer(training["optimizer_config"])
    except SourceError as e:
        raise SourceError(f"{path}: {e}") from None
    except Exception as e:  # noqa: BLE001
        raise _why(path, e) from None
    model.compile(optimizer=optimizer, loss=loss)
    state, note = restore_optimizer_state(optimizer, model.trainable_variables, saved)
    if dropped:
        note = "; ".join(filter(None, [note, f"optimizer settings Keras 3 lacks were dropped: {', '.join(dropped)}"]))
    return Loaded(model, source_format, state, note, dropped)


def _h5_loss(config):
    """The loss of an .h5 training_config (a name, or a Keras 2 or 3 loss config)."""
    if config is None:
        return None
    if isinstance(config, dict) and "class_name" in config:
        cfg = dict(config.get("config", {}))
        if cfg.get("reduction") in ("auto", "sum_over_batch_size"):  # Keras 2's "auto" is Keras 3's default
            cfg.pop("reduction")
        cfg.pop("fn", None)
        return keras.losses.get({"class_name": _loss_class_name(config["class_name"]), "config": cfg})
    if isinstance(config, (list, dict)):
        raise ValueError(f"several losses ({config!r}): the exporter handles one output")
    return _loss_object(config)


def _h5_optimizer(config):
    """Builds a Keras 3 optimizer from an .h5 optimizer_config. Keras 3's own
    loader turns a tf_keras "Custom>Adam" into a default Adam, losing the
    learning rate; this keeps every setting Keras 3 knows and lists the rest."""
    name = config["class_name"].split(">")[-1]
    try:
        cls = type(keras.optimizers.get(name))
    except ValueError:
        raise SourceError(f"the optimizer {name!r} is not a built-in Keras optimizer") from None
    cfg = dict(config.get("config", {}))
    if "lr" in cfg and "learning_rate" not in cfg:  # Keras before 2.3
        cfg["learning_rate"] = cfg.pop("lr")
    rate = cfg.get("learning_rate")
    if isinstance(rate, dict):
        sched = rate.get("class_name", "")
        if sched not in BUILTIN_SCHEDULES:
            raise SourceError(_custom_schedule_message(sched))
        inner = {k: v for k, v in rate.get("config", {}).items() if not (k == "name" and v is None)}
        rate = dict(rate, module="keras.optimizers.schedules", registered_name=None, config=inner)
        cfg["learning_rate"] = rate
    decay = cfg.pop("decay", 0.0) if "decay" not in inspect.signature(cls.__init__).parameters else 0.0
    if decay:
        # A legacy tf_keras optimizer's decay: lr / (1 + decay * iterations),
        # which is InverseTimeDecay(lr, 1, decay) at the iteration count.
        if isinstance(rate, dict):
            raise SourceError(f"the optimizer has both decay={decay} and a {rate['class_name']} schedule")
        cfg["learning_rate"] = keras.optimizers.schedules.InverseTimeDecay(float(rate), 1, float(decay))
    accepted = set(inspect.signature(cls.__init__).parameters)
    for key in list(cfg):
        if key not in accepted:
            value = cfg.pop(key)
            # Defaults and bookkeeping of tf_keras optimizers, harmless to drop.
            if key not in ("jit_compile", "is_legacy_optimizer", "name") and value not in (None, 0, 0.0, False):
                raise SourceError(f"the optimizer setting {key}={value} of {name} has no Keras 3 "
                                  "counterpart kerasgo could train with")
    return cls.from_config(cfg), []


_ITERATION_NAMES = ("iter", "iteration", "iterations")
# Slot names of tf_keras (new and legacy) and Keras 3 optimizers -> Keras 3's.
_SLOT_NAMES = {
    "m": "momentum", "v": "velocity", "vhat": "velocity_hat", "momentum": "momentum",
    "velocity": "velocity", "velocity_hat": "velocity_hat", "accumulator": "accumulator",
    "average_gradient": "average_gradient", "u": "norm", "norm": "norm", "rms": "velocity",
    "mg": "average_gradient", "accumulated_grad": "accumulated_grad",
    "accumulated_delta_var": "accumulated_delta_var",
}


def _split_slot(name: str):
    """("Adam/m/dense/kernel:0") -> ("Adam/dense/kernel", "momentum"): the variable's
    stem and the Keras 3 slot name, for tf_keras, legacy and Keras 3 weight names."""
    tokens = name.split(":")[0].split("/")
    # tf_keras: "Adam/m/dense/kernel" (or "m/dense/kernel" once reloaded);
    # legacy tf_keras: "Adam/dense/kernel/m"; Keras 3: "adam/dense_kernel_momentum".
    for i in (1, 0, len(tokens) - 1):
        if len(tokens) > 2 and tokens[i] in _SLOT_NAMES:
            return "/".join(tokens[:i] + tokens[i + 1:]), _SLOT_NAMES[tokens[i]]
    last = tokens[-1]
    for slot in sorted(_SLOT_NAMES, key=len, reverse=True):
        if last.endswith("_" + slot):
            return "/".join(tokens[:-1] + [last[: -len(slot) - 1]]), _SLOT_NAMES[slot]
    return None, None


def _match_slot_owner(stem: str, trainable):
    """The model variable a saved slot's stem names, by Keras' variable paths:
    "Adam/dense/kernel" (tf_keras) or "adam/seq_dense_kernel" (Keras 3, the
    path with "/" as "_") names the variable whose path ends in
    dense/kernel. None unless exactly one variable fits."""
    tokens = stem.split("/")
    for drop in (1, 0):
        key = "_".join(tokens[drop:])
        hits = [v for v in trainable
                if v.path.replace("/", "_") == key or v.path.replace("/", "_").endswith("_" + key)]
        if len(hits) == 1:
            return hits[0]
    return None


def restore_optimizer_state(optimizer, trainable, saved) -> tuple[str, str]:
    """Copies a saved optimizer's iterations and slot variables (names and values,
    from an .h5 file's optimizer_weights) into a Keras 3 optimizer built for
    trainable. Slots are matched to model variables by Keras' variable paths
    (the saved name holds the layer and weight names); only when a name fits
    no single variable (a model renamed on loading) by the order in which the
    saved names first mention each variable, the order both Keras 2 and Keras
    3 build them in. Both ways are checked by shape. Returns (state, note)."""
    optimizer.build(trainable)
    if not saved:
        return "new", "the file holds no optimizer state"
    iteration = None
    u_product = None
    groups: dict[str, dict[str, np.ndarray]] = {}
    for name, value in saved:
        base = name.split(":")[0].split("/")[-1]
        if base in _ITERATION_NAMES and value.shape == ():
            iteration = value
            continue
        if base == "u_product" and value.shape == ():
            u_product = value  # Nadam's running product of momentum factors
            continue
        if value.shape == () or base in ("learning_rate", "lr"):
            continue  # hyperparameters: the config holds them
        stem, slot = _split_slot(name)
        if stem is None:
            return "fresh", f"unrecognised optimizer variable {name!r}; moments start at zero"
        groups.setdefault(stem, {})[slot] = value
    slot_vars = [v for v in optimizer.variables if len(v.shape) > 0]
    if not groups:
        if iteration is None or int(iteration) == 0:
            return "new", "the file's optimizer had taken no step"
        if not slot_vars:  # SGD without momentum: the iteration count is all the state
            optimizer.iterations.assign(int(iteration))
            return "restored", ""
        return "fresh", "the file holds the optimizer's iteration count but not its moments; moments start at zero"
    if len(groups) != len(trainable):
        return "fresh", (f"the saved optimizer has slots for {len(groups)} variables, the model trains "
                         f"{len(trainable)}; moments start at zero")
    owners = [_match_slot_owner(stem, trainable) for stem in groups]
    if any(o is None for o in owners) or len({id(o) for o in owners}) != len(owners):
        owners = list(trainable)  # by order
    by_path = {v.path: v for v in optimizer.variables}
    plan = []
    for var, slots in zip(owners, groups.values()):
        for slot, value in slots.items():
            target = by_path.get(f"{optimizer.name}/{var.path.replace('/', '_')}_{slot}")
            if target is None or tuple(target.shape) != value.shape:
                return "fresh", (f"the saved {slot} of {var.path} does not fit {type(optimizer).__name__} "
                                 "in Keras 3; moments start at zero")
            plan.append((target, value))
    if len(plan) != len(slot_vars):
        return "fresh", (f"the file holds {len(plan)} of the {len(slot_vars)} slot variables "
                         f"{type(optimizer).__name__} needs; moments start at zero")
    for target, value in plan:
        target.assign(value)
    if iteration is not None:
        optimizer.iterations.assign(int(iteration))
    if hasattr(optimizer, "_u_product"):
        if u_product is None and iteration is not None:
            # tf_keras keeps Nadam's running product of momentum factors out
            # of its saved weights: it is the product over the steps taken.
            steps = np.arange(1, int(iteration) + 1, dtype=np.float64)
            u_product = np.prod(optimizer.beta_1 * (1.0 - 0.5 * 0.96 ** steps))
        if u_product is not None:
            optimizer._u_product.assign(float(u_product))
    return "restored", ""


# The child process that reads a Keras 2 SavedModel with tf_keras: Keras 3 is
# already imported here, and TF_USE_LEGACY_KERAS must be set before TensorFlow
# loads. It writes the model as a Keras 2 .h5 file with the optimizer's state
# (tf_keras restores the slots from the SavedModel's checkpoint only by hand).
_KERAS2_CHILD = r'''
import os, sys
sys.path.insert(0, sys.argv[3])
from tfquiet import quiet_startup
with quiet_startup():
    import numpy as np
    import tensorflow as tf
    import tf_keras
src, out = sys.argv[1], sys.argv[2]
def fail(kind, msg):
    print(kind + "\t" + " ".join(str(msg).split()), file=sys.stderr)
    sys.exit(3)
try:
    model = tf_keras.models.load_model(src, compile=True)
except Exception as e:
    fail("load", f"{type(e).__name__}: {e}")
revived = sorted({type(l).__name__ for l in [model, *model.submodules] if type(l).__module__.endswith("saved_model.load")})
if revived:
    fail("custom", "the model uses the custom layer " + ", ".join(repr(n) for n in revived) +
         ", which is not a built-in Keras object (tf_keras cannot rebuild it from its config)")
note = ""
opt = model.optimizer
if opt is not None and not hasattr(opt, "build"):
    # A legacy optimizer (tf_keras.optimizers.legacy): its slots sit in the
    # checkpoint under each variable's object path.
    try:
        from tensorflow.python.checkpoint import graph_view
        reader = tf.train.load_checkpoint(os.path.join(src, "variables", "variables"))
        keys = reader.get_variable_to_shape_map()
        opt._create_all_weights(model.trainable_variables)
        _, paths = graph_view.ObjectGraphView(model)._breadth_first_traversal()
        it = "optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE"
        if it in keys:
            opt.iterations.assign(reader.get_tensor(it))
        missing = 0
        for v in model.trainable_variables:
            path = "/".join(r.name for r in paths[v])
            for slot in opt.get_slot_names():
                key = f"{path}/.OPTIMIZER_SLOT/optimizer/{slot}/.ATTRIBUTES/VARIABLE_VALUE"
                if key in keys:
                    opt.get_slot(v, slot).assign(reader.get_tensor(key))
                else:
                    missing += 1
        if missing:
            note = f"{missing} optimizer variables were not in the checkpoint"
    except Exception as e:
        note = f"the legacy optimizer's state not read: {type(e).__name__}: {e}"
elif opt is not None:
    try:
        reader = tf.train.load_checkpoint(os.path.join(src, "variables", "variables"))
        keys = reader.get_variable_to_shape_map()
        opt.build(model.trainable_variables)
        it = "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
        if it in keys:
            opt.iterations.assign(reader.get_tensor(it))
        missing = 0
        for i, v in enumerate(opt.variables):
            if v is opt.iterations or i == 0:
                continue
            key = f"optimizer/_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE"
            if key in keys and tuple(keys[key]) == tuple(v.shape):
                v.assign(reader.get_tensor(key))
            else:
                missing += 1
        if missing:
            note = f"{missing} optimizer variables were not in the checkpoint"
    except Exception as e:
        note = f"optimizer state not read: {type(e).__name__}: {e}"
try:
    model.save(out, save_format="h5", include_optimizer=True)
except Exception as e:
    fail("save", f"{type(e).__name__}: {e}")
print(" ".join(note.split()))
'''


def _load_keras2_savedmodel(path: str) -> Loaded:
    name = path.rstrip("/")
    try:
        with open(os.path.join(path, "keras_metadata.pb"), "rb") as f:
            _refuse_custom_schedule(name, f.read().decode("utf-8", "replace"))
    except OSError:
        pass
    tmp = tempfile.mkdtemp(prefix="kerasgo-keras2-")
    try:
        h5 = os.path.join(tmp, os.path.basename(name) + ".h5")
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1")
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        proc = subprocess.run([sys.executable, "-c", _KERAS2_CHILD, path, h5,
                               os.path.dirname(os.path.abspath(__file__))],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [l for l in proc.stderr.splitlines() if "\t" in l]
            if not lines:
                tail = " ".join(proc.stderr.strip().splitlines()[-1:]) or f"exit status {proc.returncode}"
                if "No module named 'tf_keras'" in proc.stderr:
                    tail = "reading a Keras 2 SavedModel needs the tf_keras package (pip install tf_keras)"
                raise SourceError(f"{name}: cannot read the Keras 2 SavedModel: {tail}")
            kind, _, msg = lines[-1].partition("\t")
            if kind == "custom":
                raise SourceError(f"{name}: {msg}; the exporter handles models made of built-in layers, "
                                  "losses and optimizers")
            raise _why(name, RuntimeError(msg))
        try:
            loaded = _load_h5(h5, source_format="savedmodel-keras2")
        except SourceError as e:
            raise SourceError(str(e).replace(h5, name)) from None
        child_note = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        if child_note:
            loaded.note = "; ".join(filter(None, [child_note, loaded.note]))
            if loaded.optimizer_state in ("restored", "new"):
                loaded.optimizer_state = "fresh"
        return loaded
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_source(args) -> tuple[Loaded, str]:
    """Builds or loads the Keras model the command line asks for."""
    if args.arch:
        if args.arch != "question":
            raise ValueError(f"unknown --arch {args.arch!r} (want: question)")
        if not args.input_dim or not args.classes:
            raise ValueError("--arch question needs --input-dim and --classes")
        return Loaded(question_model(args.input_dim, args.classes, args.seed), "arch"), "arch:question"
    keras.utils.set_random_seed(args.seed)
    loaded = load_model_file(args.from_file)
    return loaded, f"file:{os.path.basename(args.from_file.rstrip('/'))}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--arch", help="build a known architecture: question")
    src.add_argument("--from", dest="from_file",
                     help="a .keras file, an .h5 file (Keras 3 or 2) or a Keras 2 SavedModel directory")
    p.add_argument("--input-dim", type=int, help="features per row (with --arch)")
    p.add_argument("--classes", type=int, help="number of output classes (with --arch)")
    p.add_argument("--multi-label", action="store_true", help="labels are multi-hot (several classes per row)")
    p.add_argument("--out", required=True, help="directory to write the SavedModel to")
    p.add_argument("--seed", type=int, default=0, help="random seed (weights are deterministic given it)")
    p.add_argument("--class-names", help="file with one class name a line")
    p.add_argument("--loss", help="override the loss (a Keras loss name)")
    p.add_argument("--optimizer", help="override the optimizer (a Keras optimizer name)")
    p.add_argument("--learning-rate", type=float, help="override the learning rate (replaces a schedule)")
    p.add_argument("--optimizer-state", choices=("keep", "reset"),
                   help="keep the saved optimizer's moments and iteration count, or reset them (default: "
                   "what the Keras that wrote the file does on load_model + fit)")
    p.add_argument("--verbose", action="store_true", help="print the Python traceback of a failure")
    p.add_argument("--tokenizer", help="a legacy keras.preprocessing.text.Tokenizer's to_json() file to "
                   "store with the model, so kerasgo can score raw text (texts_to_matrix)")
    p.add_argument("--tokenizer-mode", default="binary", choices=TOKENIZER_MODES,
                   help="the texts_to_matrix mode the model was trained with")
    p.add_argument("--vectorizer", help="a fitted TextVectorization to store with the model, so kerasgo "
                   "can score raw text: its JSON (as vectorizer_config writes it), or a .keras file "
                   "holding a model whose first layer is the TextVectorization")
    args = p.parse_args(argv)

    try:
        loaded, source = load_source(args)
        model, state, note = loaded.model, loaded.optimizer_state, loaded.note
        mode, why = OPTIMIZER_STATE_DEFAULT.get(loaded.source_format, ("keep", "a model built by the exporter"))
        if args.optimizer_state:
            mode, why = args.optimizer_state, f"--optimizer-state {args.optimizer_state} (the default, {mode}: {why})"
        compiled = getattr(model, "optimizer", None)
        if args.loss or args.optimizer or compiled is None:
            if args.optimizer or compiled is None:
                optimizer = _build_optimizer(args.optimizer or "adam", args.learning_rate)
                state, note = "new", ""
                why = "--optimizer builds a new optimizer" if args.optimizer else "the file holds no optimizer"
            else:
                optimizer = model.optimizer
            model.compile(optimizer=optimizer, loss=_loss_object(args.loss or getattr(model, "loss", None)))
        elif mode == "reset":
            check_optimizer(compiled)
            schedule_of(compiled)
            fresh = type(compiled).from_config(compiled.get_config())
            model.compile(optimizer=fresh, loss=_loss_object(getattr(model, "loss", None)))
            if state in ("restored", "fresh"):
                state, note = "reset", ""
        if state == "fresh" and mode == "keep":
            print(f"export_keras: note: {args.from_file}: the optimizer's state is not kept ({note})",
                  file=sys.stderr)
        names = None
        if args.class_names:
            with open(args.class_names, encoding="utf-8") as f:
                names = [line.strip() for line in f if line.strip()]
        vec = None
        if args.vectorizer:
            if args.vectorizer.endswith(".json"):
                with open(args.vectorizer, encoding="utf-8") as f:
                    vec = json.load(f)
            else:
                holder = keras.saving.load_model(args.vectorizer, compile=False)
                layers = [l for l in holder.layers if isinstance(l, keras.layers.TextVectorization)]
                if not layers:
                    raise ValueError(f"{args.vectorizer} holds no TextVectorization layer")
                vec = vectorizer_config(layers[0])
        tok = None
        if args.tokenizer:
            with open(args.tokenizer, encoding="utf-8") as f:
                tok = f.read()
        meta = export(model, args.out, class_names=names, multi_label=args.multi_label,
                      seed=args.seed, source=source, learning_rate=args.learning_rate, vectorizer=vec,
                      tokenizer=tok, tokenizer_mode=args.tokenizer_mode, source_format=loaded.source_format,
                      optimizer_state=state, optimizer_state_note=note, optimizer_state_mode=mode,
                      optimizer_state_why=why)
    except Exception as e:  # noqa: BLE001 (one line on stderr, never a traceback)
        if args.verbose or os.environ.get("KERASGO_VERBOSE"):
            traceback.print_exc()
        src = (args.from_file or "").rstrip("/")
        print(f"export_keras: {one_line(e, src)}", file=sys.stderr)
        return 1
    print(f"exported {meta['source']} to {args.out}: {meta['input_dim']} features -> "
          f"{len(meta['classes'])} classes ({meta['label_mode']}), {meta['parameters']} parameters, "
          f"loss {meta['loss']['class_name']}, optimizer {meta['optimizer']['class_name']}")
    print(f"  optimizer state {meta['optimizer_state']}: {meta['optimizer_state_why']}"
          + (f" ({meta['optimizer_state_note']})" if meta["optimizer_state_note"] else ""))
    sched = meta["learning_rate_schedule"]
    if sched is not None:
        if sched["replaced_by"] is None:
            print(f"  learning rate: the {sched['class_name']} schedule, at the optimizer's iteration count "
                  "(set_learning_rate or kerasgo train --learning-rate replaces it with a constant)")
        else:
            print(f"  learning rate: the {sched['class_name']} schedule is replaced by the constant "
                  f"{sched['replaced_by']:g} (--learning-rate)")
    return 0


def one_line(err: BaseException, src: str) -> str:
    """What went wrong, on one line naming the source: without the Python
    or TensorFlow traceback text some errors carry ("in user code: File ...")."""
    text = str(err)
    if "in user code" in text or "Traceback" in text:
        lines = [l.strip() for l in text.splitlines() if l.strip()]
        text = lines[-1] if lines else ""
    msg = " ".join(text.split()) or type(err).__name__
    if len(msg) > 400:
        msg = msg[:400] + "..."
    if not isinstance(err, (ValueError, OSError)):
        msg = f"{type(err).__name__}: {msg}"
    if src and src not in msg:
        msg = f"{src}: {msg}"
    return msg


if __name__ == "__main__":
    sys.exit(main())
