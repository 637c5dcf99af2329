#!/usr/bin/env bash
# trove benchmark: bulk ingest, single-put latency, and 1 GiB put/get, each measured against a baseline in
# the same run. Run from the repository root:
#
#     bash bench/run.sh
#
# Prints a table at the end and writes it as Markdown to bench/out/latest.md. See bench/README.md.
#
# Environment (all optional):
#   TROVE_BIN          use this trove binary instead of building one
#   CARGO_TARGET_DIR   where to build (default: $HOME/.cache/trove-target-bench)
#   BENCH_N            datasets to ingest (default 100000)
#   BENCH_PUT_RUNS     single puts to time (default 100)
#   BENCH_BIG_MB       size of the big file in MiB (default 1024)
#   BENCH_REPEAT       rounds of the ingest and big-file measurements; the median is reported (default 3)
#   BENCH_TMP          parent of the scratch folder (default /tmp); big files and stores go there
set -euo pipefail

trap 'echo "bench: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

N="${BENCH_N:-100000}"
PUT_RUNS="${BENCH_PUT_RUNS:-100}"
BIG_MB="${BENCH_BIG_MB:-1024}"
REPEAT="${BENCH_REPEAT:-3}"
PREFIXES=100

command -v python3 >/dev/null || { echo "bench: python3 is needed (data generation and statistics)" >&2; exit 1; }
command -v rustc >/dev/null || { echo "bench: rustc is needed (to compile the baseline)" >&2; exit 1; }

log() { printf '\n== %s\n' "$*" >&2; }

# ---------------------------------------------------------------------------------------------- binary
if [[ -n "${TROVE_BIN:-}" ]]; then
    [[ -x "$TROVE_BIN" ]] || { echo "bench: TROVE_BIN=$TROVE_BIN is not an executable file" >&2; exit 1; }
    TROVE="$(cd "$(dirname "$TROVE_BIN")" && pwd)/$(basename "$TROVE_BIN")"
    SOURCE="the binary TROVE_BIN=$TROVE_BIN"
    log "using TROVE_BIN=$TROVE"
else
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/trove-target-bench}"
    log "building trove (release) in $CARGO_TARGET_DIR"
    cargo build --release -p trove-cli >&2
    TROVE="$CARGO_TARGET_DIR/release/trove"
    SOURCE="commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || echo ' with uncommitted changes in crates/')"
fi
"$TROVE" --version >&2

# Scratch folders of other runs are removed when they end: one that exists belongs to a run going on now
# (or one that was killed), and two benchmarks at once measure each other.
for other in "${BENCH_TMP:-/tmp}"/trove-bench.*; do
    if [[ -d "$other" ]]; then
        echo "bench: WARNING: $other exists: is another benchmark running? (delete it if not)" >&2
    fi
done
WORK="$(mktemp -d "${BENCH_TMP:-/tmp}/trove-bench.XXXXXX")"
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
R="$WORK/results.txt" # one "key value..." line per figure, rendered at the end
: >"$R"
put_result() { printf '%s\n' "$*" >>"$R"; }

# Runs a command with its stdout in $WORK/last.out, and sets the variable named $1 to the wall time in
# seconds (process start included). Pending writeback from earlier steps is flushed first, untimed.
timeit() {
    local __var=$1
    shift
    sync
    local t0 t1
    t0=$(date +%s%N)
    "$@" >"$WORK/last.out"
    t1=$(date +%s%N)
    printf -v "$__var" '%s' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')"
}

LOAD_START="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench: load average at start: $LOAD_START (other work on the machine skews every figure)" >&2
echo "bench: scratch folder $WORK ($(df -T "$WORK" | awk 'NR==2 { print $2 }'))" >&2

