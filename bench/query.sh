#!/usr/bin/env bash
# trove query benchmark: `find --count` at a million datasets, each query timed as a whole command (process
# start included, median of repeated runs), next to a plain scan of the same metadata in the same run. Also
# the ingest of the million and the store's size. Run from the repository root:
#
#     bash bench/query.sh
#
# Environment (all optional):
#   TROVE_BIN         use this trove binary instead of building one
#   CARGO_TARGET_DIR  where to build (default: $HOME/.cache/trove-target)
#   BENCH_N           datasets (default 1000000)
#   BENCH_RUNS        runs of each query (default 15)
#   BENCH_TMP         parent of the scratch folder (default /tmp)
set -euo pipefail
trap 'echo "bench: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
N="${BENCH_N:-1000000}"
RUNS="${BENCH_RUNS:-15}"
command -v python3 >/dev/null || { echo "bench: python3 is needed (data generation and statistics)" >&2; exit 1; }
command -v rustc >/dev/null || { echo "bench: rustc is needed (to compile the scan baseline)" >&2; exit 1; }

# shellcheck source=bench/lib.sh
source bench/lib.sh
trove_binary

WORK="$(mktemp -d "${BENCH_TMP:-/tmp}/trove-qbench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
echo "bench: load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# 4 keys of mixed types (a string of 10 values, a float, an integer that is "n/a" in 1% of datasets, a
# boolean), an array of 1-3 of 5 channel names, a 2-element array of dimensions, 2 tags of 10 each, 100 path
# prefixes.
python3 - "$N" "$WORK/records.jsonl" <<'PY'
import json, random, sys
n, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(42)
materials = ["steel", "aluminium", "copper", "titanium", "PEEK", "glass", "brass", "nickel", "tungsten", "quartz"]
tags = ["calibration", "production", "pilot", "repeat", "outlier", "night", "day", "reviewed", "archived", "shared"]
with open(out, "w") as f:
    for i in range(n):
        rec = {"path": f"bench/runs/p{i % 100:03d}/r{i:07d}", "kind": "measurement",
               "metadata": {"material": rng.choice(materials), "temperature": round(rng.uniform(200.0, 400.0), 3),
                            "pressure": rng.randrange(90_000, 110_000) if rng.random() < 0.99 else "n/a",
                            "calibrated": rng.random() < 0.5,
                            "channels": rng.sample(["R", "G", "B", "IR", "UV"], rng.randint(1, 3)),
                            "dims": [rng.choice([10, 20, 50, 100]), rng.choice([10, 20, 50, 100])]},
               "tags": rng.sample(tags, 2)}
        f.write(json.dumps(rec) + "\n")
PY

# The baseline: a compiled program that parses every line of the JSONL and evaluates the same predicate.
rustc -O --edition 2021 "$REPO/bench/scan_jsonl.rs" -o "$WORK/scan"

"$TROVE" init "$WORK/store" >/dev/null
t0=$(date +%s%N)
"$TROVE" --store "$WORK/store" ingest "$WORK/records.jsonl" >&2
t1=$(date +%s%N)
INGEST_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
STORE_MB=$(du -sm "$WORK/store" | cut -f1)
STORE_FILES=$(find "$WORK/store" -type f | wc -l)

python3 - "$TROVE" "$WORK" "$RUNS" "$INGEST_S" "$STORE_MB" "$STORE_FILES" "$N" <<'PY'
import statistics, subprocess, sys, time
trove, work, runs, ingest_s, store_mb, files, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:]
store = f"{work}/store"
queries = [
    ("equality", ['material == "steel"'], "eq"),
    ("1% range", ["temperature >= 300 and temperature < 302"], "range"),
    ("tag", ['@tag == "pilot"'], "tag"),
    ("3-term AND (SPEC example)", ['material == "steel" and temperature >= 300 and temperature < 310'], "and3"),
    ("3-term AND (large terms)", ['material == "steel" and temperature >= 300 and @tag == "pilot"'], "and3big"),
    ("OR of two ranges", ["temperature < 201 or temperature > 399"], "or"),
    ("sort -temperature limit 10", ["--sort", "-temperature", "--limit", "10"], None),
    ("not exists", ["not exists(calibrated)"], None),
    ("array element (contains)", ['channels contains "IR"'], None),
    ("array equality", ["dims == [10, 20]"], None),
    ("array length", ["size(channels) == 3"], None),
    ("element AND scalar", ['channels contains "UV" and material == "steel"'], None),
    ("MongoDB element match", ["--filter-json", '{"channels": "IR"}'], None),
]
def median_ms(cmd, repeat=runs):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True)
        times.append((time.perf_counter() - t0) * 1000)
        if p.returncode != 0:
            sys.exit(f"bench: {cmd} failed: {p.stderr.decode()}")
    return statistics.median(times), p.stdout.decode().strip()
print(f"\n{n} datasets: ingest {ingest_s} s; store {store_mb} MB in {files} files\n")
print(f"| query | trove find (ms, median of {runs}) | matches | plain scan of the JSONL (ms) | scan / trove |")
print("|---|---|---|---|---|")
for name, args, scan in queries:
    mode = [] if "--sort" in args else ["--count"]
    ms, out = median_ms([trove, "--store", store, "find", *mode, *args])
    count = out if mode else "10 rows"
    if scan:
        sms, sout = median_ms([f"{work}/scan", f"{work}/records.jsonl", scan], min(runs, 3))
        assert sout == out, f"scan found {sout}, trove {out} for {name}"
        print(f"| {name} | {ms:.1f} | {count} | {sms:.0f} | {sms / ms:.0f}x |")
    else:
        print(f"| {name} | {ms:.1f} | {count} | | |")
PY
