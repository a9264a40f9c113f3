"""Checks of tfquiet: TensorFlow's start-up lines stay off stderr, errors do not."""

import os
import subprocess
import sys

import pytest

import tfquiet

NOTICE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
INFO = b"I0000 00:00:1796108636.197356    5104 port.cc:153] oneDNN custom operations are on.\n"
INFO_CONT = (b"I0000 00:00:1796108713.796122    5350 cpu_feature_guard.cc:227] optimized\n"
             b"To enable the following instructions: AVX2 FMA.\n")
WARN = b"W1201 07:01:33.123456    5104 op_kernel.cc:1840] OP_REQUIRES failed\n"
ERR = b"E0000 00:00:1796108713.796122    5350 loader.cc:12] Failed to read the bundle\n"
OLD_ERR = b"2024-01-02 03:04:05.000006: E tensorflow/core/framework/op.cc:9] broken\n"
OTHER = b"Traceback (most recent call last):\n"


@pytest.mark.parametrize("data,level,want", [
    (NOTICE + INFO + WARN + ERR, 0, NOTICE + INFO + WARN + ERR),
    (NOTICE + INFO + WARN + ERR, 1, WARN + ERR),
    (NOTICE + INFO + WARN + ERR + OLD_ERR, 2, ERR + OLD_ERR),
    (INFO_CONT + ERR + b"  detail\n" + INFO, 2, ERR + b"  detail\n"),
    (OTHER + INFO, 2, OTHER),
    (ERR.rstrip(b"\n"), 2, ERR),
    (b"", 2, b""),
], ids=["info", "warning", "error", "continuation", "other text", "no newline", "empty"])
def test_filter_log(data, level, want):
    assert tfquiet.filter_log(data, level) == want


def run_import(env_extra):
    scripts = os.path.dirname(os.path.abspath(tfquiet.__file__))
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERASGO_VERBOSE")}
    env.update(env_extra)
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from tfquiet import quiet_startup\n"
            "with quiet_startup():\n"
            "    import tensorflow as tf\n"
            "tf.constant(1.0)\n"
            "sys.stderr.write('after\\n')\n") % scripts
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)


def test_import_is_quiet():
    r = run_import({})
    assert r.stderr == b"after\n"


def test_errors_after_import_still_show():
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERASGO_VERBOSE")}
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from tfquiet import quiet_startup\n"
            "with quiet_startup():\n"
            "    import tensorflow\n"
            "raise SystemExit('boom')\n") % os.path.dirname(os.path.abspath(tfquiet.__file__))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
    assert r.returncode == 1 and r.stderr == b"boom\n"
