# Shared by the bench scripts (sourced, from the repository root).

log() { printf '\n== %s\n' "$*" >&2; }

# Sets TROVE to the trove binary to measure: $TROVE_BIN when given, else a release build in $CARGO_TARGET_DIR
# (default $HOME/.cache/trove-target). Prints its version on stderr.
trove_binary() {
    if [[ -n "${TROVE_BIN:-}" ]]; then
        [[ -x "$TROVE_BIN" ]] || { echo "bench: TROVE_BIN=$TROVE_BIN is not an executable file" >&2; exit 1; }
        TROVE="$(cd "$(dirname "$TROVE_BIN")" && pwd)/$(basename "$TROVE_BIN")"
    else
        export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/trove-target}"
        log "building trove (release) in $CARGO_TARGET_DIR"
        cargo build --release -p trove-cli >&2
        TROVE="$CARGO_TARGET_DIR/release/trove"
    fi
    "$TROVE" --version >&2
}
