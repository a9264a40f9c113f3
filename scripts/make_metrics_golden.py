#!/usr/bin/env python3
"""Writes the golden evaluation metrics the Go metrics package is checked against.

For each test model (fortunes: one label a row; debtags: multi-label) it reads
the Keras probabilities of the first 64 test rows (testdata/golden/<set>_probabilities.npy)
and the labels of the first 64 lines of testdata/features/<set>/test.libsvm, and
computes every number of a evaluation.Report with scikit-learn, numpy and Keras:

  binary_accuracy         numpy mean of (p > threshold) == y, checked against
                          keras.metrics.BinaryAccuracy (Keras compares strictly)
  top1_accuracy           sklearn accuracy_score on argmax (single-label)
  subset_accuracy         sklearn accuracy_score on thresholded sets (multi-label)
  hamming_loss, micro_f1  sklearn (multi-label)
  per_class, macro_f1     sklearn precision_recall_fscore_support / f1_score,
                          zero_division=0; macro F1 over the classes present in
                          the targets or the predictions
  confusion               sklearn confusion_matrix (single-label)
  predicted_counts        sklearn multilabel_confusion_matrix / confusion_matrix column sums
  loss, prior_loss        keras.losses.BinaryCrossentropy (the models' loss) on
                          the probabilities, and on every row predicting the
                          class frequencies

Writes testdata/golden/metrics_<set>.json:
  {"inputs": {...how to feed the Go Accumulator...}, "want": {...the Report...}}

Usage: python scripts/make_metrics_golden.py [--repo DIR]
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import keras  # noqa: E402
import sklearn  # noqa: E402
from sklearn import metrics as skm  # noqa: E402

ROWS = 64
BATCHES = (32, 32)
THRESHOLD = 0.5
LOSS = "BinaryCrossentropy"  # both test models are compiled with it (export_keras.question_model)
MOST_CONFUSED = 10


def read_labels(path, rows):
    """The first field of each libsvm line: comma-separated class indices."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if len(out) == rows:
                break
            first = line.split(" ", 1)[0].strip()
            out.append([int(v) for v in first.split(",")] if first else [])
    return out


def keras_loss(name, y, p):
    loss = keras.losses.get({"class_name": name, "config": {}})
    return float(np.asarray(loss(y.astype(np.float32), p.astype(np.float32))))


def most_confused(cm, classes):
    cells = [(-int(cm[t, p]), t, p) for t in range(len(classes)) for p in range(len(classes))
             if t != p and cm[t, p] > 0]
    cells.sort()
    return [{"true": classes[t], "predicted": classes[p], "count": -n} for n, t, p in cells[:MOST_CONFUSED]]


def golden(repo, name, multi_label):
    feats = os.path.join(repo, "testdata", "features", name)
    with open(os.path.join(feats, "classes.txt"), encoding="utf-8") as f:
        classes = [line.rstrip("\n") for line in f if line.strip()]
    c = len(classes)
    probs = np.load(os.path.join(repo, "testdata", "golden", f"{name}_probabilities.npy"))
    assert probs.shape == (ROWS, c), probs.shape
    labels = read_labels(os.path.join(feats, "test.libsvm"), ROWS)
    y = np.zeros((ROWS, c), np.float32)
    for i, lab in enumerate(labels):
        y[i, lab] = 1

    pred = (probs > THRESHOLD).astype(np.float32)
    binary_accuracy = float(np.mean(pred == y))
    keras_binary = keras.metrics.BinaryAccuracy(threshold=THRESHOLD)
    keras_binary.update_state(y, probs)
    assert abs(binary_accuracy - float(keras_binary.result())) < 1e-6, (binary_accuracy, keras_binary.result())

    batch_losses, start = [], 0
    for n in BATCHES:
        batch_losses.append(keras_loss(LOSS, y[start:start + n], probs[start:start + n]))
        start += n

    counts = y.sum(axis=0).astype(int)
    prior = np.tile(counts / ROWS, (ROWS, 1))
    nonzero = counts[counts > 0]
    want = {
        "rows": ROWS,
        "classes": classes,
        "multi_label": multi_label,
        "loss_name": LOSS,
        "loss": keras_loss(LOSS, y, probs),
        "threshold": THRESHOLD,
        "binary_accuracy": binary_accuracy,
    }
    if multi_label:
        y_true, y_pred = y.astype(int), pred.astype(int)
        present = [j for j in range(c) if y_true[:, j].any() or y_pred[:, j].any()]
        want.update({
            "subset_accuracy": float(skm.accuracy_score(y_true, y_pred)),
            "hamming_loss": float(skm.hamming_loss(y_true, y_pred)),
            "micro_f1": float(skm.f1_score(y_true, y_pred, average="micro", zero_division=0)),
        })
        empty = {"empty_set_accuracy": float(np.mean(y.sum(axis=1) == 0))}
    else:
        y_true, y_pred = y.argmax(axis=1), probs.argmax(axis=1)  # numpy: first index on ties
        present = sorted(set(y_true) | set(y_pred))
        cm = skm.confusion_matrix(y_true, y_pred, labels=list(range(c)))
        want.update({
            "top1_accuracy": float(skm.accuracy_score(y_true, y_pred)),
            "confusion": cm.tolist(),
            "most_confused": most_confused(cm, classes),
        })
        empty = {"majority_accuracy": float(counts.max() / ROWS)}
    # Rows predicted as each class: predicted-positive counts of scikit-learn's
    # per-class confusion matrices (the confusion matrix's column sums for
    # single-label data).
    want["predicted_counts"] = skm.multilabel_confusion_matrix(
        y_true, y_pred, labels=list(range(c)))[:, :, 1].sum(axis=1).astype(int).tolist() if multi_label \
        else cm.sum(axis=0).astype(int).tolist()
    prec, rec, f1, sup = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=list(range(c)), zero_division=0)
    want["macro_f1"] = float(skm.f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))
    want["per_class"] = [{"name": classes[j], "precision": float(prec[j]), "recall": float(rec[j]),
                          "f1": float(f1[j]), "support": int(sup[j])} for j in range(c)]
    want["baselines"] = {
        "majority_class": classes[int(np.argmax(counts))],
        **empty,
        "all_zeros_binary_accuracy": float(np.mean((np.zeros_like(probs) > THRESHOLD) == y)),
        "prior_loss": keras_loss(LOSS, y, prior),
        "class_counts": counts.tolist(),
        "imbalance_ratio": float(nonzero.max() / nonzero.min()),
    }
    inputs = {
        "probabilities": f"{name}_probabilities.npy",
        "labels": f"features/{name}/test.libsvm",
        "rows": ROWS,
        "batches": list(BATCHES),
        "batch_losses": batch_losses,
        "loss": LOSS,
        "threshold": THRESHOLD,
        "multi_label": multi_label,
        "keras_version": keras.__version__,
        "sklearn_version": sklearn.__version__,
    }
    if not multi_label:
        # The categorical prior loss (entropy of the class distribution), for a
        # second Accumulator run with Loss "CategoricalCrossentropy".
        inputs["prior_loss_categorical"] = keras_loss("CategoricalCrossentropy", y, prior)
    return {"inputs": inputs, "want": want}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = p.parse_args(argv)
    for name, multi in (("fortunes", False), ("debtags", True)):
        out = os.path.join(args.repo, "testdata", "golden", f"metrics_{name}.json")
        with open(out, "w", encoding="utf-8") as f:
            json.dump(golden(args.repo, name, multi), f, indent=1)
            f.write("\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
