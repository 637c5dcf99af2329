#!/usr/bin/env bash
# trove's data objects against the tools scientists use for the same job, in the same run:
#   1. a 1 GiB random file: trove put / get vs cp and cp + sync;
#   2. a 10^8-element float64 array (800 MB .npy): trove put --as zarr, get --as npy and a 1% slice vs
#      np.save, np.load and np.load(mmap_mode) (and zarr-python reading the slice from trove's Zarr);
#   3. a 10^7-row, 5-column CSV (int, float, float, category, timestamp): trove put --as parquet and
#      get --as csv / --as arrow vs pyarrow (csv.read_csv + pq.write_table(zstd), pq.read_table, ...).
# Run by hand from anywhere (needs a release build, ~6 GB free, and the Python venv of tests/interop):
#
#     bash bench/formats.sh
#
# Prints progress on stderr and Markdown tables on stdout, also written to bench/out/formats.md (git-ignored).
# Each figure is the median of ROUNDS rounds, with the range; rounds interleave trove and its baselines.
# trove figures are wall times of the whole command (process start included; `date +%s%N` around it) and
# the peak RSS from GNU time (%M). Baseline figures are timed inside Python (time.perf_counter around the
# job, imports and process start excluded) with the peak RSS of that process (getrusage). Before each timed
# step `sync` runs (untimed). Caches are warm: the inputs are read once before the rounds. trove's put and
# get fsync what they write; the baselines are shown without and with an fsync of their output.
#
# Environment (all optional):
#   TROVE_BIN         benchmark this binary (default: cargo build --release -p trove-cli, in CARGO_TARGET_DIR)
#   CARGO_TARGET_DIR  default $HOME/.cache/trove-target
#   BENCH_DIR         parent of the scratch folder (default /work/bench-tmp): choose the disk to measure
#   ROUNDS            rounds per figure (default 3)
#   BIG_MB            size of the random file in MiB (default 1024)
#   ARRAY_N           elements of the array (default 100000000)
#   TABLE_ROWS        rows of the table (default 10000000)
#   SECTIONS          which sections to run (default "file array table")
#   TROVE_VENV        the venv (default $HOME/.cache/trove-venv; made by tests/interop/venv.sh)
# Quick smoke test: ROUNDS=1 BIG_MB=16 ARRAY_N=1000000 TABLE_ROWS=100000 bash bench/formats.sh
set -euo pipefail
trap 'echo "bench/formats: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

ROUNDS="${ROUNDS:-3}"
BIG_MB="${BIG_MB:-1024}"
ARRAY_N="${ARRAY_N:-100000000}"
TABLE_ROWS="${TABLE_ROWS:-10000000}"
SECTIONS="${SECTIONS:-file array table}"
BENCH_DIR="${BENCH_DIR:-/work/bench-tmp}"

log() { printf '\n== %s\n' "$*" >&2; }
[[ -x /usr/bin/time ]] || { echo "bench/formats: GNU time (/usr/bin/time) is needed: apt-get install time" >&2; exit 1; }

# ---------------------------------------------------------------------------------------- venv, binary
# shellcheck source=tests/interop/venv.sh
source tests/interop/venv.sh
trove_venv || { echo "bench/formats: could not make the Python venv: $TROVE_VENV_ERROR" >&2; exit 1; }
PY="$TROVE_PY"
HELPER="$REPO/bench/formats_baseline.py"

if [[ -n "${TROVE_BIN:-}" ]]; then
    [[ -x "$TROVE_BIN" ]] || { echo "bench/formats: TROVE_BIN=$TROVE_BIN is not an executable file" >&2; exit 1; }
    TROVE="$(cd "$(dirname "$TROVE_BIN")" && pwd)/$(basename "$TROVE_BIN")"
    SOURCE="the binary $TROVE"
else
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/trove-target}"
    log "building trove (release) in $CARGO_TARGET_DIR"
    cargo build --release -p trove-cli >&2
    TROVE="$CARGO_TARGET_DIR/release/trove"
    SOURCE="commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || echo ' with uncommitted changes in crates/')"
fi
"$TROVE" --version >&2

