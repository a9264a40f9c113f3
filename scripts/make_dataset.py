#!/usr/bin/env python3
"""Build kerasgo's small real-text test datasets from Debian packages.

Outputs (all under testdata/data/):

  fortunes/{train,test}.jsonl, fortunes/classes.txt
      single-label: fortune-cookie texts labelled by their cookie file
      (Debian packages ``fortunes`` + ``fortunes-min``).
  debtags/{train,test}.jsonl, debtags/labels.txt
      multi-label: Debian package descriptions labelled with their debtags
      (``Tag:`` field of the Debian archive's Packages index, long
      descriptions from the archive's Translation-en index; tag
      descriptions from the ``debtags`` package's vocabulary).
  provenance.json, SHA256SUMS, README.md

Usage:  python3 scripts/make_dataset.py [--refresh-index] [--out DIR]

Packages are fetched with ``apt-get download`` into
``$KERASGO_CACHE/debs`` (default ``~/.cache/kerasgo/debs``) and unpacked with
``dpkg-deb -x``.  If ``apt-get download`` fails because the apt lists are
missing, the script runs ``apt-get update`` once (only when running as root).

The debtags dataset needs the Packages and Translation-en indices of Debian
``bookworm/main`` (amd64).  These are fetched with ``apt-get update`` into a
private, self-contained apt state under ``$KERASGO_CACHE/apt`` (the system's
apt configuration and lists are neither used nor modified) and are reused on
later runs, so repeated runs give byte-identical output.  ``--refresh-index``
fetches the indices again (the output then changes only if the archive did).

Everything is deterministic: no clocks, no random generators; sampling and
train/test splits use SHA-256 of stable keys.  Python 3.11, stdlib only.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "testdata" / "data"

# ---------------------------------------------------------------- parameters
FORTUNE_PACKAGES = ["fortunes", "fortunes-min"]
VOCAB_PACKAGE = "debtags"
FORTUNE_DIR = "usr/share/games/fortunes"
N_CLASSES = 20          # categories to keep
MIN_ENTRIES = 80        # a category needs at least this many usable entries
KEEP_FRACTION = (3, 5)  # keep ceil(3/5) of each category's entries ...
MAX_PER_CLASS = 400     # ... but at most this many (keeps a realistic imbalance)

DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SUITE = "bookworm"
DEBIAN_COMPONENT = "main"
DEBIAN_ARCH = "amd64"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
TAGS = [  # ~10 frequent debtags from four facets
    "devel::library",
    "implemented-in::c",
    "implemented-in::c++",
    "implemented-in::perl",
    "implemented-in::python",
    "interface::commandline",
    "interface::x11",
    "role::documentation",
    "role::program",
    "role::shared-lib",
    "use::gameplaying",
]
MIN_LONG_DESC = 80      # chars of (normalised) long description required
MAX_TEXT_BYTES = 2000   # skip the few giant descriptions
SAMPLE_MOD = 8          # keep source packages with H(source) % 8 == 0
MAX_PER_SOURCE = 2      # at most this many binary packages per source package
TEST_MOD = 5            # H(key) % 5 == 0 -> test (about 20 %)
SIZE_LIMIT = 1_500_000  # warn if a dataset exceeds this many bytes


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def h64(s: str) -> int:
    return int.from_bytes(hashlib.sha256(s.encode("utf-8")).digest()[:8], "big")


def sha256_file(p: Path) -> str:
    d = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            d.update(chunk)
    return d.hexdigest()


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, text=True, capture_output=True, **kw)


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


# ---------------------------------------------------------- apt: downloading
def apt_download(pkgs: list[str], debs: Path) -> dict[str, Path]:
    """apt-get download PKGS into DEBS (reusing verified cached files)."""
    debs.mkdir(parents=True, exist_ok=True)

    def uris() -> subprocess.CompletedProcess:
        # run in an empty dir: apt prints nothing for files already present
        tmp = debs / ".probe"
        tmp.mkdir(exist_ok=True)
        try:
            return run(["apt-get", "download", "--print-uris", *pkgs], cwd=tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def usable(r: subprocess.CompletedProcess) -> bool:
        return r.returncode == 0 and len(r.stdout.strip().splitlines()) == len(pkgs)

    r = uris()
    if not usable(r):
        log(f"apt-get download --print-uris failed:\n{r.stderr.strip()}")
        if not is_root():
            sys.exit("apt lists seem to be missing; run 'apt-get update' as root "
                     "(or run this script as root) and try again")
        log("running apt-get update (lists missing?)")
        u = run(["apt-get", "update"])
        if u.returncode != 0:
            log(u.stderr)
        r = uris()
        if not usable(r):
            sys.exit(f"apt-get download cannot find {pkgs}:\n{r.stderr}")

    wanted: dict[str, tuple[str, str]] = {}
    for line in r.stdout.strip().splitlines():
        m = re.match(r"^'([^']+)' (\S+) (\d+) (\w+):(\w+)$", line)
        if not m:
            sys.exit(f"unexpected apt-get --print-uris line: {line}")
        _, fname, _, algo, digest = m.groups()
        wanted[fname] = (algo.lower(), digest)

    def ok(fname: str) -> bool:
        p = debs / fname
        if not p.is_file():
            return False
        algo, digest = wanted[fname]
        return hashlib.new(algo, p.read_bytes()).hexdigest() == digest

    if not all(ok(f) for f in wanted):
        log(f"apt-get download {' '.join(pkgs)} -> {debs}")
        d = run(["apt-get", "download", *pkgs], cwd=debs)
        if d.returncode != 0:
            sys.exit(f"apt-get download failed:\n{d.stderr}")
    bad = [f for f in wanted if not ok(f)]
    if bad:
        sys.exit(f"checksum mismatch for {bad}")

    out: dict[str, Path] = {}
    for fname in wanted:
        p = debs / fname
        out[deb_field(p, "Package")] = p
    return out


def deb_field(deb: Path, field: str) -> str:
    r = run(["dpkg-deb", "-f", str(deb), field])
    if r.returncode != 0:
        sys.exit(r.stderr)
    return r.stdout.strip()


def extract(deb: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    r = run(["dpkg-deb", "-x", str(deb), str(dest)])
    if r.returncode != 0:
        sys.exit(f"dpkg-deb -x {deb} failed:\n{r.stderr}")


def deb_info(pkg: str, deb: Path) -> dict:
    return {
        "package": pkg,
        "version": deb_field(deb, "Version"),
        "source": deb_field(deb, "Source") or pkg,
        "file": deb.name,
        "sha256": sha256_file(deb),
    }


# ------------------------------------------------------------ dataset A
_OVERSTRIKE = re.compile(r"[^\x08\n]\x08")
_C0 = re.compile(r"[\x00-\x08\x0e-\x1b\x7f]")


def clean_fortune(raw: str) -> str:
    s = raw
    while True:  # "____\b\b\b\bword" / "X\bX": keep what a terminal shows
        t = _OVERSTRIKE.sub("", s)
        if t == s:
            break
        s = t
    s = _C0.sub("", s)       # stray BEL / backspace characters
    return " ".join(s.split())


def read_fortune_file(p: Path) -> list[str]:
    text = p.read_bytes().decode("utf-8")
    entries, cur = [], []
    for line in text.split("\n"):
        if line.rstrip("\r") == "%":
            entries.append("\n".join(cur))
            cur = []
        else:
            cur.append(line)
    entries.append("\n".join(cur))
    return entries


def build_fortunes(root: Path, out: Path) -> dict:
    fdir = root / FORTUNE_DIR
    cats: dict[str, list[tuple[int, str]]] = {}
    raw_counts: dict[str, int] = {}
    for p in sorted(fdir.iterdir()):
        if p.is_symlink() or not p.is_file() or p.suffix in (".dat", ".u8"):
            continue  # also skips the off/ directory (offensive fortunes)
        seen, items, n_raw = set(), [], 0
        for i, e in enumerate(read_fortune_file(p), start=1):
            t = clean_fortune(e)
            if not t:
                continue
            n_raw += 1
            if t in seen:
                continue
            seen.add(t)
            items.append((i, t))
        cats[p.name] = items
        raw_counts[p.name] = n_raw

    eligible = [c for c in cats if len(cats[c]) >= MIN_ENTRIES]
    eligible.sort(key=lambda c: (-len(cats[c]), c))
    chosen = sorted(eligible[:N_CLASSES])
    if len(chosen) < N_CLASSES:
        log(f"WARNING: only {len(chosen)} categories have >= {MIN_ENTRIES} entries")

    owners = collections.defaultdict(set)
    for c in chosen:
        for _, t in cats[c]:
            owners[t].add(c)
    cross_dupes = {t for t, cs in owners.items() if len(cs) > 1}

    rows = []
    per_cat = {}
    for c in chosen:
        items = [(i, t) for i, t in cats[c] if t not in cross_dupes]
        available = len(items)
        items.sort(key=lambda it: (h64("fortune-keep:" + it[1]), it[0]))
        num, den = KEEP_FRACTION
        items = sorted(items[:min(MAX_PER_CLASS, -(-available * num // den))])
        per_cat[c] = {"entries": raw_counts[c], "unique": len(cats[c]),
                      "after_cross_dedup": available, "kept": len(items)}
        for i, t in items:
            rows.append({"id": f"{c}-{i}", "text": t, "label": c})

    splits = {"train": [], "test": []}
    for r in rows:
        key = "test" if h64("fortune-split:" + r["text"]) % TEST_MOD == 0 else "train"
        splits[key].append(r)

    d = out / "fortunes"
    d.mkdir(parents=True, exist_ok=True)
    write_jsonl(d / "train.jsonl", splits["train"])
    write_jsonl(d / "test.jsonl", splits["test"])
    write_text(d / "classes.txt", "".join(c + "\n" for c in chosen))

    counts = {s: collections.Counter(r["label"] for r in splits[s]) for s in splits}
    return {
        "classes": chosen,
        "skipped_small": sorted(c for c in cats if len(cats[c]) < MIN_ENTRIES),
        "not_in_top": sorted(set(eligible) - set(chosen)),
        "cross_category_duplicates_dropped": len(cross_dupes),
        "per_category": per_cat,
        "counts": {s: dict(sorted(counts[s].items())) for s in counts},
        "n": {s: len(splits[s]) for s in splits},
    }


# ------------------------------------------------------------ dataset B
def private_apt(cache: Path) -> tuple[dict, Path]:
    """Self-contained apt configuration for bookworm/main indices."""
    base = cache / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "parts", "prefs"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "status").touch()
    signed = f"[signed-by={KEYRING}] " if Path(KEYRING).exists() else ""
    write_text(base / "sources.list",
               f"deb {signed}{DEBIAN_MIRROR} {DEBIAN_SUITE} {DEBIAN_COMPONENT}\n")
    conf = f"""\
