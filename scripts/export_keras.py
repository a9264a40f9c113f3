#!/usr/bin/env python3
"""Export a Keras model as a SavedModel that kerasgo can predict with and train from Go.

Two sources:

  --arch question --input-dim D --classes C [--multi-label]
      builds the model of the question kerasgo started from:
      Input(D) -> Dense(500, relu) -> Dense(250, relu) -> Dense(C, sigmoid),
      binary cross-entropy, Adam.
  --from FILE.keras|FILE.h5
      ports an existing Keras model, keeping its compiled loss and optimizer
      when it has them (--loss/--optimizer/--learning-rate override).

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
                     dense batch would be ~99% zeros

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
import json
import os
import shutil
import sys
import tempfile

from tfquiet import quiet_startup  # noqa: E402  (beside this file; kerasgo export writes both)

with quiet_startup():
    import numpy as np
    import tensorflow as tf
    import keras

METADATA_FILE = "kerasgo.json"
METADATA_FORMAT = "kerasgo.export/v1"
LABEL_MODES = ("onehot", "sparse", "multilabel")


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

    def __init__(self, model: keras.Model, loss: keras.losses.Loss, label_mode: str):
        super().__init__(name="kerasgo")
        object.__setattr__(self, "_keras", (model, model.optimizer, loss))
        self.model_variables = [_backing(v) for v in model.variables]
        self.optimizer_variables = [_backing(v) for v in model.optimizer.variables]
        dim = int(model.inputs[0].shape[-1])
        classes = int(model.outputs[0].shape[-1])
        features = tf.TensorSpec([None, dim], tf.float32, name="features")
        if label_mode == "sparse":
            labels = tf.TensorSpec([None], tf.int64, name="labels")
        else:
            labels = tf.TensorSpec([None, classes], tf.float32, name="labels")
        weights = tf.TensorSpec([None], tf.float32, name="sample_weight")
        rate = tf.TensorSpec([], tf.float32, name="learning_rate")
        sparse = [tf.TensorSpec([None, 2], tf.int64, name="indices"),
                  tf.TensorSpec([None], tf.float32, name="values"),
                  tf.TensorSpec([2], tf.int64, name="dense_shape")]
        self.serve = tf.function(self._serve, input_signature=[features])
        self.train = tf.function(self._train, input_signature=[features, labels, weights])
        self.evaluate = tf.function(self._evaluate, input_signature=[features, labels, weights])
        self.serve_sparse = tf.function(
            lambda i, v, s: self._serve(tf.SparseTensor(i, v, s)), input_signature=sparse)
        self.train_sparse = tf.function(
            lambda i, v, s, y, w: self._train(tf.SparseTensor(i, v, s), y, w),
            input_signature=sparse + [labels, weights])
        self.evaluate_sparse = tf.function(
            lambda i, v, s, y, w: self._evaluate(tf.SparseTensor(i, v, s), y, w),
            input_signature=sparse + [labels, weights])
        self.set_rate = tf.function(self._set_rate, input_signature=[rate])
        self.weights = tf.function(self._weights, input_signature=[])

    def _serve(self, features):
        model = self._keras[0]
        return {"probabilities": model(features, training=False)}

    def _loss(self, labels, probabilities, sample_weight, training):
        model, _, loss = self._keras
        value = loss(labels, probabilities, sample_weight=sample_weight)
        if training and model.losses:
            value = value + tf.add_n(model.losses)
        return value

    def _train(self, features, labels, sample_weight):
        model, optimizer, _ = self._keras
        with tf.GradientTape() as tape:
            probabilities = model(features, training=True)
            loss = self._loss(labels, probabilities, sample_weight, training=True)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return {"loss": loss, "probabilities": probabilities}

    def _evaluate(self, features, labels, sample_weight):
        model = self._keras[0]
        probabilities = model(features, training=False)
        loss = self._loss(labels, probabilities, sample_weight, training=False)
        return {"loss": loss, "probabilities": probabilities}

    def _set_rate(self, learning_rate):
        optimizer = self._keras[1]
        optimizer.learning_rate.assign(learning_rate)
        return {"learning_rate": tf.identity(optimizer.learning_rate)}


    def _weights(self):
        model = self._keras[0]
        return {weight_key(v): tf.identity(v.value) for v in model.variables}


def weight_key(variable) -> str:
    """The get_weights output key of a Keras variable."""
    return variable.path.replace("/", "__")


def _backing(variable):
    """Returns the tf.Variable behind a Keras 3 variable."""
    inner = getattr(variable, "_value", None)
    return inner if isinstance(inner, tf.Variable) else variable


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
           tokenizer=None, tokenizer_mode="binary") -> dict:
    """Writes model to out as a SavedModel with kerasgo's signatures and metadata.

    The directory is written beside out and renamed into place, so an existing
    model at out is replaced whole or not at all. Returns the metadata.
    """
    _check_exportable(model)
    if model.optimizer is None:
        raise ValueError("model has no optimizer; compile it or pass --optimizer")
    loss = _loss_object(model.loss)
    mode = _label_mode(loss, multi_label)
    optimizer = model.optimizer
    optimizer.build(model.trainable_variables)
    if learning_rate is not None:
        optimizer.learning_rate.assign(learning_rate)
    dim = int(model.inputs[0].shape[-1])
    classes = int(model.outputs[0].shape[-1])
    if class_names is None:
        class_names = [f"class_{i}" for i in range(classes)]
    if len(class_names) != classes:
        raise ValueError(f"{len(class_names)} class names for {classes} outputs")

    module = _TrainableModule(model, loss, mode)
    meta = {
        "format": METADATA_FORMAT,
        "source": source,
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
        "optimizer": {"class_name": type(optimizer).__name__, "config": _jsonable(optimizer.get_config())},
        "signatures": {
            "predict": "serving_default",
            "train": "train_step",
            "evaluate": "evaluate_step",
            "set_learning_rate": "set_learning_rate",
            "weights": "get_weights",
            "predict_sparse": "predict_sparse",
            "train_sparse": "train_step_sparse",
            "evaluate_sparse": "evaluate_step_sparse",
        },
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
        signatures = {
            "serving_default": module.serve.get_concrete_function(),
            "train_step": module.train.get_concrete_function(),
            "evaluate_step": module.evaluate.get_concrete_function(),
            "set_learning_rate": module.set_rate.get_concrete_function(),
            "get_weights": module.weights.get_concrete_function(),
            "predict_sparse": module.serve_sparse.get_concrete_function(),
            "train_step_sparse": module.train_sparse.get_concrete_function(),
            "evaluate_step_sparse": module.evaluate_sparse.get_concrete_function(),
        }
        target = os.path.join(tmp, "model")
        tf.saved_model.save(module, target, signatures=signatures)
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


def load_source(args) -> tuple[keras.Model, str]:
    """Builds or loads the Keras model the command line asks for."""
    if args.arch:
        if args.arch != "question":
            raise ValueError(f"unknown --arch {args.arch!r} (want: question)")
        if not args.input_dim or not args.classes:
            raise ValueError("--arch question needs --input-dim and --classes")
        return question_model(args.input_dim, args.classes, args.seed), "arch:question"
    keras.utils.set_random_seed(args.seed)
    model = keras.saving.load_model(args.from_file, compile=True)
    if args.from_file.endswith((".h5", ".hdf5")) and model.optimizer is not None:
        # Keras 3 reads a legacy .h5 optimizer's config but binds it to other
        # variables; start it afresh from that config (its moments are not kept).
        fresh = type(model.optimizer).from_config(model.optimizer.get_config())
        model.compile(optimizer=fresh, loss=model.loss)
    return model, f"file:{os.path.basename(args.from_file)}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--arch", help="build a known architecture: question")
    src.add_argument("--from", dest="from_file", help="a .keras or legacy .h5 model file")
    p.add_argument("--input-dim", type=int, help="features per row (with --arch)")
    p.add_argument("--classes", type=int, help="number of output classes (with --arch)")
    p.add_argument("--multi-label", action="store_true", help="labels are multi-hot (several classes per row)")
    p.add_argument("--out", required=True, help="directory to write the SavedModel to")
    p.add_argument("--seed", type=int, default=0, help="random seed (weights are deterministic given it)")
    p.add_argument("--class-names", help="file with one class name a line")
    p.add_argument("--loss", help="override the loss (a Keras loss name)")
    p.add_argument("--optimizer", help="override the optimizer (a Keras optimizer name)")
    p.add_argument("--learning-rate", type=float, help="override the learning rate")
    p.add_argument("--tokenizer", help="a legacy keras.preprocessing.text.Tokenizer's to_json() file to "
                   "store with the model, so kerasgo can score raw text (texts_to_matrix)")
    p.add_argument("--tokenizer-mode", default="binary", choices=TOKENIZER_MODES,
                   help="the texts_to_matrix mode the model was trained with")
    p.add_argument("--vectorizer", help="a fitted TextVectorization to store with the model, so kerasgo "
                   "can score raw text: its JSON (as vectorizer_config writes it), or a .keras file "
                   "holding a model whose first layer is the TextVectorization")
    args = p.parse_args(argv)

    try:
        model, source = load_source(args)
        if args.loss or args.optimizer or model.optimizer is None:
            optimizer = _build_optimizer(args.optimizer or "adam", args.learning_rate) \
                if (args.optimizer or model.optimizer is None) else model.optimizer
            model.compile(optimizer=optimizer, loss=_loss_object(args.loss or model.loss))
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
                      tokenizer=tok, tokenizer_mode=args.tokenizer_mode)
    except (ValueError, OSError) as e:
        print(f"export_keras: {e}", file=sys.stderr)
        return 1
    print(f"exported {meta['source']} to {args.out}: {meta['input_dim']} features -> "
          f"{len(meta['classes'])} classes ({meta['label_mode']}), {meta['parameters']} parameters, "
          f"loss {meta['loss']['class_name']}, optimizer {meta['optimizer']['class_name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
