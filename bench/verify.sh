#!/usr/bin/env bash
# trove verify: re-hashing throughput (GB/s) against b3sum over the very same files, in two regimes: one big
# file (one file must use every core) and many small files (many files at once). Run from the repository
# root:
#
#     bash bench/verify.sh
#
# The page cache cannot be dropped here (no root over the host's caches in CI containers), so every
# command runs once to warm the cache (that time is printed on stderr), then VERIFY_REPEAT more times, in
# rounds that run every command once, and the median and best of those warm runs are reported. On a warm cache the figures measure hashing and
# file handling, not the disk.
#
# Environment (all optional):
#   TROVE_BIN          use this trove binary instead of building one
#   CARGO_TARGET_DIR   where to build (default: $HOME/.cache/trove-target)
#   VERIFY_BIG_MB      size of the big file in MiB (default 2048)
#   VERIFY_SMALL_N     number of small files (default 2000)
#   VERIFY_SMALL_KB    size of each small file in KiB (default 16)
#   VERIFY_REPEAT      warm runs of each command (default 3)
#   B3SUM              use this b3sum binary (default: b3sum on PATH, else installed into
#                      $HOME/.cache/trove-tools with `cargo install b3sum --locked`)
#   BENCH_TMP          parent of the scratch folder (default /tmp)
set -euo pipefail

trap 'echo "bench: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

BIG_MB="${VERIFY_BIG_MB:-2048}"
SMALL_N="${VERIFY_SMALL_N:-2000}"
SMALL_KB="${VERIFY_SMALL_KB:-16}"
REPEAT="${VERIFY_REPEAT:-3}"
DATASETS=10 # the small files are spread over this many datasets

command -v python3 >/dev/null || { echo "bench: python3 is needed (file generation)" >&2; exit 1; }
source bench/lib.sh

# ---------------------------------------------------------------------------------------------- binaries
trove_binary

TOOLS="$HOME/.cache/trove-tools"
if [[ -n "${B3SUM:-}" ]]; then
    [[ -x "$B3SUM" ]] || { echo "bench: B3SUM=$B3SUM is not an executable file" >&2; exit 1; }
elif command -v b3sum >/dev/null; then
    B3SUM="$(command -v b3sum)"
elif [[ -x "$TOOLS/bin/b3sum" ]]; then
    B3SUM="$TOOLS/bin/b3sum"
else
    log "installing b3sum into $TOOLS (cargo install b3sum --locked)"
    cargo install b3sum --locked --root "$TOOLS" >&2
    B3SUM="$TOOLS/bin/b3sum"
fi
"$B3SUM" --version >&2

WORK="$(mktemp -d "${BENCH_TMP:-/tmp}/trove-verify-bench.XXXXXX")"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
STORE="$WORK/store"
CORES="$(nproc)"
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench: $CORES cores; load average at start: $LOAD_START (other work on the machine skews every figure)" >&2
echo "bench: scratch folder $WORK ($(df -T "$WORK" | awk 'NR==2 { print $2 }'))" >&2

# ---------------------------------------------------------------------------------------------- the data
log "making the store: one ${BIG_MB} MiB file, $SMALL_N files of $SMALL_KB KiB"
"$TROVE" init "$STORE" --scratch >/dev/null
mkdir -p "$WORK/in/small"
dd if=/dev/urandom of="$WORK/in/big.bin" bs=1M count="$BIG_MB" status=none
"$TROVE" --store "$STORE" put lab/big "$WORK/in/big.bin" --reflink >/dev/null
rm -f "$WORK/in/big.bin"
python3 - "$SMALL_N" "$SMALL_KB" "$DATASETS" "$WORK/in/small" <<'PY'
import os, sys
n, kb, datasets, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
for d in range(datasets):
    os.makedirs(f"{out}/d{d:02d}", exist_ok=True)
for i in range(n):
    with open(f"{out}/d{i % datasets:02d}/f{i:05d}.bin", "wb") as f:
        f.write(os.urandom(kb * 1024))
