"""Imports TensorFlow without its start-up log lines, as the kerasgo binary does.

TensorFlow 2.21 logs through absl while its libraries load (the oneDNN notice,
absl's "before InitializeLog" warning), whatever TF_CPP_MIN_LOG_LEVEL says.
`quiet_startup()` points file descriptor 2 at a temporary file around the
imports, then passes on the records at or above the level in force
(TF_CPP_MIN_LOG_LEVEL, default 2: errors), and anything not in TensorFlow's
log format. KERASGO_VERBOSE=1 turns the capture off. The Go side of the same
rule is tflog.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

_RECORD = re.compile(
    rb"^(?:([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ |\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) |(WARNING|ERROR|FATAL): )"
)
_ABSL_NOTICE = b"WARNING: All log messages before absl::InitializeLog() is called"
_LEVELS = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}


def filter_log(data: bytes, level: int) -> bytes:
    """Returns the records in data whose severity is at least level (0 info .. 3 fatal)."""
    out, keep = [], True
    for line in data.splitlines(keepends=True):
        if line.startswith(_ABSL_NOTICE):
            keep = level == 0
        elif m := _RECORD.match(line):
            keep = _LEVELS[(m.group(1) or m.group(2) or m.group(3))[:1]] >= level
        if keep:
            out.append(line if line.endswith(b"\n") else line + b"\n")
    return b"".join(out)


def _verbose() -> bool:
    return os.environ.get("KERASGO_VERBOSE", "") not in ("", "0", "false")


@contextlib.contextmanager
def quiet_startup():
    """Captures descriptor 2 while the body imports TensorFlow and Keras."""
    if _verbose():
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        level = int(os.environ["TF_CPP_MIN_LOG_LEVEL"])
    except ValueError:
        level = 0
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            sys.stderr.buffer.write(filter_log(capture.read(), level))
            sys.stderr.flush()
