#!/usr/bin/env python3
"""Regenerates kerasgo's test models and the golden outputs Keras computes for them.

Reads the real text datasets under testdata/data/ (made by make_dataset.py),
turns them into bag-of-words vectors with Keras' TextVectorization, trains the
question's architecture briefly with Keras, exports it with export_keras.py,
and records what Keras computes, so Go tests compare against Keras, never
against kerasgo itself.

Writes:
  testdata/models/fortunes/         question arch, 20 classes, one label a row (exporter)
  testdata/models/debtags/          question arch, multi-label (exporter)
  testdata/models/fortunes_export/  the fortunes model via plain Keras model.export()
                                    (serving only, no kerasgo metadata)
  testdata/models/fortunes_text/    the fortunes model with its TextVectorization inside,
                                    by plain Keras model.export(): input is strings
  testdata/models/tf1_softmax/      a TF1-style export (tf.compat.v1 SavedModelBuilder,
                                    placeholders, no Keras): logistic regression on
                                    the fortunes features
  testdata/features/<set>/  vocabulary.txt, classes.txt, {train,test}.libsvm, test.csv
  testdata/golden/*.npy, *.npz, golden.json

Usage: python scripts/make_testdata.py [--repo DIR]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_keras  # noqa: E402

INPUT_DIM = 256      # vocabulary size, including Keras' OOV token
EPOCHS = 3
BATCH = 64
SEED = 0
GOLDEN_ROWS = 64     # golden inputs per model
TRAIN_STEPS = 5      # steps of the training-parity golden
TRAIN_BATCH = 32


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def vectorizer(texts):
    layer = keras.layers.TextVectorization(max_tokens=INPUT_DIM, output_mode="multi_hot")
    layer.adapt(tf.constant(texts))
    return layer


def vectorize(layer, texts) -> np.ndarray:
    out = np.asarray(layer(tf.constant(texts)), dtype=np.float32)
    assert out.shape[1] == INPUT_DIM, out.shape
    return out


def write_libsvm(path, x, labels):
    """labels: a list of lists of class indices (one element for single-label)."""
    with open(path, "w", encoding="utf-8") as f:
        for row, lab in zip(x, labels):
            idx = np.nonzero(row)[0]
            feats = " ".join(f"{i}:{row[i]:g}" for i in idx)
            f.write(",".join(str(c) for c in lab) + (" " + feats if feats else "") + "\n")


def write_csv(path, ids, x):
    with open(path, "w", encoding="utf-8") as f:
        f.write("id," + ",".join(f"f{i}" for i in range(x.shape[1])) + "\n")
        for i, row in zip(ids, x):
            f.write(i + "," + ",".join(f"{v:g}" for v in row) + "\n")


def save_npz(path, arrays: dict):
    """np.savez, but with fixed timestamps so reruns are byte-identical."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.save(buf, arrays[name])
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED)


def train_model(x, y, classes, seed):
    model = export_keras.question_model(INPUT_DIM, classes, seed)
    model.fit(x, y, epochs=EPOCHS, batch_size=BATCH, shuffle=True, verbose=0)
    return model


