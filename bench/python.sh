#!/usr/bin/env bash
# The Python package against signac 2.4 on the issue-15 workload (bench/python_peers.py), in the same run.
#
#     bash bench/python.sh [--n 10000 100000] [--big 1000000]
#
# Makes a venv at $BENCH_VENV (default ~/.cache/trove-bench-venv) with the pinned packages of the interop
# tests plus signac (bench/python-requirements.txt), builds the extension in release mode into it
# (maturin develop --release, into $CARGO_TARGET_DIR, default ~/.cache/trove-target-bench), then runs the
# workload. Figures on stdout (Markdown), progress on stderr. About 4 minutes after the build at the
# default sizes; --big 1000000 adds about 2 minutes.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="${BENCH_VENV:-$HOME/.cache/trove-bench-venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/trove-target-bench}"
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --only-binary=:all: -r tests/interop/requirements.txt -r bench/python-requirements.txt >&2
echo "building the extension (release) into $VENV" >&2
(cd crates/trove-py && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" maturin develop --release --quiet) >&2
"$VENV/bin/python" bench/python_peers.py "$@"
