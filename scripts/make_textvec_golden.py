#!/usr/bin/env python3
"""Writes the golden Keras TextVectorization outputs the Go textvec package is checked against.

It adapts keras.layers.TextVectorization(max_tokens=300,
standardize="lower_and_strip_punctuation", split="whitespace") on the texts of
testdata/data/fortunes/train.jsonl for six configurations (output_mode
multi_hot, count and tf_idf, each with ngrams None and 2), and runs every
fitted layer on a corpus made of

  1. the texts of testdata/data/fortunes/train.jsonl, then test.jsonl
     (read by the Go test from there, not copied);
  2. the documents of testdata/textvec/extra.jsonl.gz (written here): Python
     standard library docstrings, paragraphs of /usr/share/common-licenses/*,
     the non-ASCII lines of /usr/share/i18n/locales/*, paragraphs of the
     package METADATA files of the Python environment, and hand-written edge
     cases (empty strings, Unicode whitespace and case, emoji, ASCII control
     bytes, invalid UTF-8). Each line is {"text": str} or, for byte strings
     that are not valid UTF-8, {"hex": str}.

For each configuration NAME it writes
  testdata/textvec/NAME.json  the layer's settings, vocabulary
                              (layer.get_vocabulary(), "[UNK]" first) and,
                              for tf_idf, the idf weights the layer multiplies
                              by at call time (layer._lookup_layer.idf_weights,
                              float32, the OOV entry first)
  testdata/textvec/NAME.npz   the layer's outputs on the corpus as CSR arrays:
                              indptr (int32), indices (int16), values (float32)
and a summary (document counts, Keras docs/s) in testdata/textvec/summary.json.

Usage: python scripts/make_textvec_golden.py [--repo DIR] [--extra N]
"""

from __future__ import annotations

import argparse
import gzip
import inspect
import json
import os
import pathlib
import random
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

MAX_TOKENS = 300
MAX_DOC_CHARS = 1200
CONFIGS = [
    ("multi_hot_1", "multi_hot", None),
    ("multi_hot_2", "multi_hot", 2),
    ("count_1", "count", None),
    ("count_2", "count", 2),
    ("tf_idf_1", "tf_idf", None),
    ("tf_idf_2", "tf_idf", 2),
]

EDGE_CASES = [
    "",
    "   ",
    "\t\n\r\x0b\x0c ",
    "ÉCOLE École école",
    "a.b,c!d",
    "tab\tsep",
    "nbsp\u00a0sep",
    "em\u2003space ideographic\u3000space nel\u0085x",
    "ctrl\x1cfs\x1dgs\x1ers\x1fus",
    "emoji 🙂 x",
    "İstanbul ΣΑΣ straße",
    "THE The the tHe",
    "[UNK] [unk] unk",
    "...,,,!!!",
    "a - b -- c --- d",
    "don't can't won't",
    "“curly quotes” — em dash – en dash … ellipsis",
    "ＦＵＬＬＷＩＤＴＨ　ｔｅｘｔ",
    "the the the the the the the the the the",
    "of the of the in the in the",
    "NUL\x00byte the",
    "\\back\\slash/ and/or <tag> {brace} [bracket] (paren) $5 100% #1 @you ^caret_ `tick` ~tilde |pipe",
]

# Byte strings that are not valid UTF-8: TF works on bytes.
EDGE_BYTES = [
    b"a\xffb.c THE",
    b"\xc3(\xa9 caf\xc3\xa9 CAF\xc3\x89",
    b"the \x80\x81 of",
]


