"""What tests share instead of each computing it again.

keras_cache: what Keras itself computes for the tests (the files it writes and
the golden values the exports are held to), kept from one run to the next.
once_per_run: a directory made once in a pytest run, for every test and every
pytest-xdist worker that reads it.
"""

import contextlib
import fcntl
import hashlib
import importlib.metadata
import os
import pathlib
import platform
import shutil
import sys

CACHE = os.path.join(os.environ.get("KERASGO_CACHE") or os.path.expanduser("~/.cache/kerasgo"), "pytest")
KEEP_PER_NAME = 3  # cache entries kept per name (other checkouts, other package versions)


# Environment variables that cannot change a number: TensorFlow's log levels,
# and Terraform's TF_ variable.
NOT_NUMERIC = {"TF_CPP_MIN_LOG_LEVEL", "TF_CPP_MIN_VLOG_LEVEL", "TF_CPP_MAX_VLOG_LEVEL", "TF_CLI_CONFIG_FILE"}


def environment() -> list[str]:
    """Everything outside the inputs that can change what Keras computes: the
    interpreter, every installed package and its version, the CPU (oneDNN picks
    its kernels by instruction set), Keras' configuration file and the
    TensorFlow, Keras and threading environment variables."""
    dists = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions())
    flags = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        flags = next((line for line in f if line.startswith("flags")), "")
    config = ""
    keras_home = os.environ.get("KERAS_HOME") or os.path.expanduser("~/.keras")
    with contextlib.suppress(OSError), open(os.path.join(keras_home, "keras.json"), encoding="utf-8") as f:
        config = f.read()
    env = sorted(f"{k}={v}" for k, v in os.environ.items()
                 if k.startswith(("TF_", "KERAS", "OMP_", "MKL_", "ONEDNN_", "DNNL_", "PYTHONHASHSEED"))
                 and k not in NOT_NUMERIC)
    return [sys.version, platform.machine(), flags, config, *dists, *env]


def keras_cache(name: str, files: list[str], args: list[str], make, dest) -> pathlib.Path:
    """Fills dest (a new directory) with what make(dir) writes, running make
    only when no earlier run did with the same inputs.

    Only for Keras' own side of a comparison, and only where it is deterministic
    (the same inputs give the same bytes; checked when this was written). The
    entry is keyed by name, args, the contents of files (the scripts that
    compute it and the data they read) and environment(); it lives under
    $KERASGO_CACHE/pytest, outside the repository, and is copied into dest so
    no test can change it. A lock makes concurrent runs (pytest-xdist workers,
    two checkouts) compute an entry once. KERASGO_TEST_CACHE=0 computes afresh
    and keeps nothing."""
    dest = str(dest)
    if os.environ.get("KERASGO_TEST_CACHE", "1") == "0":
        os.makedirs(dest, exist_ok=True)
        make(dest)
        return pathlib.Path(dest)
    h = hashlib.sha256()
    for part in [name, *args, *environment()]:
        h.update(part.encode() + b"\0")
    for path in files:
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    entry = os.path.join(CACHE, f"{name}-{h.hexdigest()[:24]}")
    os.makedirs(CACHE, exist_ok=True)
    with open(entry + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isdir(entry):
            tmp = f"{entry}.tmp{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(tmp)
            try:
                make(tmp)
                os.rename(tmp, entry)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            _prune(name, keep=entry)
        os.utime(entry)
        shutil.copytree(entry, dest, symlinks=True, dirs_exist_ok=True)
    return pathlib.Path(dest)


def _prune(name: str, keep: str) -> None:
    """Removes all but the KEEP_PER_NAME most recently used entries of name
    (each only while nobody holds its lock)."""
    entries = [os.path.join(CACHE, e) for e in os.listdir(CACHE)
               if e.startswith(name + "-") and "." not in e and os.path.join(CACHE, e) != keep]
    entries.sort(key=os.path.getmtime, reverse=True)
    for entry in entries[KEEP_PER_NAME - 1:]:
        with contextlib.suppress(OSError), open(entry + ".lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            os.remove(entry + ".lock")


def once_per_run(tmp_path_factory, name: str, make) -> pathlib.Path:
    """The directory make(dir) writes, made by the first test of the run that
    asks for it; the tests that ask later, in this process or another
    pytest-xdist worker, get the same directory. For what the tests only read."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's directory, above each worker's own
    path = root / "once" / name
    path.parent.mkdir(exist_ok=True)
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.is_dir():
            tmp = path.with_name(f"{name}.tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            try:
                make(tmp)
                tmp.rename(path)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return path
