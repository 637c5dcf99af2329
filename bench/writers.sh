#!/usr/bin/env bash
# trove benchmark: aggregate puts per second with 1, 2, 8 and 32 concurrent writer processes, with the
# catalog kept up to date and with --log-only, against a baseline of the same processes each copying one
# small JSON file per put (what a sidecar-file tool such as signac does). Run from the repository root:
#
#     bash bench/writers.sh
#
# Environment (all optional):
#   TROVE_BIN      use this trove binary instead of building one (release)
#   PUTS           puts per configuration, shared among the writers (default 1600)
#   WRITERS        writer counts (default "1 2 8 32")
#   BENCH_DIR      parent of the scratch folder (default /work/bench-tmp)
set -euo pipefail
trap 'echo "bench/writers: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PUTS="${PUTS:-1600}"
WRITERS="${WRITERS:-1 2 8 32}"
BENCH_DIR="${BENCH_DIR:-/work/bench-tmp}"
source bench/lib.sh
trove_binary

mkdir -p "$BENCH_DIR"
WORK="$(mktemp -d "$BENCH_DIR/writers.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
echo '{"temperature": 300, "material": "steel"}' >"$WORK/meta.json"

now() { date +%s.%N; }
rate() { python3 -c "import sys; n, t = float(sys.argv[1]), float(sys.argv[2]); print(f'{n / t:,.0f}')" "$1" "$2"; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$2"; }

# One writer: $1 = mode (trove | log-only | baseline), $2 = store, $3 = writer number, $4 = puts.
writer() {
    local mode="$1" root="$2" w="$3" k="$4" i
    for ((i = 0; i < k; i++)); do
        case "$mode" in
            trove) "$TROVE" --store "$root" put "lab/w$w/d$i" --meta-json "$WORK/meta.json" -m "i=$i" >/dev/null ;;
            log-only) "$TROVE" --store "$root" --log-only put "lab/w$w/d$i" --meta-json "$WORK/meta.json" -m "i=$i" >/dev/null ;;
            baseline) mkdir -p "$root/lab/w$w/d$i" && cp "$WORK/meta.json" "$root/lab/w$w/d$i/meta.json" ;;
        esac
        # Every writer also updates one shared dataset now and then (a different key each time).
        if ((i % 10 == 0)); then
            case "$mode" in
                trove) "$TROVE" --store "$root" meta set lab/shared "w${w}_$i=$i" >/dev/null ;;
                log-only) "$TROVE" --store "$root" --log-only meta set lab/shared "w${w}_$i=$i" >/dev/null ;;
                baseline) cp "$WORK/meta.json" "$root/lab/shared.json" ;;
            esac
        fi
    done
}

printf '\n| writers | mode | puts | seconds | puts/s | catch-up (sync) |\n|---|---|---|---|---|---|\n' >"$WORK/table.md"
for n in $WRITERS; do
    k=$((PUTS / n))
    total=$((k * n + n * ((k + 9) / 10)))
    for mode in trove log-only baseline; do
        root="$WORK/store-$n-$mode"
        if [[ "$mode" == baseline ]]; then mkdir -p "$root"; else "$TROVE" init "$root" >/dev/null; "$TROVE" --store "$root" put lab/shared >/dev/null; fi
        log "$n writers, $mode: $total writes"
        t0=$(now)
        for ((w = 0; w < n; w++)); do writer "$mode" "$root" "$w" "$k" & done
        wait
        t1=$(now)
        sync_time="-"
        if [[ "$mode" == log-only ]]; then
            s0=$(now); "$TROVE" --store "$root" sync >/dev/null; s1=$(now)
            sync_time="$(secs "$s0" "$s1") s"
        fi
        if [[ "$mode" != baseline ]]; then
            got=$("$TROVE" --store "$root" find --count)
            [[ "$got" == $((k * n + 1)) ]] || { echo "bench/writers: expected $((k * n + 1)) datasets, found $got" >&2; exit 1; }
        fi
        printf '| %s | %s | %s | %s | %s | %s |\n' "$n" "$mode" "$total" "$(secs "$t0" "$t1")" "$(rate "$total" "$(secs "$t0" "$t1")")" "$sync_time" >>"$WORK/table.md"
    done
done
printf '\nmachine: %s cores, load %s\n' "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$WORK/table.md"
cat "$WORK/table.md"