# ------------------------------------------------------------------------------------ 1. bulk ingest
log "1. ingest of $N datasets vs one folder + meta.json per record"
put_result load_1 "$(cut -d' ' -f1 /proc/loadavg)"
python3 - "$N" "$PREFIXES" "$WORK/records.jsonl" <<'PY'
import json, random, sys
n, prefixes, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(42)
materials = ["steel", "aluminium", "copper", "titanium", "PEEK", "glass"]
tags = ["calibration", "production", "pilot", "repeat", "outlier", "night", "day", "reviewed"]
with open(out, "w") as f:
    for i in range(n):
        rec = {
            "path": f"bench/runs/p{i % prefixes:03d}/r{i:06d}",
            "kind": "measurement",
            "metadata": {
                "material": rng.choice(materials),
                "temperature": round(rng.uniform(250.0, 400.0), 3),
                "pressure": rng.randrange(90_000, 110_000),
                "calibrated": rng.random() < 0.5,
            },
            "tags": rng.sample(tags, 2),
        }
        f.write(json.dumps(rec) + "\n")
PY
echo "bench: $(wc -l <"$WORK/records.jsonl") records, $(du -b "$WORK/records.jsonl" | cut -f1) bytes of JSONL" >&2
put_result input_bytes "$(du -b "$WORK/records.jsonl" | cut -f1)"

rustc -O --edition 2021 "$REPO/bench/baseline_files.rs" -o "$WORK/baseline_files"

# Rounds interleave the three runs, so that a change in background load hits all of them alike. Each
# round's baseline tree is kept until the end: deleting 100,000 inodes makes creating new ones slow for
# minutes on some file systems (ext4 without a journal skips recently deleted inodes), which would
# penalise the next round's baseline. trove's stores hold a dozen files, so they are simply replaced.
for round in $(seq 1 "$REPEAT"); do
    echo "-- round $round of $REPEAT" >&2
    rm -rf "$WORK/store-durable" "$WORK/store-nofsync"
    "$TROVE" init "$WORK/store-durable" >/dev/null
    "$TROVE" init "$WORK/store-nofsync" >/dev/null

    timeit t "$TROVE" --store "$WORK/store-durable" ingest "$WORK/records.jsonl"
    echo "trove ingest (durable):     ${t} s | $(cat "$WORK/last.out")" >&2
    put_result ingest_durable "$t"
    put_result ingest_durable_report "$(cat "$WORK/last.out")"

    timeit t "$TROVE" --no-fsync --store "$WORK/store-nofsync" ingest "$WORK/records.jsonl"
    echo "trove ingest --no-fsync:    ${t} s | $(cat "$WORK/last.out")" >&2
    put_result ingest_nofsync "$t"
    put_result ingest_nofsync_report "$(cat "$WORK/last.out")"

    timeit t "$WORK/baseline_files" "$WORK/records.jsonl" "$WORK/files-$round"
    echo "baseline (file per record): ${t} s | $(cat "$WORK/last.out")" >&2
    put_result ingest_baseline "$t"
    # what making the baseline durable costs afterwards: flushing its tree to disk (one `sync`, right after)
    t0=$(date +%s%N)
    sync
    t1=$(date +%s%N)
    put_result ingest_baseline_sync "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')"
done

sync
mv "$WORK/files-$REPEAT" "$WORK/files"
for what in store-durable files; do
    put_result "disk_$what" "$(du -sb "$WORK/$what" | cut -f1)" "$(du -s --block-size=1 "$WORK/$what" | cut -f1)" \
        "$(find "$WORK/$what" -type f | wc -l)" "$(find "$WORK/$what" -mindepth 1 -type d | wc -l)"
done
# the catalog checks out: every dataset is there
count=$("$TROVE" --store "$WORK/store-durable" ls bench -r --json | wc -l)
[[ "$count" == "$N" ]] || echo "bench: WARNING: ls bench -r lists $count datasets, expected $N" >&2
rm -rf "$WORK/store-durable" "$WORK/store-nofsync" # the baseline trees go at exit (see above)

