#!/usr/bin/env python3
"""Records what Keras' model.fit learns on the test data, for kerasgo train to match.

For each data set (fortunes: 20 classes, one label a row; debtags: 11 tags,
multi-label) it builds the question's architecture exactly as
`kerasgo export --arch question --seed 0` does (export_keras.question_model),
evaluates it untrained on the test file, then trains a fresh copy with
`model.fit(shuffle=True)` once per shuffle seed, and once with
`shuffle=False` (file order), and records the validation loss and accuracy
after the last epoch. Both training files are grouped by label, as files
exported per class are, which is what makes shuffling matter.

The Go test (internal/cli/learning_test.go) exports the same untrained model,
checks that it starts from the same validation loss, trains it with kerasgo
train and compares the spread of outcomes with Keras'.

Writes testdata/golden/fit.json.

Usage: python scripts/make_fit_golden.py [--repo DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tfquiet import quiet_startup  # noqa: E402

with quiet_startup():
    import keras
    import numpy as np
    from sklearn.datasets import load_svmlight_file
    from sklearn.metrics import accuracy_score, f1_score

    import export_keras

INPUT_DIM = 256
EPOCHS = 3
BATCH = 64
INIT_SEED = 0
SHUFFLE_SEEDS = [1, 2, 3, 4, 5, 6, 7, 8]
SETS = {"fortunes": False, "debtags": True}


def load(path, classes, multi):
    x, y = load_svmlight_file(path, n_features=INPUT_DIM, multilabel=multi, zero_based=True)
    x = x.toarray().astype(np.float32)
    t = np.zeros((x.shape[0], classes), dtype=np.float32)
    for i, labels in enumerate(y):
        for c in (labels if multi else [labels]):
            t[i, int(c)] = 1
    return x, t


def outcome(model, x, t, multi):
    p = model.predict(x, batch_size=512, verbose=0)
    loss = float(keras.losses.BinaryCrossentropy()(t, p))
    out = {"val_loss": loss}
    if multi:
        pred = (p > 0.5).astype(int)
        out["val_subset_accuracy"] = float(accuracy_score(t.astype(int), pred))
        out["val_micro_f1"] = float(f1_score(t.astype(int), pred, average="micro", zero_division=0))
    else:
        out["val_top1"] = float(accuracy_score(t.argmax(1), p.argmax(1)))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = ap.parse_args(argv)
    golden = {"epochs": EPOCHS, "batch_size": BATCH, "init_seed": INIT_SEED, "keras": keras.__version__, "sets": {}}
    for name, multi in SETS.items():
        feats = os.path.join(args.repo, "testdata", "features", name)
        with open(os.path.join(feats, "classes.txt"), encoding="utf-8") as f:
            classes = len(f.read().splitlines())
        x, t = load(os.path.join(feats, "train.libsvm"), classes, multi)
        xv, tv = load(os.path.join(feats, "test.libsvm"), classes, multi)
        start = outcome(export_keras.question_model(INPUT_DIM, classes, INIT_SEED), xv, tv, multi)
        runs = []
        for seed in SHUFFLE_SEEDS:
            model = export_keras.question_model(INPUT_DIM, classes, INIT_SEED)
            keras.utils.set_random_seed(seed)
            model.fit(x, t, batch_size=BATCH, epochs=EPOCHS, shuffle=True, verbose=0)
            runs.append({"seed": seed, **outcome(model, xv, tv, multi)})
            print(name, runs[-1], flush=True)
        model = export_keras.question_model(INPUT_DIM, classes, INIT_SEED)
        model.fit(x, t, batch_size=BATCH, epochs=EPOCHS, shuffle=False, verbose=0)
        file_order = outcome(model, xv, tv, multi)
        print(name, "file order", file_order, flush=True)
        golden["sets"][name] = {
            "multi_label": multi, "classes": classes, "train_rows": int(x.shape[0]), "val_rows": int(xv.shape[0]),
            "start": start, "shuffled": runs, "file_order": file_order,
        }
    out = os.path.join(args.repo, "testdata", "golden", "fit.json")
    with open(out, "w", encoding="utf-8") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
