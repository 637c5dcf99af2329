#!/usr/bin/env bash
# Interoperability tests: numpy, pandas, pyarrow and zarr-python read what trove writes, and trove keeps what
# they write, through the real `trove` binary. Run from anywhere:
#
#     bash tests/interop/run.sh [pytest arguments...]
#
# Makes or reuses a venv with pinned packages (tests/interop/venv.sh, requirements.txt), builds the debug
# binary unless TROVE_BIN is given, and runs pytest on tests/interop. Exit status: 0 when every test passed;
# 1 when one failed, or when the venv cannot be made and CI is set (without CI, a venv that cannot be made
# prints a loud message and exits 0, so that a machine without PyPI can still run the Rust tests).
#
# Environment: TROVE_BIN (the binary to test; default: build $CARGO_TARGET_DIR/debug/trove), CARGO_TARGET_DIR
# (default $HOME/.cache/trove-target), TROVE_VENV (default $HOME/.cache/trove-venv), TROVE_PYTHON (python3), CI.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
# shellcheck source=tests/interop/venv.sh
source tests/interop/venv.sh

if ! trove_venv; then
    {
        echo
        echo "######################################################################################"
        echo "## INTEROP TESTS NOT RUN: could not make the Python venv: $TROVE_VENV_ERROR"
        echo "######################################################################################"
        echo
    } >&2
    if [[ -n "${CI:-}" ]]; then
        exit 1
    fi
    exit 0
fi

if [[ -n "${TROVE_BIN:-}" ]]; then
    [[ -x "$TROVE_BIN" ]] || { echo "interop: TROVE_BIN=$TROVE_BIN is not an executable file" >&2; exit 1; }
    TROVE_BIN="$(cd "$(dirname "$TROVE_BIN")" && pwd)/$(basename "$TROVE_BIN")"
else
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/trove-target}"
    # A no-op when the binary is up to date (as after `cargo test`); never tests a stale binary.
    cargo build --quiet -p trove-cli || { echo "interop: cargo build -p trove-cli failed" >&2; exit 1; }
    TROVE_BIN="$CARGO_TARGET_DIR/debug/trove"
fi
export TROVE_BIN
echo "interop: $("$TROVE_BIN" --version) ($TROVE_BIN), $("$TROVE_PY" -c 'import numpy, pandas, pyarrow, zarr; print(f"numpy {numpy.__version__}, pandas {pandas.__version__}, pyarrow {pyarrow.__version__}, zarr {zarr.__version__}")')"

# No .pytest_cache in the repository; the tests' stores go to pytest's tmp_path.
"$TROVE_PY" -m pytest -q -p no:cacheprovider tests/interop "$@"
status=$?
if [[ $status -ne 0 ]]; then
    echo "interop: FAILED (pytest exit status $status)" >&2
    exit 1
fi