# ---------------------------------------------------------------------------------------- scratch, disk
mkdir -p "$BENCH_DIR"
for other in "$BENCH_DIR"/formats.*; do
    [[ -d "$other" ]] && echo "bench/formats: WARNING: $other exists: is another benchmark running? (delete it if not)" >&2
done
# Bytes each section needs at its peak: inputs, the store's copy, exports and the baselines' outputs.
need=0
for s in $SECTIONS; do
    case "$s" in
        file) n=$((BIG_MB * 1048576 * 4)) ;;
        array) n=$((ARRAY_N * 8 * 4)) ;;
        table) n=$((TABLE_ROWS * 300)) ;;
        *) echo "bench/formats: unknown section $s (file, array, table)" >&2; exit 1 ;;
    esac
    ((n > need)) && need=$n
done
need=$((need + 512 * 1048576))
free=$(df --output=avail -B1 "$BENCH_DIR" | tail -n 1)
if ((free < need)); then
    echo "bench/formats: $BENCH_DIR has $((free / 1000000)) MB free; this run needs about $((need / 1000000)) MB" >&2
    exit 1
fi
W="$(mktemp -d "$BENCH_DIR/formats.XXXXXX")"
cleanup() { rm -rf "$W"; }
trap cleanup EXIT
R="$W/results.txt" # "KEY SECONDS RSS_KB", one line per round
SPEC="$W/spec.tsv" # how to show each figure (see formats_baseline.py render)
: >"$R"
: >"$SPEC"
NOTES=()
spec() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$SPEC"; } # SECTION KEY LABEL BYTES ROWS BASELINES
size_of() { du -sb "$1" | cut -f1; }
mb() { awk -v b="$1" 'BEGIN { printf "%.0f MB", b / 1e6 }'; }

# measure KEY COMMAND...: runs COMMAND (stdout to /dev/null) after an untimed sync; records the wall time of
# the whole process and its peak RSS.
measure() {
    local key=$1
    shift
    sync
    local t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$W/rss.txt" "$@" >/dev/null
    t1=$(date +%s%N)
    echo "$key $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }') $(tail -n 1 "$W/rss.txt")" >>"$R"
}

# baseline KEY SYNC_KEY HELPER_ARGS...: a timed job of formats_baseline.py; SYNC_KEY ("-" for none) also
# records the job plus the fsync of its output.
baseline() {
    local key=$1 sync_key=$2
    shift 2
    sync
    local line
    line="$("$PY" "$HELPER" "$@")"
    "$PY" - "$key" "$sync_key" "$line" >>"$R" <<'PY'
import json, sys
key, sync_key, r = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
print(f"{key} {r['seconds']:.4f} {r['rss_kb']}")
if sync_key != "-":
    print(f"{sync_key} {r['seconds'] + r['fsync']:.4f} {r['rss_kb']}")
PY
}

fresh_store() {
    rm -rf "$W/store"
    "$TROVE" init "$W/store" >/dev/null
}
TS=("$TROVE" --store "$W/store") # for measure (a command, not a function)
T() { "${TS[@]}" "$@"; }

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench/formats: scratch folder $W ($(df -T "$W" | awk 'NR==2 { print $2 }')), load average $LOAD_START" >&2

# ---------------------------------------------------------------------------------------- 1. big file
if [[ " $SECTIONS " == *" file "* ]]; then
    SEC="1. a $BIG_MB MiB random file"
    log "$SEC"
    head -c "$((BIG_MB * 1048576))" /dev/urandom >"$W/blob.bin"
    BYTES=$(size_of "$W/blob.bin")
    cat "$W/blob.bin" >/dev/null
    for round in $(seq 1 "$ROUNDS"); do
        echo "-- round $round of $ROUNDS" >&2
        fresh_store
        measure file_put "${TS[@]}" put lab/big "$W/blob.bin"
        rm -f "$W/out.bin"
        measure file_get "${TS[@]}" get lab/big:blob.bin -o "$W/out.bin"
        rm -f "$W/out.bin" "$W/cp.bin"
        measure cp cp "$W/blob.bin" "$W/cp.bin"
        rm -f "$W/cp.bin"
        measure cp_sync sh -c 'cp "$1" "$2" && sync "$2"' sh "$W/blob.bin" "$W/cp.bin"
        rm -f "$W/cp.bin"
    done
    spec "$SEC" file_put "trove put (fsynced)" "$BYTES" 0 cp,cp_sync
    spec "$SEC" file_get "trove get -o FILE (verified, fsynced)" "$BYTES" 0 cp,cp_sync
    spec "$SEC" cp "cp" "$BYTES" 0 -
    spec "$SEC" cp_sync "cp + sync FILE" "$BYTES" 0 -
    rm -rf "$W/store" "$W/blob.bin" "$W/out.bin" "$W/cp.bin"