Dir::Etc::Parts "{base}/parts";
Dir::Etc::SourceList "{base}/sources.list";
Dir::Etc::SourceParts "{base}/parts";
Dir::Etc::Preferences "{base}/preferences";
Dir::Etc::PreferencesParts "{base}/prefs";
Dir::State::Lists "{base}/lists";
Dir::State::status "{base}/status";
Dir::Cache "{base}/cache";
APT::Architecture "{DEBIAN_ARCH}";
APT::Architectures {{ "{DEBIAN_ARCH}"; }};
Acquire::Languages {{ "en"; }};
Debug::NoLocking "true";
"""
    write_text(base / "apt.conf", conf)
    env = dict(os.environ, APT_CONFIG=str(base / "apt.conf"), LC_ALL="C")
    return env, base / "lists"


def index_files(lists: Path) -> dict[str, Path | None]:
    stem = DEBIAN_MIRROR.split("://", 1)[1].rstrip("/").replace("/", "_")
    pre = f"{stem}_dists_{DEBIAN_SUITE}"

    def find(name: str) -> Path | None:
        hits = sorted(p for p in lists.glob(name + "*") if p.is_file())
        return hits[0] if hits else None

    return {
        "release": find(f"{pre}_InRelease") or find(f"{pre}_Release"),
        "packages": find(f"{pre}_{DEBIAN_COMPONENT}_binary-{DEBIAN_ARCH}_Packages"),
        "translation": find(f"{pre}_{DEBIAN_COMPONENT}_i18n_Translation-en"),
    }


def get_index(cache: Path, refresh: bool) -> tuple[dict, dict]:
    env, lists = private_apt(cache)
    files = index_files(lists)
    if refresh or not all(files.values()):
        log(f"apt-get update (private state in {lists.parent}) for "
            f"{DEBIAN_SUITE}/{DEBIAN_COMPONENT} Packages + Translation-en")
        r = run(["apt-get", "update"], env=env)
        if r.returncode != 0:
            sys.exit(f"apt-get update failed:\n{r.stderr}")
        files = index_files(lists)
        if not all(files.values()):
            sys.exit(f"index files missing after apt-get update: {files}")
    texts = {}
    for k, p in files.items():
        r = subprocess.run(["/usr/lib/apt/apt-helper", "cat-file", str(p)],
                           capture_output=True)
        if r.returncode != 0:
            sys.exit(f"cannot read {p}: {r.stderr.decode()}")
        texts[k] = r.stdout.decode("utf-8")
    return texts, {k: p.name for k, p in files.items()}


def parse_deb822(text: str) -> list[dict[str, str]]:
    recs, cur, last = [], {}, None
    for line in text.split("\n"):
        if not line.strip():
            if cur:
                recs.append(cur)
            cur, last = {}, None
        elif line[0] in " \t":
            if last is not None:
                cur[last] += "\n" + line
        else:
            k, _, v = line.partition(":")
            cur[k] = v.strip()
            last = k
    if cur:
        recs.append(cur)
    return recs


def release_fields(text: str) -> dict:
    out = {}
    for line in text.split("\n"):
        if line.startswith("-----BEGIN PGP SIGNATURE"):
            break
        m = re.match(r"^(Origin|Label|Suite|Version|Codename|Date):\s*(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def dpkg_cmp(a: str, b: str) -> int:
    if a == b:
        return 0
    lt = subprocess.run(["dpkg", "--compare-versions", a, "lt", b]).returncode == 0
    return -1 if lt else 1


def description_text(desc: str) -> tuple[str, str]:
    short, _, long = desc.partition("\n")
    paras = re.split(r"\n[ \t]\.[ \t]*(?=\n|$)", "\n" + long)
    paras = [" ".join(p.split()) for p in paras]
    paras = [p for p in paras if p]
    return " ".join(short.split()), "\n".join(paras)


def build_debtags(texts: dict, out: Path) -> dict:
    pk = parse_deb822(texts["packages"])
    tr = {(r["Package"], r.get("Description-md5", "")): r.get("Description-en", "")
          for r in parse_deb822(texts["translation"])}

    best: dict[str, dict] = {}  # one record per package name (highest version)
    for r in pk:
        name = r["Package"]
        if name not in best or dpkg_cmp(r["Version"], best[name]["Version"]) > 0:
            best[name] = r

    chosen = set(TAGS)
    stats = collections.Counter()
    groups: dict[str, list[tuple[str, str, list[str]]]] = collections.defaultdict(list)
    for name in sorted(best):
        r = best[name]
        tags = {t.strip() for t in r.get("Tag", "").replace("\n", " ").split(",") if t.strip()}
        if not tags:
            stats["no_tag"] += 1
            continue
        desc = tr.get((name, r.get("Description-md5", "")))
        if not desc:
            stats["no_translation"] += 1
            continue
        short, long = description_text(desc)
        if len(long) < MIN_LONG_DESC:
            stats["short_long_description"] += 1
            continue
        text = short + "\n" + long
        if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
            stats["too_long"] += 1
            continue
        labels = sorted(tags & chosen)
        if not labels:
            stats["no_chosen_tag"] += 1
            continue
        src = r.get("Source", name).split()[0]
        groups[src].append((name, text, labels))
        stats["eligible"] += 1

    rows = []
    for src in sorted(groups):
        if h64("debtags-sample:" + src) % SAMPLE_MOD:
            continue
        g = sorted(groups[src], key=lambda e: (h64("debtags-pick:" + e[0]), e[0]))
        split = "test" if h64("debtags-split:" + src) % TEST_MOD == 0 else "train"
        for name, text, labels in g[:MAX_PER_SOURCE]:
            rows.append((split, {"id": name, "text": text, "labels": labels}))
    rows.sort(key=lambda sr: sr[1]["id"])
    splits = {s: [r for sp, r in rows if sp == s] for s in ("train", "test")}

    d = out / "debtags"
    d.mkdir(parents=True, exist_ok=True)
    write_jsonl(d / "train.jsonl", splits["train"])
    write_jsonl(d / "test.jsonl", splits["test"])
    write_text(d / "labels.txt", "".join(t + "\n" for t in sorted(TAGS)))

    counts = {s: collections.Counter(t for r in splits[s] for t in r["labels"])
              for s in splits}
    card = {s: collections.Counter(len(r["labels"]) for r in splits[s]) for s in splits}
    return {
        "tags": sorted(TAGS),
        "filter_stats": dict(sorted(stats.items())),
        "source_packages_total": len(groups),
        "counts": {s: {t: counts[s].get(t, 0) for t in sorted(TAGS)} for s in splits},
        "labels_per_example": {s: dict(sorted(card[s].items())) for s in splits},
        "n": {s: len(splits[s]) for s in splits},
    }


def vocabulary(root: Path) -> dict[str, str]:
    p = root / "usr/share/debtags/vocabulary"
    if not p.exists():
        return {}
    out = {}
    for r in parse_deb822(p.read_text(encoding="utf-8")):
        if "Tag" in r and r["Tag"] in TAGS:
            out[r["Tag"]] = r.get("Description", "").split("\n")[0].strip()
    return out


# ------------------------------------------------------------ output helpers
def write_text(p: Path, s: str) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p, "w", encoding="utf-8", newline="\n") as f:
        f.write(s)


def write_jsonl(p: Path, rows: list[dict]) -> None:
    write_text(p, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
                          for r in rows))


def table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def readme(prov: dict, fa: dict, fb: dict, vocab: dict, sizes: dict) -> str:
    pk = {p["package"]: p for p in prov["packages"]}
    rel = prov["debtags_index"]["release"]
    fr = pk["fortunes"]
    s = []
    s.append("# kerasgo text test data\n\n")
    s.append("Small, real text-classification datasets built from Debian packages by\n"
             "`scripts/make_dataset.py`. Do not edit by hand: regenerate with\n\n"
             "```sh\npython3 scripts/make_dataset.py            # reuses cached index\n"
             "python3 scripts/make_dataset.py --refresh-index   # re-fetch Debian index\n```\n\n"
             "Needs `apt-get`, `dpkg-deb`, Python 3.11 (stdlib only) and access to the\n"
             "Debian archive (first run only; later runs reuse `$KERASGO_CACHE`, default\n"
             "`~/.cache/kerasgo`: `debs/` for the .deb files, `apt/` for a private apt state\n"
             "holding the index files). The output is deterministic (no clock, no RNG: sampling\n"
             "and splits use SHA-256 of stable keys); `SHA256SUMS` lists the expected hashes\n"
             "and `provenance.json` the exact inputs.\n\n")
    s.append("## Files\n\n" + table(
        ["file", "bytes", "lines"],
        [[k, v[0], v[1]] for k, v in sorted(sizes.items())]) + "\n")

    s.append("## A. `fortunes/` — single-label (20 classes)\n\n")
    s.append("JSON lines: `{\"id\": \"<category>-<n>\", \"label\": \"<category>\", \"text\": \"...\"}`\n"
             "(`n` = 1-based position of the entry in the cookie file). `classes.txt`: the\n"
             "class names, sorted.\n\n")
    fpk = ", ".join(f"`{p}` {pk[p]['version']}" for p in FORTUNE_PACKAGES)
    s.append(f"Source: Debian packages {fpk}\n"
             f"(source package `{fr['source']}`), files `/{FORTUNE_DIR}/<category>`, entries\n"
             "separated by lines holding only `%`.\n\n")
    s.append("Processing: overstrike sequences (`_\\b`, `X\\bX`) are resolved to the visible\n"
             "characters and other C0 control characters (BEL) dropped; all whitespace\n"
             "(newlines, tabs) inside an entry is collapsed to single spaces, so poems and\n"
             "ASCII art lose their layout. Text is otherwise unchanged (case, punctuation,\n"
             "Unicode; mojibake present in the source files is left alone). Empty entries and\n"
             "duplicates within a file are dropped; texts found in more than one chosen\n"
             f"category ({fa['cross_category_duplicates_dropped']}) are dropped entirely. "
             f"The {N_CLASSES} categories with the most\nunique entries (>= {MIN_ENTRIES}) are kept "
             "(these packages ship no offensive `off/` files).\nEach class keeps "
             f"{KEEP_FRACTION[0]}/{KEEP_FRACTION[1]} of its entries (rounded up),\n"
             f"at most {MAX_PER_CLASS}, chosen by SHA-256 of the text, so the natural imbalance "
             "survives.\nSplit: SHA-256 of the text, ~80/20.\n\n")
    s.append(f"Not used: smaller than {MIN_ENTRIES}: {', '.join(fa['skipped_small'])}; eligible "
             f"but outside the top {N_CLASSES}: {', '.join(fa['not_in_top']) or '-'}.\n\n")
    s.append(table(
        ["class", "entries in file", "unique", "kept", "train", "test"],
        [[c, v["entries"], v["unique"], v["kept"], fa["counts"]["train"].get(c, 0),
          fa["counts"]["test"].get(c, 0)] for c, v in sorted(fa["per_category"].items())]
        + [["**total**", "", "", sum(v["kept"] for v in fa["per_category"].values()),
            fa["n"]["train"], fa["n"]["test"]]]) + "\n")

    s.append("## B. `debtags/` — multi-label (%d tags)\n\n" % len(TAGS))
    s.append("JSON lines: `{\"id\": \"<package>\", \"labels\": [\"<tag>\", ...], \"text\": \"...\"}`,\n"
             "sorted by package name. `text` = short description, a newline, then the long\n"
             "description with one paragraph per line (whitespace collapsed, Debian's ` .`\n"
             "paragraph separators removed). `labels` = the package's debtags restricted to\n"
             "`labels.txt`; every example has at least one.\n\n")
    s.append(f"Source: the Debian archive index `{DEBIAN_SUITE}/{DEBIAN_COMPONENT}` ({DEBIAN_ARCH}): "
             f"`Tag:` field of\n`binary-{DEBIAN_ARCH}/Packages`, long descriptions from "
             "`i18n/Translation-en` (matched on\n`Description-md5`), fetched with `apt-get update` "
             f"into a private apt state. Release file:\nSuite `{rel.get('Suite')}`, Codename "
             f"`{rel.get('Codename')}`, Version `{rel.get('Version')}`, Date `{rel.get('Date')}`\n"
             "(SHA-256 of the decompressed index files in `provenance.json`). The Debian\n"
             "archive changes with point releases; `--refresh-index` picks up the new index and\n"
             "the data may then change. Tag descriptions below come from\n"
             f"`/usr/share/debtags/vocabulary` in the `debtags` package {pk[VOCAB_PACKAGE]['version']}.\n\n")
    s.append(f"Selection: packages with >= 1 tag, a long description of >= {MIN_LONG_DESC} chars and\n"
             f"text <= {MAX_TEXT_BYTES} bytes; source packages kept when SHA-256(source) % {SAMPLE_MOD} == 0,\n"
             f"at most {MAX_PER_SOURCE} binary packages per source package. The train/test split is by\n"
             "source package (SHA-256, ~80/20), so near-identical descriptions of sibling\n"
             "packages (`libfoo1`, `libfoo-dev`) never straddle the split. Package-level filter\n"
             f"counts before sampling: {', '.join(f'{k}={v}' for k, v in fb['filter_stats'].items())}.\n\n")
    s.append(table(
        ["tag", "description", "train", "test"],
        [[t, vocab.get(t, ""), fb["counts"]["train"][t], fb["counts"]["test"][t]]
         for t in fb["tags"]]
        + [["**examples**", "", fb["n"]["train"], fb["n"]["test"]]]) + "\n")
    s.append("Labels per example: " + "; ".join(
        f"{sp}: " + ", ".join(f"{k}→{v}" for k, v in fb["labels_per_example"][sp].items())
        for sp in ("train", "test")) + ".\n\n")

    s.append("## Licences\n\n")
    s.append("- **fortunes** (`fortunes`, `fortunes-min`, Debian main, identical\n"
             "  `/usr/share/doc/*/copyright`): the only licence text there is the BSD licence of\n"
             "  the Regents of the University of California (clause 3, advertising, deleted),\n"
             "  introduced as \"This program falls under the BSD copyright\"; the cookie files\n"
             "  are not licensed separately. It credits Amy A. Lewis for heavy changes to the\n"
             "  fortune files, says `cookie` is from Karl Lehenbauer's alt.sources postings, and\n"
             "  quotes the header of an atheism cookie file (not shipped in these packages).\n"
             "  The cookies are mostly quotations of many third parties with no per-item\n"
             "  clearance; Debian ships them in main. Fine as a test fixture; don't re-publish\n"
             "  them as a corpus of your own.\n")
    s.append("- **debtags** dataset: package descriptions are written by each package's\n"
             "  maintainers/upstreams and ship in that package's `debian/control`, i.e. under the\n"
             "  (DFSG-free, varying) licence of each Debian main source package; the Packages and\n"
             "  Translation-en indices themselves carry no separate licence statement. Tags come\n"
             "  from the Debian debtags database (community-curated, merged into the archive\n"
             "  index); no explicit licence for the tag data was found. The `debtags` package\n"
             "  (used only for tag descriptions) is GPL-2 (Enrico Zini et al.).\n")
    return "".join(s)


# ------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--refresh-index", action="store_true",
                    help="re-run apt-get update for the private bookworm/main index")
    args = ap.parse_args()

    cache = Path(os.environ.get("KERASGO_CACHE") or Path.home() / ".cache" / "kerasgo")
    debs = apt_download(FORTUNE_PACKAGES + [VOCAB_PACKAGE], cache / "debs")

    xroot = cache / "extract"
    shutil.rmtree(xroot, ignore_errors=True)
    for pkg in FORTUNE_PACKAGES:
        extract(debs[pkg], xroot / "fortunes")
    extract(debs[VOCAB_PACKAGE], xroot / VOCAB_PACKAGE)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("fortunes", "debtags"):
        shutil.rmtree(out / sub, ignore_errors=True)

    fa = build_fortunes(xroot / "fortunes", out)
    texts, names = get_index(cache, args.refresh_index)
    fb = build_debtags(texts, out)
    vocab = vocabulary(xroot / VOCAB_PACKAGE)

    prov = {
        "packages": [deb_info(p, debs[p]) for p in sorted(debs)],
        "debtags_index": {
            "source": f"{DEBIAN_MIRROR} {DEBIAN_SUITE}/{DEBIAN_COMPONENT} {DEBIAN_ARCH}",
            "release": release_fields(texts["release"]),
            "files": {k: {"apt_list_file": names[k],
                          "sha256_decompressed": hashlib.sha256(texts[k].encode("utf-8")).hexdigest()}
                      for k in ("packages", "translation")},
        },
        "fortunes": {k: fa[k] for k in ("classes", "n", "cross_category_duplicates_dropped",
                                         "per_category")},
        "debtags": {k: fb[k] for k in ("tags", "n", "filter_stats", "counts")},
        "parameters": {k: globals()[k] for k in (
            "N_CLASSES", "MIN_ENTRIES", "KEEP_FRACTION", "MAX_PER_CLASS", "MIN_LONG_DESC", "MAX_TEXT_BYTES",
            "SAMPLE_MOD", "MAX_PER_SOURCE", "TEST_MOD")},
    }
    write_text(out / "provenance.json",
               json.dumps(prov, ensure_ascii=False, sort_keys=True, indent=1) + "\n")

    data_files = sorted(p for p in out.rglob("*") if p.is_file() and p.parent != out)
    sizes = {}
    for p in data_files:
        b = p.read_bytes()
        sizes[str(p.relative_to(out))] = (len(b), b.count(b"\n"))
    for sub in ("fortunes", "debtags"):
        tot = sum(v[0] for k, v in sizes.items() if k.startswith(sub + "/"))
        if tot > SIZE_LIMIT:
            log(f"WARNING: {sub}/ is {tot} bytes (> {SIZE_LIMIT})")

    write_text(out / "README.md", readme(prov, fa, fb, vocab, sizes))
    sums = [p for p in sorted(out.rglob("*")) if p.is_file() and p.name != "SHA256SUMS"]
    write_text(out / "SHA256SUMS", "".join(
        f"{sha256_file(p)}  {p.relative_to(out)}\n" for p in sums))

    log(f"fortunes: {len(fa['classes'])} classes, train={fa['n']['train']} test={fa['n']['test']}")
    log(f"debtags: {len(fb['tags'])} tags, train={fb['n']['train']} test={fb['n']['test']}")
    for k, (b, n) in sorted(sizes.items()):
        log(f"  {k}: {b} bytes, {n} lines")


if __name__ == "__main__":
    main()
