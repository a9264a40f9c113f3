#!/usr/bin/env bash
# setup_tf.sh prepares the TensorFlow C library and the Python toolchain kerasgo
# builds and tests against, and prints the environment `go build`/`go test` need.
#
# Two routes:
#   * default: a pinned tensorflow-cpu wheel from PyPI, installed into a virtualenv
#     cached outside the repository ($KERASGO_CACHE, default $HOME/.cache/kerasgo).
#     The wheel ships the C API inside one of its shared libraries; this script finds
#     which one with `nm -D --defined-only` and exposes it to cgo as libtensorflow.so.
#   * TF_C_DIR=/path/to/libtensorflow (the official C tarball layout: include/, lib/):
#     the wheel is skipped for the C library. The Python venv is still made when
#     Python-side work (export, test data, parity checks) needs it.
#
# Usage: scripts/setup_tf.sh [--env] [--no-python]
#   --env        print only `export` lines (for eval / Makefile include)
#   --no-python  do not create the Python venv (only with TF_C_DIR)
#
# The script is idempotent: a second run only checks stamps and prints the environment.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${KERASGO_CACHE:-$HOME/.cache/kerasgo}
reqs="$here/requirements.txt"
reqs_nodeps="$here/requirements-nodeps.txt"
tf_version=$(sed -n 's/^tensorflow-cpu==\([0-9.]*\).*/\1/p' "$reqs")
venv="$cache/venv-tf$tf_version"
cdir="$cache/tf-c-$tf_version"

only_env=0
want_python=1
for arg in "$@"; do
	case "$arg" in
	--env) only_env=1 ;;
	--no-python) want_python=0 ;;
	*)
		echo "setup_tf.sh: unknown argument $arg" >&2
		exit 2
		;;
	esac
done

log() { [ "$only_env" = 1 ] || echo "setup_tf: $*" >&2; }

mkdir -p "$cache"

# --- Python virtualenv with the pinned wheel -------------------------------
stamp="$venv/.kerasgo-installed"
req_hash=$(cat "$reqs" "$reqs_nodeps" | sha256sum | cut -d' ' -f1)
if [ "$want_python" = 1 ] || [ -z "${TF_C_DIR:-}" ]; then
	if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$req_hash" ]; then
		log "creating $venv (first run downloads ~300 MB from PyPI; a few minutes)"
		python3 -m venv "$venv"
		"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$reqs" >&2
		"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$reqs_nodeps" >&2
		echo "$req_hash" >"$stamp"
	else
		log "venv $venv is up to date"
	fi
fi

# --- The C library -----------------------------------------------------------
if [ -n "${TF_C_DIR:-}" ]; then
	include="$TF_C_DIR/include"
	libdir="$TF_C_DIR/lib"
	if [ ! -f "$include/tensorflow/c/c_api.h" ] || ! ls "$libdir"/libtensorflow.so* >/dev/null 2>&1; then
		echo "setup_tf: TF_C_DIR=$TF_C_DIR does not look like libtensorflow (want include/tensorflow/c/c_api.h and lib/libtensorflow.so)" >&2
		exit 1
	fi
	log "using libtensorflow from TF_C_DIR=$TF_C_DIR"
else
	wheel=$("$venv/bin/python" -c 'import importlib.util,os;print(os.path.dirname(importlib.util.find_spec("tensorflow").origin))')
	include="$wheel/include"
	libdir="$cdir/lib"
	if [ ! -e "$libdir/libtensorflow.so" ]; then
		capi=""
		for lib in "$wheel"/libtensorflow_cc.so.2 "$wheel"/libtensorflow_framework.so.2; do
			if nm -D --defined-only "$lib" 2>/dev/null | grep -w TF_NewSession >/dev/null; then
				capi=$lib
				break
			fi
		done
		if [ -z "$capi" ]; then
			echo "setup_tf: no library in $wheel exports TF_NewSession" >&2
			exit 1
		fi
		log "C API (TF_NewSession) is exported by $(basename "$capi")"
		mkdir -p "$libdir"
		# The wheel splits the C API across two libraries (TF_DeleteStatus and
		# friends live in the framework library), so libtensorflow.so is a GNU ld
		# linker script: `-ltensorflow` then links both, by absolute path.
		printf 'INPUT(%s %s)\n' "$capi" "$wheel/libtensorflow_framework.so.2" >"$libdir/libtensorflow.so.tmp"
		mv "$libdir/libtensorflow.so.tmp" "$libdir/libtensorflow.so"
		basename "$capi" >"$cdir/capi-library"
	fi
fi

if [ -z "${TF_C_DIR:-}" ]; then
	rpath="-Wl,-rpath,$wheel"
	runtime_dir=$wheel
else
	rpath="-Wl,-rpath,$libdir"
	runtime_dir=$libdir
fi

cat <<EOF
export KERASGO_CACHE='$cache'
export KERASGO_PYTHON='$venv/bin/python'
export KERASGO_TF_LIBDIR='$libdir'
export CGO_ENABLED=1
export CGO_CFLAGS='-I$include'
export CGO_LDFLAGS='-L$libdir $rpath'
export LD_LIBRARY_PATH='$runtime_dir'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
EOF
[ "$only_env" = 1 ] || log "ready (repo $repo)"
