#!/usr/bin/env bash
# trove bulk-edit benchmark: the peer workload's update and delete steps (issue 14). 10,000 datasets are
# ingested; then 1,000 tag edits and 1,000 deletes are made once by filter (`tag add --where`, `rm --where`,
# one process and one commit each) and once as the loop a script without bulk commands runs (one `trove`
# process, and one commit, per dataset), in the same run. Run from the repository root:
#
#     bash bench/bulk.sh
#
# Environment (all optional):
#   TROVE_BIN         use this trove binary instead of building one
#   CARGO_TARGET_DIR  where to build (default: $HOME/.cache/trove-target)
#   BENCH_N           datasets (default 10000)
#   BENCH_EDITS       datasets edited and deleted each way (default 1000)
#   BENCH_TMP         parent of the scratch folder (default /tmp)
set -euo pipefail
trap 'echo "bench: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
N="${BENCH_N:-10000}"
EDITS="${BENCH_EDITS:-1000}"
(( N >= 4 * EDITS )) || { echo "bench: BENCH_N must be at least 4 x BENCH_EDITS" >&2; exit 1; }

# shellcheck source=bench/lib.sh
source bench/lib.sh
trove_binary

WORK="$(mktemp -d "${BENCH_TMP:-/tmp}/trove-bulk.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
echo "bench: load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$N" "$WORK/records.jsonl" <<'PY'
import json, sys
n, out = int(sys.argv[1]), sys.argv[2]
with open(out, "w") as f:
    for i in range(n):
        f.write(json.dumps({"path": f"bench/runs/r{i:06d}", "metadata": {"i": i, "group": i % 10}}) + "\n")
PY
T() { "$TROVE" --store "$WORK/store" "$@"; }
"$TROVE" init "$WORK/store" >/dev/null
t0=$(date +%s%N); T ingest "$WORK/records.jsonl" >/dev/null; t1=$(date +%s%N)
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
INGEST=$(seconds "$t0" "$t1")

# Edits by filter: datasets [0, EDITS); the loop: [EDITS, 2 EDITS). Deletes: [2 EDITS, 3 EDITS) by filter,
# [3 EDITS, 4 EDITS) by the loop.
t0=$(date +%s%N); T tag add --where "i < $EDITS" reviewed >/dev/null; t1=$(date +%s%N)
TAG_BULK=$(seconds "$t0" "$t1")
t0=$(date +%s%N)
for ((i = EDITS; i < 2 * EDITS; i++)); do T tag add "bench/runs/r$(printf %06d "$i")" reviewed; done
t1=$(date +%s%N)
TAG_LOOP=$(seconds "$t0" "$t1")
t0=$(date +%s%N); T rm --yes --where "i >= $((2 * EDITS)) and i < $((3 * EDITS))" >/dev/null; t1=$(date +%s%N)
RM_BULK=$(seconds "$t0" "$t1")
t0=$(date +%s%N)
for ((i = 3 * EDITS; i < 4 * EDITS; i++)); do T rm "bench/runs/r$(printf %06d "$i")" >/dev/null; done
t1=$(date +%s%N)
RM_LOOP=$(seconds "$t0" "$t1")

TAGGED=$(T find --count '@tag == "reviewed"')
LEFT=$(T find --count)
[[ "$TAGGED" == "$((2 * EDITS))" && "$LEFT" == "$((N - 2 * EDITS))" ]] || {
    echo "bench: expected $((2 * EDITS)) tagged and $((N - 2 * EDITS)) left, found $TAGGED and $LEFT" >&2; exit 1; }

echo
echo "$N datasets ingested in $INGEST s; $EDITS datasets each way (load average at end: $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| step | by filter, one commit (s) | one process per dataset (s) | loop / filter |"
echo "|---|---|---|---|"
awk -v b="$TAG_BULK" -v l="$TAG_LOOP" -v n="$EDITS" 'BEGIN { printf "| %d tag edits | %s | %s | %.0fx |\n", n, b, l, l / b }'
awk -v b="$RM_BULK" -v l="$RM_LOOP" -v n="$EDITS" 'BEGIN { printf "| %d deletes | %s | %s | %.0fx |\n", n, b, l, l / b }'