PY
for d in "$WORK"/in/small/d*; do
    "$TROVE" --store "$STORE" put "lab/small/$(basename "$d")" "$d"/*.bin --reflink >/dev/null
done
rm -rf "$WORK/in"
BIG_FILE="$STORE/lab/big/big.bin"
find "$STORE/lab/small" -type f -print0 | sort -z >"$WORK/small.list"
BIG_BYTES="$(stat -c %s "$BIG_FILE")"
SMALL_BYTES="$(xargs -0 stat -c %s <"$WORK/small.list" | awk '{ s += $1 } END { print s }')"
ALL_BYTES=$((BIG_BYTES + SMALL_BYTES))

# The store's checksum of the big file is b3sum's: the same bytes, the same hash.
expected="$("$TROVE" --store "$STORE" show lab/big:big.bin --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["checksum"])')"
found="blake3:$("$B3SUM" --no-names "$BIG_FILE")"
[[ "$expected" == "$found" ]] || { echo "bench: the store's checksum $expected is not b3sum's $found" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------- timing
R="$WORK/results.txt"
: >"$R"

# The commands measured. Each prints to stdout (discarded).
trove_big() { "$TROVE" --store "$STORE" verify lab/big; }
trove_small() { "$TROVE" --store "$STORE" verify lab/small; }
trove_all() { "$TROVE" --store "$STORE" verify --all; }
b3sum_big() { "$B3SUM" --no-names "$BIG_FILE"; }
b3sum_big_one_core() { "$B3SUM" --no-names --num-threads 1 "$BIG_FILE"; }
b3sum_small_sequential() { xargs -0 "$B3SUM" --no-names <"$WORK/small.list"; }
b3sum_small_parallel() { xargs -0 -P "$CORES" -n 64 "$B3SUM" --no-names --num-threads 1 <"$WORK/small.list"; }
b3sum_all_sequential() { { printf '%s\0' "$BIG_FILE"; cat "$WORK/small.list"; } | xargs -0 "$B3SUM" --no-names; }

# name | bytes | files | function
MEASURES=(
    "1. big file: trove verify lab/big|$BIG_BYTES|1|trove_big"
    "1. big file: b3sum (all cores)|$BIG_BYTES|1|b3sum_big"
    "1. big file: b3sum --num-threads 1 (one core)|$BIG_BYTES|1|b3sum_big_one_core"
    "2. small files: trove verify lab/small|$SMALL_BYTES|$SMALL_N|trove_small"
    "2. small files: b3sum, one process, files in turn|$SMALL_BYTES|$SMALL_N|b3sum_small_sequential"
    "2. small files: b3sum, $CORES processes at once (xargs -P)|$SMALL_BYTES|$SMALL_N|b3sum_small_parallel"
    "3. everything: trove verify --all|$ALL_BYTES|$((SMALL_N + 1))|trove_all"
    "3. everything: b3sum, one process, files in turn|$ALL_BYTES|$((SMALL_N + 1))|b3sum_all_sequential"
)

# Wall time of one run in seconds, process start included; pending writeback is flushed first, untimed.
timed() {
    local t0 t1
    sync
    t0=$(date +%s%N)
    "$@" >/dev/null
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }'
}

# Round 0 warms the cache (printed, not counted); then REPEAT rounds, each running every command once, so
# that a change in background load hits all of them alike.
T="$WORK/times.txt"
: >"$T"
for round in $(seq 0 "$REPEAT"); do
    log "round $round of $REPEAT$([[ $round == 0 ]] && echo ' (warm-up, not counted)')"
    for i in "${!MEASURES[@]}"; do
        IFS='|' read -r name _ _ fn <<<"${MEASURES[$i]}"
        t=$(timed "$fn")
        echo "   ${t} s  $name" >&2
        [[ $round == 0 ]] || echo "$i $t" >>"$T"
    done
done
for i in "${!MEASURES[@]}"; do
    IFS='|' read -r name bytes files _ <<<"${MEASURES[$i]}"
    read -r median best < <(awk -v i="$i" '$1 == i { print $2 }' "$T" | sort -g |
        awk '{ t[NR] = $1 } END { printf "%s %s\n", t[int((NR + 1) / 2)], t[1] }')
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$bytes" "$files" "$median" "$best" >>"$R"
done

LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------------------------- report
mkdir -p "$REPO/bench/out"
python3 - "$R" "$CORES" "$LOAD_START" "$LOAD_END" "$("$TROVE" --version)" "$("$B3SUM" --version)" "$REPEAT" \
    >"$REPO/bench/out/verify-latest.md" <<'PY'
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
cores, load_start, load_end, trove, b3sum, repeat = sys.argv[2:8]
print("# trove verify vs b3sum\n")
print(f"{trove}, {b3sum}; {cores} cores; load average {load_start} at start, {load_end} at end.")
print(f"Warm page cache: one warm-up round, then {repeat} rounds running each command once; median and best")
print("of those (wall time, process start included).\n")
print("| command | files | bytes | median s | GB/s (median) | GB/s (best) |")
print("|---|---:|---:|---:|---:|---:|")
for name, nbytes, files, median, best in rows:
    nbytes, median, best = int(nbytes), float(median), float(best)
    print(f"| {name} | {files} | {nbytes:,} | {median:.3f} | {nbytes / median / 1e9:.2f} | {nbytes / best / 1e9:.2f} |")
PY
cat "$REPO/bench/out/verify-latest.md"
echo "bench: written to bench/out/verify-latest.md" >&2