fi

# ---------------------------------------------------------------------------------------- 2. array
if [[ " $SECTIONS " == *" array "* ]]; then
    SEC="2. a float64 array of $ARRAY_N elements (.npy)"
    log "$SEC"
    "$PY" "$HELPER" gen-array "$ARRAY_N" "$W/a.npy"
    BYTES=$(size_of "$W/a.npy")
    SLICE=$((ARRAY_N / 100))
    SLICE_BYTES=$((SLICE * 8))
    cat "$W/a.npy" >/dev/null
    for round in $(seq 1 "$ROUNDS"); do
        echo "-- round $round of $ROUNDS" >&2
        fresh_store
        measure arr_put "${TS[@]}" put lab/arr "$W/a.npy" --as zarr
        rm -rf "$W/out.npy"
        measure arr_get "${TS[@]}" get lab/arr:a.zarr --as npy -o "$W/out.npy"
        rm -f "$W/out.npy"
        measure arr_cat "${TS[@]}" cat lab/arr:a.zarr --slice "0:$SLICE"
        baseline zarr_slice - zarr-slice "$(T locate lab/arr:a.zarr)" 0 "$SLICE"
        baseline np_save np_save_sync np-save "$W/a.npy" "$W/b.npy"
        rm -f "$W/b.npy"
        baseline np_load - np-load "$W/a.npy"
        baseline np_mmap - np-mmap-slice "$W/a.npy" 0 "$SLICE"
    done
    ZARR="$(T locate lab/arr:a.zarr)"
    NOTES+=("Array: trove's Zarr folder holds $(find "$ZARR" -type f | wc -l) files, $(mb "$(size_of "$ZARR")") (the .npy: $(mb "$BYTES")); $(T cat lab/arr:a.zarr --head 1 | head -n 1).")
    NOTES+=("Array: \`trove cat --slice\` reads only the elements it prints (a preview), so its row is the latency of a slice preview, not a read of the whole 1% slice; the zarr-python row reads the whole slice from trove's Zarr.")
    spec "$SEC" arr_put "trove put --as zarr" "$BYTES" 0 np_save,np_save_sync
    spec "$SEC" arr_get "trove get --as npy -o FILE" "$BYTES" 0 np_load
    spec "$SEC" arr_cat "trove cat --slice 0:$SLICE (1%, preview)" "$SLICE_BYTES" 0 np_mmap
    spec "$SEC" zarr_slice "zarr-python: trove's Zarr [0:$SLICE] (1%)" "$SLICE_BYTES" 0 np_mmap
    spec "$SEC" np_save "np.save" "$BYTES" 0 -
    spec "$SEC" np_save_sync "np.save + fsync" "$BYTES" 0 -
    spec "$SEC" np_load "np.load" "$BYTES" 0 -
    spec "$SEC" np_mmap "np.load(mmap_mode='r')[0:$SLICE] copied (1%)" "$SLICE_BYTES" 0 -
    rm -rf "$W/store" "$W/a.npy" "$W/b.npy" "$W/out.npy"
fi

