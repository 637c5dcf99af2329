#!/usr/bin/env bash
# The Python package's tests: builds the extension (crates/trove-py) into the test venv with `maturin develop`
# (dev profile, the shared target folder, so nothing is built twice), then runs pytest on tests/python against
# real stores and the real `trove` binary. Run from anywhere:
#
#     bash tests/python/run.sh [pytest arguments...]
#
# Uses the venv of tests/interop (venv.sh; maturin is pinned in its requirements). Exit status: 0 when every
# test passed; 1 when one failed, or when the venv cannot be made and CI is set (without CI, a missing venv
# prints a loud message and exits 0). Environment: TROVE_BIN (default: the debug build), CARGO_TARGET_DIR, CI.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
# shellcheck source=tests/interop/venv.sh
source tests/interop/venv.sh
if ! trove_venv; then
    echo "## PYTHON PACKAGE TESTS NOT RUN: could not make the Python venv: $TROVE_VENV_ERROR" >&2
    [[ -n "${CI:-}" ]] && exit 1
    exit 0
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/trove-target}"
if [[ -z "${TROVE_BIN:-}" ]]; then
    cargo build --quiet -p trove-cli || { echo "python: cargo build -p trove-cli failed" >&2; exit 1; }
    TROVE_BIN="$CARGO_TARGET_DIR/debug/trove"
fi
export TROVE_BIN
# maturin installs into the venv VIRTUAL_ENV names.
export VIRTUAL_ENV="$TROVE_VENV" PATH="$TROVE_VENV/bin:$PATH"
(cd crates/trove-py && maturin develop --quiet) || { echo "python: maturin develop failed" >&2; exit 1; }
"$TROVE_PY" -m pytest -q -p no:cacheprovider tests/python "$@"
status=$?
if [[ $status -ne 0 ]]; then
    echo "python: FAILED (pytest exit status $status)" >&2
    exit 1
fi