def read_jsonl_texts(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def paragraphs(text):
    out = []
    for p in text.split("\n\n"):
        p = p.strip("\n")
        if p.strip():
            out.append(p[:MAX_DOC_CHARS])
    return out


def stdlib_docstrings():
    names = sorted(
        m for m in sys.stdlib_module_names
        if not m.startswith("_") and m not in {"antigravity", "this", "idlelib", "turtledemo", "tkinter", "turtle"}
    )
    docs = []
    warnings.simplefilter("ignore")  # deprecated modules
    for name in names:
        try:
            mod = __import__(name)
        except Exception:  # noqa: BLE001 - platform-specific modules
            continue
        objs = [mod] + [getattr(mod, a, None) for a in sorted(dir(mod)) if not a.startswith("_")]
        for obj in objs:
            d = getattr(obj, "__doc__", None)
            if isinstance(d, str) and (inspect.ismodule(obj) or inspect.isroutine(obj) or inspect.isclass(obj)):
                docs.extend(paragraphs(d))
    return docs


def file_paragraphs(paths):
    docs = []
    for p in paths:
        try:
            docs.extend(paragraphs(p.read_text(encoding="utf-8", errors="strict")))
        except (UnicodeDecodeError, OSError, IsADirectoryError):
            continue
    return docs


def locale_lines():
    root = pathlib.Path("/usr/share/i18n/locales")
    out = []
    for p in sorted(root.glob("*")):
        try:
            for line in p.read_text(encoding="utf-8").splitlines():
                if any(ord(c) > 127 for c in line):
                    out.append(line.lstrip("% ")[:MAX_DOC_CHARS])
        except (UnicodeDecodeError, OSError):
            continue
    return out


def sample(rng, docs, n):
    docs = sorted(set(docs))
    rng.shuffle(docs)
    return docs[:n]


def extra_documents(n):
    rng = random.Random(20240601)
    site = pathlib.Path(keras.__file__).resolve().parents[1]
    sources = [
        ("stdlib", stdlib_docstrings(), 0.35),
        ("licenses", file_paragraphs(sorted(pathlib.Path("/usr/share/common-licenses").glob("*"))), 0.2),
        ("locales", locale_lines(), 0.3),
        ("metadata", file_paragraphs(sorted(site.glob("*.dist-info/METADATA"))), 0.15),
    ]
    docs = []
    for name, found, share in sources:
        picked = sample(rng, found, int(n * share))
        print(f"{name}: {len(found)} documents, {len(picked)} used", file=sys.stderr)
        docs.extend(picked)
    # Some documents with the blank lines and line structure kept intact.
    docs.extend("\n\n" + d.upper() + "\n\n\n" for d in docs[:: max(1, len(docs) // 50)])
    return [d.encode("utf-8") for d in EDGE_CASES + docs] + EDGE_BYTES


def layer_config(layer, name, mode, ngrams):
    vocab = layer.get_vocabulary()
    cfg = {
        "name": name,
        "keras_version": keras.__version__,
        "tensorflow_version": tf.__version__,
        "max_tokens": MAX_TOKENS,
        "standardize": layer.get_config()["standardize"],
        "split": layer.get_config()["split"],
        "ngrams": ngrams,
        "output_mode": mode,
        "vocabulary": vocab,
    }
    if mode == "tf_idf":
        idf = np.asarray(layer._lookup_layer.idf_weights.numpy(), dtype=np.float32)
        assert idf.shape == (len(vocab),), idf.shape
        cfg["idf"] = [float(v) for v in idf]
    return cfg


def to_csr(dense):
    dense = np.asarray(dense, dtype=np.float32)
    rows, cols = np.nonzero(dense)
    indptr = np.zeros(dense.shape[0] + 1, dtype=np.int32)
    np.add.at(indptr, rows + 1, 1)
    indptr = np.cumsum(indptr).astype(np.int32)
    assert dense.shape[1] < 2**15
    return indptr, cols.astype(np.int16), dense[rows, cols]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", default=str(pathlib.Path(__file__).resolve().parents[1]))
    ap.add_argument("--extra", type=int, default=2600, help="documents from the machine's text sources")
    args = ap.parse_args()
    repo = pathlib.Path(args.repo)
    out = repo / "testdata" / "textvec"
    out.mkdir(parents=True, exist_ok=True)

    fort = repo / "testdata" / "data" / "fortunes"
    train = read_jsonl_texts(fort / "train.jsonl")
    test = read_jsonl_texts(fort / "test.jsonl")
    extra = extra_documents(args.extra)
    with gzip.GzipFile(out / "extra.jsonl.gz", "wb", mtime=0) as f:
        for b in extra:
            try:
                rec = {"text": b.decode("utf-8")}
            except UnicodeDecodeError:
                rec = {"hex": b.hex()}
            f.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
    corpus = [t.encode("utf-8") for t in train + test] + extra
    inputs = tf.constant(corpus, dtype=tf.string)

    summary = {"train": len(train), "test": len(test), "extra": len(extra), "configs": {}}
    for name, mode, ngrams in CONFIGS:
        layer = keras.layers.TextVectorization(
            max_tokens=MAX_TOKENS,
            standardize="lower_and_strip_punctuation",
            split="whitespace",
            ngrams=ngrams,
            output_mode=mode,
        )
        layer.adapt(train)
        layer(inputs[:8])  # warm up
        t0 = time.perf_counter()
        got = np.asarray(layer(inputs))
        secs = time.perf_counter() - t0
        assert got.shape == (len(corpus), len(layer.get_vocabulary())), got.shape
        indptr, indices, values = to_csr(got)
        np.savez_compressed(out / f"{name}.npz", indptr=indptr, indices=indices, values=values)
        with open(out / f"{name}.json", "w", encoding="utf-8") as f:
            json.dump(layer_config(layer, name, mode, ngrams), f, ensure_ascii=False, indent=1)
            f.write("\n")
        summary["configs"][name] = {
            "vocabulary": len(layer.get_vocabulary()),
            "nonzeros": int(indptr[-1]),
            "keras_docs_per_second": round(len(corpus) / secs),
        }
        print(name, summary["configs"][name], file=sys.stderr)
    with open(out / "summary.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
