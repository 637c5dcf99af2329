# Sourced (not run) by tests/interop/run.sh and bench/formats.sh: makes or reuses the Python venv that the
# interoperability tests and the format benchmark use.
#
#     source tests/interop/venv.sh
#     trove_venv || echo "no venv: $TROVE_VENV_ERROR"
#
# trove_venv sets TROVE_VENV (the folder, default ${TROVE_VENV:-$HOME/.cache/trove-venv}) and TROVE_PY (its
# python). The venv is rebuilt from scratch only when tests/interop/requirements.txt or the Python version
# changes: a hash of both is kept in $TROVE_VENV/.trove-stamp, written after a complete install. On failure
# it returns 1 with the reason in TROVE_VENV_ERROR (and pip's output in $TROVE_VENV.log).
#
# Environment: TROVE_VENV (the folder), TROVE_PYTHON (the interpreter to build it from, default python3).

TROVE_INTEROP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

trove_venv() {
    TROVE_VENV="${TROVE_VENV:-$HOME/.cache/trove-venv}"
    TROVE_VENV_ERROR=""
    local python="${TROVE_PYTHON:-python3}"
    local req="$TROVE_INTEROP_DIR/requirements.txt"
    local log="$TROVE_VENV.log"
    local modules="import numpy, pandas, pyarrow, pyarrow.parquet, zarr, pytest, h5py, h5netcdf, astropy.io.fits, PIL.Image"
    # Cheap check for reuse (finds the packages without importing them).
    local present="import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ('numpy', 'pandas', 'pyarrow', 'zarr', 'pytest', 'h5py', 'h5netcdf', 'astropy', 'PIL', 'maturin', 'mypy')))"

    if ! command -v "$python" >/dev/null 2>&1; then
        TROVE_VENV_ERROR="$python is not installed"
        return 1
    fi
    local version
    if ! version="$("$python" -c 'import sys; print(sys.version.split()[0]); assert sys.version_info >= (3, 11)' 2>&1)"; then
        TROVE_VENV_ERROR="Python 3.11 or newer is needed; $python is ${version%%$'\n'*}"
        return 1
    fi
    local stamp
    stamp="$( { cat "$req"; echo "python $version"; } | sha256sum | cut -d' ' -f1)"
    TROVE_PY="$TROVE_VENV/bin/python"

    if [[ -x "$TROVE_PY" && "$(cat "$TROVE_VENV/.trove-stamp" 2>/dev/null)" == "$stamp" ]] \
        && "$TROVE_PY" -c "$present" >/dev/null 2>&1; then
        return 0
    fi

    # One builder at a time (the tests and the benchmark may start together); the lock is released when the
    # function returns.
    local lock_fd=""
    mkdir -p "$(dirname "$TROVE_VENV")"
    if command -v flock >/dev/null 2>&1 && exec {lock_fd}>"$TROVE_VENV.lock"; then
        flock "$lock_fd"
        trap "exec $lock_fd>&-; trap - RETURN" RETURN
        if [[ -x "$TROVE_PY" && "$(cat "$TROVE_VENV/.trove-stamp" 2>/dev/null)" == "$stamp" ]] \
            && "$TROVE_PY" -c "$present" >/dev/null 2>&1; then
            return 0
        fi
    fi

    echo "venv: building $TROVE_VENV (Python $version; pip output in $log)" >&2
    local started=$SECONDS
    if ! "$python" -m venv --clear "$TROVE_VENV" >"$log" 2>&1; then
        TROVE_VENV_ERROR="'$python -m venv $TROVE_VENV' failed: $(tail -n 3 "$log" | tr '\n' ' ')"
        return 1
    fi
    if ! "$TROVE_PY" -m pip install --disable-pip-version-check --no-input --only-binary=:all: \
        -r "$req" >>"$log" 2>&1; then
        TROVE_VENV_ERROR="pip install -r $req failed (see $log): $(grep -m 3 -iE 'error|could not' "$log" | tr '\n' ' ')"
        return 1
    fi
    if ! "$TROVE_PY" -c "$modules" >>"$log" 2>&1; then
        TROVE_VENV_ERROR="the packages installed but do not import (see $log): $(tail -n 1 "$log")"
        return 1
    fi
    echo "$stamp" >"$TROVE_VENV/.trove-stamp"
    echo "venv: ready in $((SECONDS - started)) s" >&2
    return 0
}
