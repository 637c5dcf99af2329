#!/usr/bin/env bash
# trove benchmark: `trove sync --scan` over 100,000 files in 10,000 dataset folders, against a plain
# `find` over the same tree in the same run. Run from the repository root:
#
#     bash bench/scan.sh
#
# Two stores are measured:
#   by hand   the 10,000 folders are made by hand (10 small files each); the first scan finds them all and
#             records 10,000 new datasets (hashing every file, detecting every format).
#   ingested  the same files are brought in by `trove ingest` (JSON Lines with "files"), so trove knows them;
#             the first scan hashes every file once and records nothing.
# For each: the first scan, a no-op rescan (the cache answers for every file: nothing hashed, no commit), and a
# rescan after 100 files were changed in place (100 files hashed, one commit of 100 new versions).
#
# Environment (all optional):
#   TROVE_BIN          use this trove binary instead of building one
#   CARGO_TARGET_DIR   where to build (default: $HOME/.cache/trove-target)
#   BENCH_FOLDERS      dataset folders (default 10000)
#   BENCH_FILES        files per folder (default 10)
#   BENCH_TMP          parent of the scratch folder (default /tmp)
set -euo pipefail

trap 'echo "bench: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

FOLDERS="${BENCH_FOLDERS:-10000}"
FILES="${BENCH_FILES:-10}"
TOUCHED=100

command -v python3 >/dev/null || { echo "bench: python3 is needed (to make the tree)" >&2; exit 1; }
source bench/lib.sh

trove_binary

WORK="$(mktemp -d "${BENCH_TMP:-/tmp}/trove-bench-scan.XXXXXX")"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench: load average at start: $LOAD_START; $(nproc) cores; scratch folder $WORK ($(df -T "$WORK" | awk 'NR==2 { print $2 }'))" >&2

# Sets the variable named $1 to the wall time of the command in seconds (process start included); its
# stdout goes to $WORK/last.out. Pending writeback is flushed first, untimed.
timeit() {
    local __var=$1
    shift
    sync
    local t0 t1
    t0=$(date +%s%N)
    "$@" >"$WORK/last.out"
    t1=$(date +%s%N)
    printf -v "$__var" '%s' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')"
}

# A tree of FOLDERS dataset folders (under 100 prefixes) of FILES small CSV and text files each, and the
# JSON Lines that ingest the same files.
make_tree() {
    python3 - "$1" "$FOLDERS" "$FILES" "$2" <<'EOF'
import json, os, sys
root, folders, files, jsonl = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open(jsonl, "w") as out:
    for d in range(folders):
        rel = f"bench/p{d % 100:03d}/d{d:05d}"
        folder = os.path.join(root, rel)
        os.makedirs(folder, exist_ok=True)
        entry = {"path": rel, "metadata": {"n": d}, "files": {}}
        for f in range(files):
            name = f"f{f}.csv" if f % 2 == 0 else f"f{f}.txt"
            path = os.path.join(folder, name)
            with open(path, "w") as fh:
                if name.endswith(".csv"):
                    fh.write("run,value\n" + "".join(f"{d},{f * 1000 + i}\n" for i in range(8)))
                else:
                    fh.write(f"dataset {d} file {f}\n" * 4)
            entry["files"][name] = path
        out.write(json.dumps(entry) + "\n")
EOF
}

# Changes TOUCHED files in place (one line appended), spread over the tree.
touch_files() {
    python3 - "$1" "$FOLDERS" "$TOUCHED" <<'EOF'
import os, sys
root, folders, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for k in range(n):
    d = k * (folders // n)
    with open(os.path.join(root, f"bench/p{d % 100:03d}/d{d:05d}/f1.txt"), "a") as fh:
        fh.write("edited by hand\n")
EOF
}

summary() { tail -n 1 "$WORK/last.out"; }

log "making $FOLDERS folders x $FILES files by hand"
HAND="$WORK/hand"
"$TROVE" init "$HAND" --scratch >/dev/null
make_tree "$HAND" "$WORK/ingest.jsonl"
sleep 1 # let the new files' timestamps settle (the scan cache keeps only settled files)

log "baselines"
timeit T_FIND find "$HAND/bench" -type f
N_FILES="$(wc -l <"$WORK/last.out")"
timeit T_STAT find "$HAND/bench" -type f -printf '%s %T@\n'

log "by hand: first scan"
timeit T_HAND_FIRST "$TROVE" --store "$HAND" sync --scan
S_HAND_FIRST="$(summary)"
log "by hand: no-op rescan"
timeit T_HAND_NOOP "$TROVE" --store "$HAND" sync --scan
S_HAND_NOOP="$(summary)"
touch_files "$HAND"
sleep 1
log "by hand: rescan after $TOUCHED files changed"
timeit T_HAND_TOUCH "$TROVE" --store "$HAND" sync --scan
S_HAND_TOUCH="$(summary)"

log "ingested: trove ingest of the same files"
ING="$WORK/ingested"
"$TROVE" init "$ING" --scratch >/dev/null
timeit T_INGEST "$TROVE" --store "$ING" ingest "$WORK/ingest.jsonl"
rm -rf "$HAND"
sleep 1
log "ingested: first scan"
timeit T_ING_FIRST "$TROVE" --store "$ING" sync --scan
S_ING_FIRST="$(summary)"
log "ingested: no-op rescan"
timeit T_ING_NOOP "$TROVE" --store "$ING" sync --scan
S_ING_NOOP="$(summary)"
touch_files "$ING"
sleep 1
log "ingested: rescan after $TOUCHED files changed"
timeit T_ING_TOUCH "$TROVE" --store "$ING" sync --scan
S_ING_TOUCH="$(summary)"

LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
cat <<EOF

trove sync --scan: $N_FILES files in $FOLDERS folders ($(nproc) cores; load average $LOAD_START at start, $LOAD_END at end)

| what                                                  | seconds |
|-------------------------------------------------------|--------:|
| baseline: find -type f                                | $T_FIND |
| baseline: find -type f -printf '%s %T@' (stat walk)   | $T_STAT |
| by hand: first scan (records $FOLDERS new datasets)   | $T_HAND_FIRST |
| by hand: no-op rescan                                 | $T_HAND_NOOP |
| by hand: rescan after $TOUCHED files changed in place      | $T_HAND_TOUCH |
| trove ingest of the same files (for the next rows)   | $T_INGEST |
| ingested: first scan (hashes every file, no commit)   | $T_ING_FIRST |
| ingested: no-op rescan                                | $T_ING_NOOP |
| ingested: rescan after $TOUCHED files changed in place     | $T_ING_TOUCH |

by hand, first:   $S_HAND_FIRST
by hand, no-op:   $S_HAND_NOOP
by hand, touched: $S_HAND_TOUCH
ingested, first:  $S_ING_FIRST
ingested, no-op:  $S_ING_NOOP
ingested, touched: $S_ING_TOUCH
EOF