# -------------------------------------------------------------------------------- 2. put latency
log "2. latency of one put (1 KiB file), $PUT_RUNS runs each, process start included"
put_result load_2 "$(cut -d' ' -f1 /proc/loadavg)"
head -c 1024 /dev/urandom >"$WORK/small.bin"
"$TROVE" init "$WORK/store-lat" >/dev/null
"$TROVE" init "$WORK/store-lat-nofsync" >/dev/null
sync
python3 - "$TROVE" "$WORK" "$PUT_RUNS" >>"$R" <<'PY'
import subprocess, sys, time
trove, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])

def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)

def run(cmd):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True)
    t1 = time.perf_counter()
    if p.returncode != 0:
        sys.stderr.write(f"bench: {' '.join(cmd)} failed ({p.returncode}): {p.stderr.decode()}\n")
        sys.exit(1)
    return (t1 - t0) * 1000

small = f"{work}/small.bin"
variants = {
    "put_durable": lambda i: [trove, "--store", f"{work}/store-lat", "put", f"bench/lat/d{i + 1:04d}", small,
                              "-m", f"run={i}", "-m", "material=steel", "-t", "latency"],
    "put_nofsync": lambda i: [trove, "--no-fsync", "--store", f"{work}/store-lat-nofsync", "put",
                              f"bench/lat/d{i + 1:04d}", small, "-m", f"run={i}", "-m", "material=steel",
                              "-t", "latency"],
    "version": lambda i: [trove, "--version"],
}
for make_cmd in variants.values():
    run(make_cmd(-1))  # warm-up (not counted)
# Interleaved, so that a burst of background activity hits every variant alike.
times = {name: [] for name in variants}
for i in range(runs):
    for name, make_cmd in variants.items():
        times[name].append(run(make_cmd(i)))
for name, ts in times.items():
    f = lambda x: f"{x:.2f}"
    print(f"lat_{name}", f(pct(ts, 0.5)), f(pct(ts, 0.9)), f(min(ts)), f(max(ts)))
    sys.stderr.write(f"{name}: median {pct(ts, 0.5):.2f} ms, p90 {pct(ts, 0.9):.2f} ms, "
                     f"min {min(ts):.2f}, max {max(ts):.2f}\n")
PY
rm -rf "$WORK/store-lat" "$WORK/store-lat-nofsync"

# ------------------------------------------------------------------------------- 3. big put / get
log "3. put and get of a ${BIG_MB} MiB file vs cp (same disk, warm page cache)"
put_result load_3 "$(cut -d' ' -f1 /proc/loadavg)"
BIG="$WORK/big/big.bin"
mkdir -p "$WORK/big"
head -c "${BIG_MB}M" /dev/urandom >"$BIG"
BYTES=$(stat -c %s "$BIG")
put_result big_bytes "$BYTES"
cp "$BIG" "$WORK/big/warm.bin" && rm "$WORK/big/warm.bin" # warm the cache once
"$TROVE" init "$WORK/store-big" >/dev/null
for round in $(seq 1 "$REPEAT"); do
    echo "-- round $round of $REPEAT" >&2
    timeit t cp "$BIG" "$WORK/big/cp.bin"
    put_result big_cp "$t"
    rm "$WORK/big/cp.bin"

    timeit t bash -c 'cp "$1" "$2" && sync "$2"' _ "$BIG" "$WORK/big/cpsync.bin"
    put_result big_cpsync "$t"
    rm "$WORK/big/cpsync.bin"

    timeit t "$TROVE" --store "$WORK/store-big" put "bench/big/d$round" "$BIG"
    put_result big_put_durable "$t"

    timeit t "$TROVE" --no-fsync --store "$WORK/store-big" put "bench/big/n$round" "$BIG"
    put_result big_put_nofsync "$t"

    timeit t "$TROVE" --store "$WORK/store-big" get "bench/big/d$round:big.bin" -o "$WORK/big/got.bin"
    put_result big_get "$t"
    cmp -s "$BIG" "$WORK/big/got.bin" || echo "bench: WARNING: get returned different bytes" >&2
    rm "$WORK/big/got.bin"

    timeit t bash -c 'cat "$1" >/dev/null' _ "$BIG"
    put_result big_cat_null "$t"

    timeit t bash -c '"$1" --store "$2" get "bench/big/d$3:big.bin" -o - >/dev/null' _ "$TROVE" "$WORK/store-big" "$round"
    put_result big_get_null "$t"

    "$TROVE" --store "$WORK/store-big" rm "bench/big/d$round" >/dev/null
    "$TROVE" --store "$WORK/store-big" rm "bench/big/n$round" >/dev/null
    tail -7 "$R" | tr '\n' ' ' | sed 's/big_//g; s/$/(seconds)\n/' >&2
