#!/usr/bin/env bash
# trove query benchmark: `find --count` at a million datasets, each query timed as a whole command (process
# start included, median of repeated runs), on the SQLite catalog and on a PostgreSQL catalog, next to a plain
# scan of the same metadata in the same run. Also the ingest of the million into each, the store's size, and
# the catch-up of a second machine's catalog after BENCH_CATCHUP_N datasets were written elsewhere. Run from
# the repository root:
#
#     bash bench/query.sh
#
# Environment (all optional):
#   TROVE_BIN         use this trove binary instead of building one
#   CARGO_TARGET_DIR  where to build (default: $HOME/.cache/trove-target)
#   BENCH_N           datasets (default 1000000)
#   BENCH_RUNS        runs of each query (default 15)
#   BENCH_TMP         parent of the scratch folder (default /tmp)
#   BENCH_CATALOGS    which catalogs: "sqlite postgres" (default), or one of them
#   BENCH_POSTGRES    a PostgreSQL server URL to use (default: a throwaway one, scripts/postgres-server)
#   BENCH_CATCHUP_N   datasets written "elsewhere" before a catch-up (default 100000; 0 skips it)
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

CATALOGS="${BENCH_CATALOGS:-sqlite postgres}"
PG_DIR=""
cleanup() {
    if [[ -n "$PG_DIR" ]]; then bash "$REPO/scripts/postgres-server" stop "$PG_DIR" || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
PG_SERVER="${BENCH_POSTGRES:-}"
if [[ " $CATALOGS " == *" postgres "* && -z "$PG_SERVER" ]]; then
    eval "$(bash "$REPO/scripts/postgres-server" start)"
    PG_SERVER="$TROVE_TEST_POSTGRES"
    PG_DIR="$TROVE_TEST_POSTGRES_DIR"
fi
# A new database on the server, by URL.
new_database() {
    local name="trove_bench_$1_$$"
    psql "$PG_SERVER" -qc "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name TEMPLATE template0" >/dev/null
    echo "${PG_SERVER%/*}/$name"
}
catalog_flag() {
    if [[ "$1" == postgres ]]; then echo "--catalog $(new_database "$2")"; fi
}

STORES=()
INGESTS=()
for catalog in $CATALOGS; do
    store="$WORK/store-$catalog"
    # shellcheck disable=SC2046
    "$TROVE" init "$store" $(catalog_flag "$catalog" q) >/dev/null
    log "ingest of $N datasets, $catalog catalog"
    t0=$(date +%s%N)
    "$TROVE" --store "$store" ingest "$WORK/records.jsonl" >&2
    t1=$(date +%s%N)
    if [[ "$catalog" == postgres ]]; then
        # What autovacuum does on its own within minutes of a bulk load (visibility map, planner statistics),
        # done now so that the queries below see the steady state; its time is printed.
        url=$(grep '^url' "$store/trove.toml" | cut -d'"' -f2)
        t2=$(date +%s%N)
        psql "$url" -qc "VACUUM (ANALYZE)" >&2
        t3=$(date +%s%N)
        log "VACUUM (ANALYZE) after the ingest: $(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s"
    fi
    STORES+=("$catalog=$store")
    INGESTS+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')")
done
STORE_MB=$(du -sm "$WORK/store-${CATALOGS%% *}" | cut -f1)
STORE_FILES=$(find "$WORK/store-${CATALOGS%% *}" -type f | wc -l)

python3 - "$TROVE" "$WORK" "$RUNS" "$STORE_MB" "$STORE_FILES" "$N" "${STORES[*]}" "${INGESTS[*]}" <<'PY'
import statistics, subprocess, sys, time
trove, work, runs, store_mb, files, n, stores, ingests = sys.argv[1:]
runs = int(runs)
stores = [s.split("=", 1) for s in stores.split()]
ingests = ingests.split()
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
names = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
print(f"\n{n} datasets: " + "; ".join(f"ingest into {names[c]} {t} s" for (c, _), t in zip(stores, ingests))
      + f"; store {store_mb} MB in {files} files ({names[stores[0][0]]} catalog)\n")
header = " | ".join(f"{names[c]} find (ms, median of {runs})" for c, _ in stores)
print(f"| query | {header} | matches | plain scan of the JSONL (ms) | scan / slowest |")
print("|---|" + "---|" * len(stores) + "---|---|---|")
for name, args, scan in queries:
    mode = [] if "--sort" in args else ["--count"]
    cells, outs = [], []
    for _, store in stores:
        ms, out = median_ms([trove, "--store", store, "find", *mode, *args])
        cells.append(ms)
        outs.append(out)
    assert len(set(outs)) == 1, f"the catalogs disagree on {name}: {outs}"
    count = outs[0] if mode else "10 rows"
    times = " | ".join(f"{ms:.1f}" for ms in cells)
    if scan:
        sms, sout = median_ms([f"{work}/scan", f"{work}/records.jsonl", scan], min(runs, 3))
        assert sout == outs[0], f"scan found {sout}, trove {outs[0]} for {name}"
        print(f"| {name} | {times} | {count} | {sms:.0f} | {sms / max(cells):.0f}x |")
    else:
        print(f"| {name} | {times} | {count} | | |")
PY

# The index design, measured on the PostgreSQL catalog just built (bench/pg_index.sh).
for pair in "${STORES[@]}"; do
    if [[ "${pair%%=*}" == postgres ]]; then
        bash "$REPO/bench/pg_index.sh" "$(grep '^url' "${pair#*=}/trove.toml" | cut -d'"' -f2)"
    fi
done

# Catch-up: datasets written "on another machine" (log-only: to the log alone), then the first command here
# merges them into this machine's catalog.
CATCHUP_N="${BENCH_CATCHUP_N:-100000}"
if (( CATCHUP_N > 0 )); then
    head -n "$CATCHUP_N" "$WORK/records.jsonl" > "$WORK/catchup.jsonl"
    echo
    echo "| catch-up of $CATCHUP_N datasets written elsewhere (in $(( (CATCHUP_N + 999) / 1000 )) commits) | seconds | datasets/s |"
    echo "|---|---|---|"
    for catalog in $CATALOGS; do
        store="$WORK/catchup-$catalog"
        # shellcheck disable=SC2046
        "$TROVE" init "$store" $(catalog_flag "$catalog" c) >/dev/null
        "$TROVE" --store "$store" --log-only ingest "$WORK/catchup.jsonl" >/dev/null
        t0=$(date +%s%N)
        "$TROVE" --store "$store" sync >/dev/null
        t1=$(date +%s%N)
        awk -v a="$t0" -v b="$t1" -v n="$CATCHUP_N" -v c="$catalog" \
            'BEGIN { s = (b - a) / 1e9; printf "| %s catalog | %.1f | %.0f |\n", (c == "sqlite" ? "SQLite" : "PostgreSQL"), s, n / s }'
    done
fi