# ---------------------------------------------------------------------------------------- 3. table
if [[ " $SECTIONS " == *" table "* ]]; then
    SEC="3. a CSV table of $TABLE_ROWS rows, 5 columns (int, float, float, category, timestamp)"
    log "$SEC"
    "$PY" "$HELPER" gen-table "$TABLE_ROWS" "$W/t.csv"
    BYTES=$(size_of "$W/t.csv")
    cat "$W/t.csv" >/dev/null
    for round in $(seq 1 "$ROUNDS"); do
        echo "-- round $round of $ROUNDS" >&2
        fresh_store
        measure tab_put "${TS[@]}" put lab/tab "$W/t.csv" --as parquet
        rm -f "$W/out.csv" "$W/out.arrow"
        measure tab_csv "${TS[@]}" get lab/tab:t.parquet --as csv -o "$W/out.csv"
        rm -f "$W/out.csv"
        measure tab_arrow "${TS[@]}" get lab/tab:t.parquet --as arrow -o "$W/out.arrow"
        rm -f "$W/out.arrow"
        baseline pa_read_trove - pa-read-parquet "$(T locate lab/tab:t.parquet)"
        rm -f "$W/b.parquet"
        baseline pa_c2p pa_c2p_sync pa-csv2parquet "$W/t.csv" "$W/b.parquet"
        baseline pa_read - pa-read-parquet "$W/b.parquet"
        baseline pa_p2c pa_p2c_sync pa-parquet2csv "$W/b.parquet" "$W/b.csv"
        rm -f "$W/b.csv"
        baseline pa_p2a pa_p2a_sync pa-parquet2arrow "$W/b.parquet" "$W/b.arrow"
        rm -f "$W/b.arrow"
    done
    NOTES+=("Table: the CSV is $(mb "$BYTES"); trove's Parquet $(mb "$(size_of "$(T locate lab/tab:t.parquet)")"), pyarrow's (zstd) $(mb "$(size_of "$W/b.parquet")"). Throughput is CSV bytes (and rows) per second for every row.")
    spec "$SEC" tab_put "trove put --as parquet" "$BYTES" "$TABLE_ROWS" pa_c2p,pa_c2p_sync
    spec "$SEC" tab_csv "trove get --as csv -o FILE" "$BYTES" "$TABLE_ROWS" pa_p2c,pa_p2c_sync
    spec "$SEC" tab_arrow "trove get --as arrow -o FILE" "$BYTES" "$TABLE_ROWS" pa_p2a,pa_p2a_sync
    spec "$SEC" pa_read_trove "pq.read_table of trove's Parquet" "$BYTES" "$TABLE_ROWS" pa_read
    spec "$SEC" pa_c2p "pyarrow csv.read_csv + pq.write_table(zstd)" "$BYTES" "$TABLE_ROWS" -
    spec "$SEC" pa_c2p_sync "the same + fsync" "$BYTES" "$TABLE_ROWS" -
    spec "$SEC" pa_read "pq.read_table of pyarrow's Parquet" "$BYTES" "$TABLE_ROWS" -
    spec "$SEC" pa_p2c "pq.read_table + csv.write_csv" "$BYTES" "$TABLE_ROWS" -
    spec "$SEC" pa_p2c_sync "the same + fsync" "$BYTES" "$TABLE_ROWS" -
    spec "$SEC" pa_p2a "pq.read_table + Arrow IPC file" "$BYTES" "$TABLE_ROWS" -
    spec "$SEC" pa_p2a_sync "the same + fsync" "$BYTES" "$TABLE_ROWS" -
    rm -rf "$W/store" "$W/t.csv" "$W/b.parquet" "$W/b.csv" "$W/b.arrow" "$W/out.csv" "$W/out.arrow"
fi

# ---------------------------------------------------------------------------------------- report
mkdir -p bench/out
{
    echo "## trove data objects vs numpy, pyarrow and cp"
    echo
    echo "$SOURCE ($("$TROVE" --version)); $("$PY" -c 'import numpy, pyarrow, zarr, sys; print(f"Python {sys.version.split()[0]}, numpy {numpy.__version__}, pyarrow {pyarrow.__version__}, zarr {zarr.__version__}")');"
    echo "$(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB; scratch on $(df -T "$W" | awk 'NR==2 { print $2 }'); load average $LOAD_START at start, $(cut -d' ' -f1-3 /proc/loadavg) at end."
    echo "Median of $ROUNDS rounds. trove: wall time of the whole command and GNU time's peak RSS; baselines: the job"
    echo "timed inside Python (no process start or imports) and the process's peak RSS (interpreter and imports included)."
    echo "Throughput: bytes of the input (10^6 bytes = 1 MB) per second. The last column is trove's throughput"
    echo "divided by each baseline's (above 1: trove is faster)."
    "$PY" "$HELPER" render "$R" "$SPEC"
    echo
    for note in "${NOTES[@]+"${NOTES[@]}"}"; do
        echo "- $note"
    done
} | tee bench/out/formats.md