done
rm -rf "$WORK/store-big" "$WORK/big"

# ------------------------------------------------------------------------------------------ report
mkdir -p "$REPO/bench/out"
{
    echo "date $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpus $(nproc)"
    echo "mem $(free -h | awk '/^Mem:/ { print $2 }')"
    echo "cpu $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "fs $(df -T "$WORK" | awk 'NR==2 { print $2 }')"
    echo "kernel $(uname -sr)"
    echo "load $LOAD_START at start, $(cut -d' ' -f1-3 /proc/loadavg) at end"
    echo "trove $("$TROVE" --version)"
    echo "source $SOURCE"
    echo "rustc $(rustc --version)"
    echo "n $N"
    echo "prefixes $PREFIXES"
    echo "put_runs $PUT_RUNS"
    echo "repeat $REPEAT"
} >>"$R"
python3 - "$R" "$REPO/bench/out/latest.md" <<'PY'
import statistics, sys
rows = {}  # key -> every value recorded under it, in order
for line in open(sys.argv[1]):
    key, _, rest = line.rstrip("\n").partition(" ")
    rows.setdefault(key, []).append(rest)
one = lambda key: rows[key][-1]
times = lambda key: [float(v) for v in rows[key]]
med = lambda key: statistics.median(times(key))
N = int(one("n"))
REPEAT = int(one("repeat"))

def spread(key, fmt="{:.2f}"):
    ts = times(key)
    return fmt.format(statistics.median(ts)) + " s" + (
        f" ({fmt.format(min(ts))}–{fmt.format(max(ts))})" if len(ts) > 1 else "")

md = []
md.append("# trove benchmark")
md.append("")
md.append(f"{one('date')}; {one('cpus')} CPUs ({one('cpu')}), {one('mem')} RAM, {one('fs')}, {one('kernel')}; "
          f"{one('trove')} from {one('source')}, release build; {one('rustc')}.")
md.append("")
md.append(f"Load average (1, 5, 15 min): {one('load')}; 1-min load as each section began: "
          f"{one('load_1')}, {one('load_2')}, {one('load_3')} (this benchmark alone adds about 1). Times are medians of {REPEAT} rounds "
          "(min–max in brackets), wall-clock, whole command, process start included.")
md.append("")
md.append(f"## 1. Ingest of {N:,} datasets")
md.append("")
md.append(f"4 metadata keys (string, float, int, bool), 2 tags, no files; {int(one('prefixes'))} path prefixes "
          f"(`bench/runs/pNNN/rNNNNNN`); {int(one('input_bytes')):,} bytes of JSONL; a fresh store each round.")
md.append("")
md.append("| run | wall time | datasets/s | speed vs baseline | aim: ≥ 50,000/s and > 10x baseline |")
md.append("|---|---:|---:|---:|---|")
base = N / med("ingest_baseline")
for key, label in [("ingest_durable", "`trove ingest` (durable, fsync per commit)"),
                   ("ingest_nofsync", "`trove --no-fsync ingest`")]:
    r = N / med(key)
    ok = r >= 50_000 and r / base > 10
    md.append(f"| {label} | {spread(key)} | {r:,.0f} | {r / base:.2f}x | {'met' if ok else 'NOT met'} |")
