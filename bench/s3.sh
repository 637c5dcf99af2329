#!/usr/bin/env bash
# trove on S3: put and get of one large file next to `aws s3 cp` (awscli from PyPI) against the same
# SeaweedFS endpoint in the same run; `trove transfer` of many small datasets next to `aws s3 sync` of the same
# files; what a Parquet column read and a 1% Zarr slice fetch against the object's size; and `sync --full` of a
# store whose log is in the bucket, next to the same rebuild from a folder. Run from the repository root:
#
#     bash bench/s3.sh
#
# Environment (all optional):
#   TROVE_BIN          use this trove binary instead of building one (release)
#   CARGO_TARGET_DIR   where to build (default: $HOME/.cache/trove-target)
#   BENCH_BIG_MIB      size of the large file in MiB (default 1024)
#   BENCH_SMALL_N      small datasets transferred (default 10000)
#   BENCH_SYNC_N       datasets of the store rebuilt by `sync --full` (default 1000000; 0 skips it)
#   BENCH_RUNS         runs of each put/get (default 3; the median is reported)
#   BENCH_TMP          parent of the scratch folder (default /tmp)
set -euo pipefail
trap 'echo "bench: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
BIG_MIB="${BENCH_BIG_MIB:-1024}"
SMALL_N="${BENCH_SMALL_N:-10000}"
SYNC_N="${BENCH_SYNC_N:-1000000}"
RUNS="${BENCH_RUNS:-3}"

# shellcheck source=bench/lib.sh
source bench/lib.sh
trove_binary

WORK="$(mktemp -d "${BENCH_TMP:-/tmp}/trove-s3bench.XXXXXX")"
log "S3 server (scripts/s3-server)"
eval "$(bash scripts/s3-server start)"
cleanup() { bash scripts/s3-server stop "$TROVE_TEST_S3_DIR" || true; rm -rf "$WORK"; }
trap cleanup EXIT
export AWS_ACCESS_KEY_ID="$TROVE_TEST_S3_KEY" AWS_SECRET_ACCESS_KEY="$TROVE_TEST_S3_SECRET"
export AWS_ENDPOINT_URL="$TROVE_TEST_S3_ENDPOINT" AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true
export TROVE_CACHE="$WORK/cache"
BUCKET="$TROVE_TEST_S3_BUCKET"

log "awscli (PyPI, in a venv of its own)"
AWS_VENV="${TROVE_AWSCLI_VENV:-$HOME/.cache/trove-awscli-venv}"
[[ -x "$AWS_VENV/bin/aws" ]] || { python3 -m venv "$AWS_VENV" && "$AWS_VENV/bin/pip" install -q awscli==1.44.*; }
AWS="$AWS_VENV/bin/aws"
"$AWS" --version >&2

# Seconds a command takes (wall clock), its output discarded.
seconds() {
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.3f}')"
}
median() { python3 -c "import statistics, sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.3f}')" "$@"; }
rate() { python3 -c "print(f'{$1 / 1048576 / $2:.1f}')"; }

echo "bench: load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "## trove on S3 (SeaweedFS $(~/.cache/trove-s3-venv/bin/weed version 2>/dev/null | head -1 | awk '{print $3}') on 127.0.0.1)"

