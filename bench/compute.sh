#!/usr/bin/env bash
# trove benchmark: get-or-compute from the shell (`trove compute`), against doing the same by hand in the same
# run. Run from the repository root:
#
#     bash bench/compute.sh
#
# Measured, on a durable store (fsync on) that holds BENCH_RESULTS derived results made by `trove compute`:
#   miss      `trove compute` of a new key with a trivial command (one small output file): lookup, lease,
#             run, hash, commit, move. Baseline: the same command run by hand, then `trove put` of its output.
#   hit       `trove compute` of a stored key (nothing runs). Baselines: `trove find --ids "@lineage == KEY"`
#             (the same process start and indexed lookup), and `trove --version` (process start alone).
#   flight    8 processes asking at once for one new key whose command takes 2 s: wall time and how many
#             times the command ran (1 is single flight; 8 runs would be 2 s of work each, in parallel).
#
# Environment (all optional):
#   TROVE_BIN          use this trove binary instead of building one
#   CARGO_TARGET_DIR   where to build (default: $HOME/.cache/trove-target)
#   BENCH_RESULTS      derived results in the store before timing (default 1000)
#   BENCH_RUNS         timed runs of each single-process measurement (default 100)
#   BENCH_TMP          parent of the scratch folder (default /tmp)
set -euo pipefail

trap 'echo "bench: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

RESULTS="${BENCH_RESULTS:-1000}"
RUNS="${BENCH_RUNS:-100}"
source bench/lib.sh

trove_binary

WORK="$(mktemp -d "${BENCH_TMP:-/tmp}/trove-bench-compute.XXXXXX")"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
echo "bench: load average at start: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; scratch folder $WORK ($(df -T "$WORK" | awk 'NR==2 { print $2 }'))" >&2

STORE="$WORK/store"
"$TROVE" init "$STORE" >/dev/null
export TROVE_STORE="$STORE"
echo "1 2 3" >"$WORK/raw.txt"
"$TROVE" put lab/raw "$WORK/raw.txt" >/dev/null

now() { date +%s%N; }
# Milliseconds per run between two `now` readings over $2 runs.
per_run() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f", (b - a) / 1e6 / n }'; }

# `trove compute NAME` of $2 new keys (config i = 0..$2-1), each writing one small file; sets the variable
# named $3 to the milliseconds per run.
compute_many() {
    local t0 t1
    t0=$(now)
    for ((i = 0; i < $2; i++)); do
        "$TROVE" compute "$1" --version 1 --config "i=$i" --input lab/raw:raw.txt -- \
            sh -c 'echo "$TROVE_CONFIG" > "$TROVE_OUTPUT/r.txt"' >/dev/null 2>&1
    done
    t1=$(now)
    printf -v "$3" '%s' "$(per_run "$t0" "$t1" "$2")"
}

log "filling the store with $RESULTS derived results"
compute_many fill "$RESULTS" T_FILL

log "miss: $RUNS new keys"
compute_many step "$RUNS" T_MISS

log "baseline: the same command by hand, then trove put"
t0=$(now)
for ((i = 0; i < RUNS; i++)); do
    mkdir -p "$WORK/out$i"
    TROVE_OUTPUT="$WORK/out$i" TROVE_CONFIG="{\"i\":$i}" sh -c 'echo "$TROVE_CONFIG" > "$TROVE_OUTPUT/r.txt"'
    "$TROVE" put "lab/byhand/$i" "$WORK/out$i/r.txt" >/dev/null
done
t1=$(now)
T_BYHAND=$(per_run "$t0" "$t1" "$RUNS")

log "hit: $RUNS lookups of stored keys"
KEY="$("$TROVE" show "$("$TROVE" compute step --version 1 --config i=0 --input lab/raw:raw.txt -- false 2>/dev/null)" --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["lineage"]["key"])')"
t0=$(now)
for ((i = 0; i < RUNS; i++)); do
    "$TROVE" compute step --version 1 --config "i=$((i % RUNS))" --input lab/raw:raw.txt -- false >/dev/null 2>&1
done
t1=$(now)
T_HIT=$(per_run "$t0" "$t1" "$RUNS")
t0=$(now)
for ((i = 0; i < RUNS; i++)); do
    "$TROVE" find "@lineage == '$KEY'" --ids >/dev/null
done
t1=$(now)
T_FIND=$(per_run "$t0" "$t1" "$RUNS")
t0=$(now)
for ((i = 0; i < RUNS; i++)); do
    "$TROVE" --version >/dev/null
done
t1=$(now)
T_START=$(per_run "$t0" "$t1" "$RUNS")

log "flight: 8 processes, one new key, a 2 s command"
COUNTER="$WORK/flight-runs"
t0=$(now)
for ((p = 0; p < 8; p++)); do
    "$TROVE" compute flight --version 1 --input lab/raw:raw.txt -- \
        sh -c "echo run >> '$COUNTER'; sleep 2; echo done > \"\$TROVE_OUTPUT/r.txt\"" >"$WORK/flight.$p" 2>/dev/null &
done
wait
t1=$(now)
T_FLIGHT=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
FLIGHT_RUNS=$(wc -l <"$COUNTER")
FLIGHT_REFS=$(cat "$WORK"/flight.* | sort -u | wc -l)

cat <<REPORT

trove compute, durable store holding $RESULTS derived results (release build, $(nproc) cores)

  filling: trove compute (miss)          $T_FILL ms per result
  miss: trove compute, new key           $T_MISS ms     baseline: command + trove put  $T_BYHAND ms
  hit:  trove compute, stored key        $T_HIT ms     baseline: trove find @lineage  $T_FIND ms; process start $T_START ms
  flight: 8 processes, one key, 2 s cmd  $T_FLIGHT s wall; the command ran $FLIGHT_RUNS time(s); $FLIGHT_REFS distinct ref(s) printed
REPORT
