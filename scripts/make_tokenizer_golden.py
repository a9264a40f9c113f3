#!/usr/bin/env python3
"""Writes the golden legacy Keras Tokenizer outputs textvec.Tokenizer is checked against.

It fits tf_keras.preprocessing.text.Tokenizer (Keras 2) on every FIT_STRIDE-th
text of testdata/data/fortunes/train.jsonl (a fifth, all labels, to keep the
to_json() dumps small) in the configurations of CONFIGS, and runs
texts_to_matrix in the four modes (binary, count, freq, tfidf) of every
fitted tokenizer on a corpus made of

  1. the texts of testdata/data/fortunes/test.jsonl (read by the Go test from
     there, not copied);
  2. the {"text": str} documents of testdata/textvec/extra.jsonl.gz (Python
     docstrings, license paragraphs, non-ASCII locale lines, edge cases; the
     {"hex": ...} records, byte strings that are not valid UTF-8, are skipped:
     they are not Python str);
  3. the edge cases of EDGE.

For each configuration NAME it writes
  testdata/tokenizer/NAME.tokenizer.json.gz  tokenizer.to_json(), verbatim
  testdata/tokenizer/NAME.rows.json.gz       the texts_to_matrix outputs:
      "rows": [[indices, counts], ...], one entry per document, the non-zero
      columns of the count matrix ascending and the counts there;
      "tfidf": [[j, c, value], ...], the value of the tfidf matrix at every
      non-zero (row, j) whose count is c (it depends on nothing else);
      "freq": [[c, n, value], ...], the value of the freq matrix at every
      non-zero whose count is c in a row whose counts sum to n.
      Floats are Python repr (exact). The script checks that the binary
      matrix is 1.0 exactly where the count matrix is non-zero, that freq and
      tfidf are non-zero only there, and that the tables are functions of
      their keys, so the file holds every entry of the four Keras matrices.
and
  testdata/tokenizer/lower.json.gz  Python's str.lower() tables: "lower",
      [code point, chr(cp).lower()] for every code point it changes; "cased"
      and "ignorable", the code points the Final_Sigma rule of str.lower()
      treats as cased (and not case-ignorable) and as case-ignorable.
  testdata/tokenizer/summary.json   document counts and Keras docs/s.

Usage: python scripts/make_tokenizer_golden.py [--repo DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from tf_keras.preprocessing.text import Tokenizer  # noqa: E402

CONFIGS = [
    ("default", {}),
    ("num_words_300", {"num_words": 300}),
    ("oov_300", {"num_words": 300, "oov_token": "<OOV>"}),
    ("no_lower", {"lower": False}),
    ("char_100", {"char_level": True, "num_words": 100}),
    ("custom_split", {"filters": ".,;:!?\"()[]\n\t ", "split": "/", "oov_token": "zzoov"}),
]
FIT_STRIDE = 5
MODES = ["binary", "count", "freq", "tfidf"]
EDGE = [
    "",
    "   ",
    "ÉCOLE École",
    "İstanbul ΣΑΣ straße",
    "a.b,c!d",
    "tab\tsep",
    "émoji 🙂",
    "ΟΔΟΣ ΟΔΟΣ. Σ ΑΣ' aΣb ΑΣ\u0301 ΑΣ:Α",
    "it's don't 'quoted' ''",
    "the the the THE The",
    "<OOV> oov zzoov",
    "ǅ ǈ ǋ ǲ ẞ Ω K Å",
]


def read_jsonl(path: pathlib.Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def corpus(repo: pathlib.Path) -> list[str]:
    docs = [r["text"] for r in read_jsonl(repo / "testdata/data/fortunes/test.jsonl")]
    docs += [r["text"] for r in read_jsonl(repo / "testdata/textvec/extra.jsonl.gz") if "text" in r]
    return docs + EDGE


def lower_tables() -> dict:
    lower, cased, ignorable = [], [], []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        if c.lower() != c:
            lower.append([cp, c.lower()])
        # Final_Sigma: "AΣ"+c keeps a final sigma unless c is cased and not
        # case-ignorable; "A"+c+"Σ" has one if c is case-ignorable or cased.
        not_final_after = not ("AΣ" + c).lower().startswith("aς")
        final_before = ("A" + c + "Σ").lower().endswith("ς")
        if not_final_after:
            cased.append(cp)
        elif final_before:
            ignorable.append(cp)
    return {"lower": lower, "cased": cased, "ignorable": ignorable}


def write_gz(path: pathlib.Path, text: str) -> None:
    with gzip.GzipFile(path, "wb", mtime=0, compresslevel=9) as f:
        f.write(text.encode("utf-8"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", default=pathlib.Path(__file__).resolve().parent.parent, type=pathlib.Path)
    args = ap.parse_args()
    repo = args.repo
    out = repo / "testdata/tokenizer"
    out.mkdir(parents=True, exist_ok=True)

    train = [r["text"] for r in read_jsonl(repo / "testdata/data/fortunes/train.jsonl")][::FIT_STRIDE]
    docs = corpus(repo)
    summary = {"train_docs": len(train), "docs": len(docs), "edge_docs": len(EDGE), "configs": {}}
    for name, kwargs in CONFIGS:
        tok = Tokenizer(**kwargs)
        tok.fit_on_texts(train)
        write_gz(out / f"{name}.tokenizer.json.gz", tok.to_json())
        mats, rates = {}, {}
        for mode in MODES:
            t0 = time.perf_counter()
            mats[mode] = tok.texts_to_matrix(docs, mode=mode)
            rates[mode] = len(docs) / (time.perf_counter() - t0)
            assert mats[mode].dtype == np.float64
        nz = mats["count"] != 0
        assert np.array_equal(mats["binary"], nz.astype(np.float64)), name
        for mode in ("freq", "tfidf"):
            assert not np.any(mats[mode][~nz]), (name, mode)
        rows, tfidf, freq = [], {}, {}
        for r in range(len(docs)):
            idx = np.flatnonzero(nz[r])
            counts = [int(v) for v in mats["count"][r, idx]]
            assert all(float(c) == v for c, v in zip(counts, mats["count"][r, idx]))
            rows.append([idx.tolist(), counts])
            n = sum(counts)
            for j, c in zip(idx.tolist(), counts):
                for table, key, v in ((tfidf, (j, c), mats["tfidf"][r, j]), (freq, (c, n), mats["freq"][r, j])):
                    assert table.setdefault(key, float(v)) == float(v), (name, key)
        golden = {
            "rows": rows,
            "tfidf": [[j, c, v] for (j, c), v in sorted(tfidf.items())],
            "freq": [[c, n, v] for (c, n), v in sorted(freq.items())],
        }
        write_gz(out / f"{name}.rows.json.gz", json.dumps(golden, separators=(",", ":")))
        summary["configs"][name] = {
            "kwargs": kwargs,
            "width": mats["count"].shape[1],
            "nonzeros": int(nz.sum()),
            "keras_texts_to_matrix_docs_per_s": {m: round(v) for m, v in rates.items()},
        }
        print(name, summary["configs"][name], file=sys.stderr)
    write_gz(out / "lower.json.gz", json.dumps(lower_tables(), ensure_ascii=False, separators=(",", ":")))
    with open(out / "summary.json", "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