log "1. a ${BIG_MIB} MiB file: trove put/get against aws s3 cp"
head -c "$((BIG_MIB * 1048576))" /dev/urandom > "$WORK/big.bin"
BYTES=$((BIG_MIB * 1048576))
"$TROVE" init "s3://$BUCKET/big" >/dev/null
tp=(); tg=(); ap=(); ag=()
for run in $(seq 1 "$RUNS"); do
    tp+=("$(seconds "$TROVE" --store "s3://$BUCKET/big" put "lab/r$run" "$WORK/big.bin")")
    rm -f "$WORK/back.bin"
    tg+=("$(seconds "$TROVE" --store "s3://$BUCKET/big" get "lab/r$run:big.bin" -o "$WORK/back.bin")")
    ap+=("$(seconds "$AWS" s3 cp --only-show-errors "$WORK/big.bin" "s3://$BUCKET/aws/big$run.bin")")
    rm -f "$WORK/back.bin"
    ag+=("$(seconds "$AWS" s3 cp --only-show-errors "s3://$BUCKET/aws/big$run.bin" "$WORK/back.bin")")
done
cmp "$WORK/big.bin" "$WORK/back.bin"
TP=$(median "${tp[@]}"); TG=$(median "${tg[@]}"); AP=$(median "${ap[@]}"); AG=$(median "${ag[@]}")
echo
echo "| ${BIG_MIB} MiB, median of $RUNS | trove | aws s3 cp | trove / aws (speed) |"
echo "|---|---|---|---|"
echo "| upload (put) | $TP s ($(rate "$BYTES" "$TP") MiB/s) | $AP s ($(rate "$BYTES" "$AP") MiB/s) | $(python3 -c "print(f'{$AP / $TP:.2f}x')") |"
echo "| download (get, verified) | $TG s ($(rate "$BYTES" "$TG") MiB/s) | $AG s ($(rate "$BYTES" "$AG") MiB/s) | $(python3 -c "print(f'{$AG / $TG:.2f}x')") |"
rm -f "$WORK/big.bin" "$WORK/back.bin"

log "2. transfer of $SMALL_N small datasets against aws s3 sync of the same files"
"$TROVE" init "$WORK/local" >/dev/null
mkdir -p "$WORK/files"
python3 - "$SMALL_N" "$WORK/files" "$WORK/small.jsonl" <<'PY'
import json, os, sys
n, folder, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(out, "w") as f:
    for i in range(n):
        f.write(json.dumps({"path": f"lab/s/r{i:06d}", "metadata": {"i": i}}) + "\n")
        d = os.path.join(folder, f"r{i:06d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "v.txt"), "w") as g:
            g.write(f"value {i}\n" * 20)
PY
"$TROVE" --store "$WORK/local" ingest "$WORK/small.jsonl" >/dev/null
# The objects: one small file a dataset, placed in the dataset folders and recorded by `sync --scan`.
python3 - "$SMALL_N" "$WORK/files" "$WORK/local" <<'PY'
import os, shutil, sys
n, folder, store = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for i in range(n):
    target = os.path.join(store, "lab", "s", f"r{i:06d}")
    os.makedirs(target, exist_ok=True)
    shutil.copy(os.path.join(folder, f"r{i:06d}", "v.txt"), os.path.join(target, "v.txt"))
PY
"$TROVE" --store "$WORK/local" sync --scan >/dev/null
"$TROVE" init "s3://$BUCKET/small" >/dev/null
TT=$(seconds "$TROVE" --store "$WORK/local" transfer lab --to "s3://$BUCKET/small" --jobs 8)
AS=$(seconds "$AWS" s3 sync --only-show-errors "$WORK/files" "s3://$BUCKET/aws-small")
TR=$(seconds "$TROVE" --store "$WORK/local" transfer lab --to "s3://$BUCKET/small" --jobs 8)
echo
echo "| $SMALL_N datasets, one small file each | seconds |"
echo "|---|---|"
echo "| trove transfer folder → S3 (--jobs 8; metadata committed too) | $TT |"
echo "| aws s3 sync of the same files | $AS |"
echo "| trove transfer again (nothing to send) | $TR |"

log "3. a Parquet column and a 1% Zarr slice read from S3: bytes fetched against the object's size"
# Byte counts, not times: the test that asserts them prints them (debug build, the test target folder).
FIGURES=$(TROVE_TEST_S3_ENDPOINT="$TROVE_TEST_S3_ENDPOINT" CARGO_TARGET_DIR="${TEST_TARGET_DIR:-$HOME/.cache/trove-target}" \
    cargo test -q -p trove --test s3_reads -- --nocapture 2>/dev/null | grep "fetched")
echo
echo "| read from S3 | bytes fetched |"
echo "|---|---|"
while IFS= read -r line; do echo "| ${line%%:*} | ${line#*: } |"; done <<< "$FIGURES"

if [[ "$SYNC_N" -gt 0 ]]; then
    log "4. sync --full of $SYNC_N datasets whose log is in the bucket, against the same from a folder"
    python3 - "$SYNC_N" "$WORK/many.jsonl" <<'PY'
import json, sys
n = int(sys.argv[1])
with open(sys.argv[2], "w") as f:
    for i in range(n):
        f.write(json.dumps({"path": f"bench/p{i % 100:03d}/r{i:07d}", "metadata": {"i": i, "t": i / 7}}) + "\n")
PY
    "$TROVE" init "s3://$BUCKET/many" >/dev/null
    IS=$(seconds "$TROVE" --store "s3://$BUCKET/many" ingest "$WORK/many.jsonl")
    "$TROVE" init "$WORK/many-local" >/dev/null
    IL=$(seconds "$TROVE" --store "$WORK/many-local" ingest "$WORK/many.jsonl")
    SS=$(seconds "$TROVE" --store "s3://$BUCKET/many" sync --full)
    SL=$(seconds "$TROVE" --store "$WORK/many-local" sync --full)
    SEGMENTS=$(find "$WORK/many-local/.trove/log" -type f | wc -l)
    rm -rf "$TROVE_CACHE"
    FIRST=$(seconds "$TROVE" --store "s3://$BUCKET/many" find --count 'i >= 0')
    echo
    echo "| $SYNC_N datasets | log in the bucket | log in a folder |"
    echo "|---|---|---|"
    echo "| ingest | $IS s | $IL s |"
    echo "| sync --full (catalog rebuilt from the log) | $SS s | $SL s |"
    echo "| a new machine's first command (empty cache: catalog built, then the query) | $FIRST s | - |"
    echo "(log segments: $SEGMENTS)"
fi