md.append(f"| baseline: folder + `meta.json` per record (`bench/baseline_files.rs`, no fsync) | "
          f"{spread('ingest_baseline')} | {base:,.0f} | 1.00x | |")
bs = statistics.median(a + b for a, b in zip(times("ingest_baseline"), times("ingest_baseline_sync")))
warn = [k for k in ("ingest_durable", "ingest_nofsync", "ingest_baseline") if max(times(k)) > 1.5 * min(times(k))]
md.append(f"| baseline, then `sync` (its tree flushed to disk) | {bs:.2f} s | {N / bs:,.0f} | "
          f"{(N / bs) / base:.2f}x | |")
md.append("")
if warn:
    md.append("**Warning**: the rounds of " + ", ".join(warn) + " differ by more than 1.5x: the machine was "
              "not quiet (load, or the file system still busy with an earlier run's deletions); rerun later.")
    md.append("")
md.append("trove's own report, last round: durable `" + one("ingest_durable_report") + "`; --no-fsync `"
          + one("ingest_nofsync_report") + "`.")
md.append("")
md.append("| on disk (last round) | apparent size (`du -sb`) | allocated (`du -s`) | files | folders |")
md.append("|---|---:|---:|---:|---:|")
for key, label in [("disk_store-durable", "trove store (durable ingest)"),
                   ("disk_files", "baseline tree")]:
    b, a, f, d = (int(x) for x in one(key).split(" "))
    md.append(f"| {label} | {b / 1e6:.1f} MB | {a / 1e6:.1f} MB | {f:,} | {d:,} |")
md.append("")
md.append(f"## 2. Latency of one `put` (1 KiB file, new path each time, {one('put_runs')} runs)")
md.append("")
md.append("| command | median | p90 | min | max |")
md.append("|---|---:|---:|---:|---:|")
for key, label in [("lat_put_durable", "`trove put` (durable)"),
                   ("lat_put_nofsync", "`trove --no-fsync put`"),
                   ("lat_version", "`trove --version` (process start, for reference)")]:
    m, p90, lo, hi = (float(x) for x in one(key).split(" "))
    md.append(f"| {label} | {m:.1f} ms | {p90:.1f} ms | {lo:.1f} ms | {hi:.1f} ms |")
md.append("")
B = int(one("big_bytes"))
md.append(f"## 3. One {B / 2**30:.2f} GiB file ({B / 1e6:,.0f} MB) vs `cp`, same disk, warm page cache")
md.append("")
md.append("MB/s = 10^6 bytes/s, from the median time. \"vs `cp`\" = this command's median time / `cp`'s "
          "(lower is better).")
md.append("")
md.append("| command | time | MB/s | vs `cp` | vs `cp` + `sync FILE` |")
md.append("|---|---:|---:|---:|---:|")
cp, cps = med("big_cp"), med("big_cpsync")
for key, label in [("big_cp", "`cp` (no fsync)"),
                   ("big_cpsync", "`cp` + `sync FILE` (durable copy)"),
                   ("big_put_durable", "`trove put` (durable: BLAKE3 + fsync)"),
                   ("big_put_nofsync", "`trove --no-fsync put`"),
                   ("big_get", "`trove get -o FILE` (verifies BLAKE3; fsyncs the output)"),
                   ("big_cat_null", "`cat FILE > /dev/null` (read only)"),
                   ("big_get_null", "`trove get -o - > /dev/null` (read + verify)")]:
    t = med(key)
    md.append(f"| {label} | {spread(key)} | {B / 1e6 / t:,.0f} | {t / cp:.2f}x | {t / cps:.2f}x |")
md.append("")
text = "\n".join(md) + "\n"
open(sys.argv[2], "w").write(text)
print(text)
PY
echo "bench: written to bench/out/latest.md" >&2