def build_set(repo, name, multi_label):
    data = os.path.join(repo, "testdata", "data", name)
    out = os.path.join(repo, "testdata", "features", name)
    os.makedirs(out, exist_ok=True)
    train = read_jsonl(os.path.join(data, "train.jsonl"))
    test = read_jsonl(os.path.join(data, "test.jsonl"))
    if multi_label:
        classes = sorted({t for r in train + test for t in r["labels"]})
        lab = lambda r: sorted(classes.index(t) for t in r["labels"])  # noqa: E731
    else:
        classes = sorted({r["label"] for r in train + test})
        lab = lambda r: [classes.index(r["label"])]  # noqa: E731

    vec = vectorizer([r["text"] for r in train])
    with open(os.path.join(out, "vocabulary.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vec.get_vocabulary()) + "\n")
    x_train = vectorize(vec, [r["text"] for r in train])
    x_test = vectorize(vec, [r["text"] for r in test])
    y_train = np.zeros((len(train), len(classes)), np.float32)
    for i, r in enumerate(train):
        y_train[i, lab(r)] = 1
    y_test = np.zeros((len(test), len(classes)), np.float32)
    for i, r in enumerate(test):
        y_test[i, lab(r)] = 1
    write_libsvm(os.path.join(out, "train.libsvm"), x_train, [lab(r) for r in train])
    write_libsvm(os.path.join(out, "test.libsvm"), x_test, [lab(r) for r in test])
    write_csv(os.path.join(out, "test.csv"), [r["id"] for r in test], x_test)
    with open(os.path.join(out, "classes.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(classes) + "\n")
    return classes, (x_train, y_train), (x_test, y_test), vec


def tf1_export(repo, index):
    """A SavedModel the TF1 way: a graph, a session and SavedModelBuilder.

    Its weights are random (seeded); what matters is that the C API loads an
    export made without Keras or tf.function, and scores as TF1 did.
    """
    feats = os.path.join(repo, "testdata", "golden", "fortunes_inputs.npy")
    x_gold = np.load(feats)
    out = os.path.join(repo, "testdata", "models", "tf1_softmax")
    shutil.rmtree(out, ignore_errors=True)
    tf1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(SEED)
        x = tf1.placeholder(tf.float32, [None, INPUT_DIM], name="x")
        w = tf1.get_variable("w", [INPUT_DIM, 20], initializer=tf1.random_normal_initializer(stddev=0.05, seed=SEED))
        b = tf1.get_variable("b", [20], initializer=tf1.zeros_initializer())
        probs = tf.nn.softmax(tf.matmul(x, w) + b, name="probs")
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            want = sess.run(probs, {x: x_gold})
            builder = tf1.saved_model.Builder(out)
            sig = tf1.saved_model.predict_signature_def(inputs={"x": x}, outputs={"probs": probs})
            builder.add_meta_graph_and_variables(sess, [tf1.saved_model.SERVING],
                                                 signature_def_map={"serving_default": sig})
            builder.save()
    np.save(os.path.join(repo, "testdata", "golden", "tf1_softmax_probabilities.npy"), want.astype(np.float32))
    index["models"]["tf1_softmax"] = {"model": "models/tf1_softmax", "inputs": "fortunes_inputs.npy",
                                      "probabilities": "tf1_softmax_probabilities.npy", "classes": 20}


def text_model_export(repo, index):
    """The fortunes model with its TextVectorization inside the graph, saved by
    plain Keras model.export(): a SavedModel whose input is strings."""
    data = os.path.join(repo, "testdata", "data", "fortunes")
    train = read_jsonl(os.path.join(data, "train.jsonl"))
    test = read_jsonl(os.path.join(data, "test.jsonl"))
    vec = vectorizer([r["text"] for r in train])
    trained = tf.saved_model.load(os.path.join(repo, "testdata", "models", "fortunes"))
    weights = trained.signatures["get_weights"]()
    dense = export_keras.question_model(INPUT_DIM, 20, SEED)
    for v in dense.variables:
        v.assign(weights[export_keras.weight_key(v)])
    inputs = keras.Input(shape=(1,), dtype="string", name="text")
    model = keras.Model(inputs, dense(vec(keras.ops.squeeze(inputs, axis=1))), name="fortunes_text")
    out = os.path.join(repo, "testdata", "models", "fortunes_text")
    shutil.rmtree(out, ignore_errors=True)
    model.export(out, format="tf_saved_model", verbose=False)
    texts = np.array([[r["text"]] for r in test[:GOLDEN_ROWS]], dtype=object)
    probs = np.asarray(model.predict(tf.constant(texts), verbose=0), dtype=np.float32)
    golden = os.path.join(repo, "testdata", "golden")
    with open(os.path.join(golden, "fortunes_text_inputs.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(r["text"] for r in test[:GOLDEN_ROWS]) + "\n")
    np.save(os.path.join(golden, "fortunes_text_probabilities.npy"), probs)
    index["text_models"] = {"fortunes_text": {"model": "models/fortunes_text", "texts": "fortunes_text_inputs.txt",
                                              "probabilities": "fortunes_text_probabilities.npy"}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = p.parse_args(argv)
    repo = args.repo
    models = os.path.join(repo, "testdata", "models")
    golden = os.path.join(repo, "testdata", "golden")
    os.makedirs(models, exist_ok=True)
    os.makedirs(golden, exist_ok=True)
    tf.config.experimental.enable_op_determinism()
    index = {"tensorflow_version": tf.__version__, "keras_version": keras.__version__, "models": {}}

    for name, multi in (("fortunes", False), ("debtags", True)):
        keras.utils.set_random_seed(SEED)
        classes, (x_train, y_train), (x_test, y_test), vec = build_set(repo, name, multi)
        model = train_model(x_train, y_train, len(classes), SEED)
        export_keras.export(model, os.path.join(models, name), class_names=classes,
                            multi_label=multi, seed=SEED, source=f"testdata:{name}",
                            vectorizer=export_keras.vectorizer_config(vec))

        x_gold = x_test[:GOLDEN_ROWS]
        probs = model.predict(x_gold, batch_size=GOLDEN_ROWS, verbose=0).astype(np.float32)
        np.save(os.path.join(golden, f"{name}_inputs.npy"), x_gold)
        np.save(os.path.join(golden, f"{name}_probabilities.npy"), probs)
        entry = {"model": f"models/{name}", "inputs": f"{name}_inputs.npy",
                 "probabilities": f"{name}_probabilities.npy", "classes": len(classes),
                 "train_rows": int(len(x_train)), "test_rows": int(len(x_test))}

        if name == "fortunes":
            # The same trained weights as the exporter's model, saved by Keras' own
            # model.export(): no kerasgo metadata, no training signatures.
            plain = os.path.join(models, "fortunes_export")
            shutil.rmtree(plain, ignore_errors=True)
            restored = export_keras.question_model(INPUT_DIM, len(classes), SEED)
            restored.set_weights(model.get_weights())
            restored.export(plain, format="tf_saved_model", verbose=False)
            probs_plain = restored.predict(x_gold, batch_size=GOLDEN_ROWS, verbose=0).astype(np.float32)
            np.save(os.path.join(golden, "fortunes_export_probabilities.npy"), probs_plain)
            index["models"]["fortunes_export"] = {
                "model": "models/fortunes_export", "inputs": "fortunes_inputs.npy",
                "probabilities": "fortunes_export_probabilities.npy", "classes": len(classes)}

        # Training parity: TRAIN_STEPS Keras steps from the exported state.
        xb = x_train[: TRAIN_STEPS * TRAIN_BATCH]
        yb = y_train[: TRAIN_STEPS * TRAIN_BATCH]
        losses = []
        for s in range(TRAIN_STEPS):
            sl = slice(s * TRAIN_BATCH, (s + 1) * TRAIN_BATCH)
            losses.append(float(model.train_on_batch(xb[sl], yb[sl])))
        np.save(os.path.join(golden, f"{name}_train_x.npy"), xb)
        np.save(os.path.join(golden, f"{name}_train_y.npy"), yb)
        np.save(os.path.join(golden, f"{name}_train_losses.npy"), np.asarray(losses, np.float32))
        save_npz(os.path.join(golden, f"{name}_train_weights.npz"),
                 {export_keras.weight_key(v): np.asarray(v.value) for v in model.variables})
        entry.update({"train_x": f"{name}_train_x.npy", "train_y": f"{name}_train_y.npy",
                      "train_losses": f"{name}_train_losses.npy",
                      "train_weights": f"{name}_train_weights.npz",
                      "train_steps": TRAIN_STEPS, "train_batch": TRAIN_BATCH})
        index["models"][name] = entry

    tf1_export(repo, index)
    text_model_export(repo, index)
    with open(os.path.join(golden, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(index['models'])} models and their golden outputs under {repo}/testdata")
    return 0


if __name__ == "__main__":
    sys.exit(main())
