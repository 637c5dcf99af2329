#!/usr/bin/env bash
# Why the PostgreSQL catalog indexes metadata as B-tree rows (key id, type, value, row) rather than a JSONB
# column with a GIN index: both designs built over the same catalog (the one bench/query.sh ingested), their
# sizes, and the same questions timed inside the server (median of 5, no process start or network).
# Usage: bash bench/pg_index.sh POSTGRES_URL_OF_A_TROVE_CATALOG
set -euo pipefail
URL="$1"
psql "$URL" -qAt <<'SQL' >&2
SET search_path = trove;
DROP TABLE IF EXISTS bench_docs;
\timing on
CREATE TABLE bench_docs AS SELECT rid, (state::json -> 'meta')::jsonb AS meta FROM dataset_rows WHERE visible;
CREATE INDEX bench_docs_gin ON bench_docs USING gin (meta jsonb_path_ops);
ANALYZE bench_docs;
SQL
sizes=$(psql "$URL" -qAt -c "SET search_path = trove" -c "
SELECT pg_size_pretty(pg_total_relation_size('meta')) || ' (table and both B-trees), ' ||
       pg_size_pretty(pg_relation_size('meta_value')) || ' for the (kid, vtype, num, str, rid) B-tree'
UNION ALL
SELECT pg_size_pretty(pg_total_relation_size('bench_docs')) || ' (table and GIN), ' ||
       pg_size_pretty(pg_relation_size('bench_docs_gin')) || ' for the GIN index'")
python3 - "$URL" "$sizes" <<'PY'
import re, statistics, subprocess, sys
url, sizes = sys.argv[1], sys.argv[2].splitlines()
kid = lambda k: f"(SELECT kid FROM keys WHERE key = convert_to('{k}', 'UTF8'))"
questions = [
    ("equality: material == \"steel\"",
     f"SELECT count(*) FROM meta WHERE kid = {kid('material')} AND vtype = 3 AND num IS NULL AND str = convert_to('steel', 'UTF8')",
     "SELECT count(*) FROM bench_docs WHERE meta @> '{\"material\": \"steel\"}'"),
    ("1% range: 300 <= temperature < 302",
     f"SELECT count(*) FROM meta WHERE kid = {kid('temperature')} AND vtype = 2 AND num >= 300 AND num < 302",
     "SELECT count(*) FROM bench_docs WHERE (meta->>'temperature')::numeric >= 300 AND (meta->>'temperature')::numeric < 302"),
    ("array element: channels contains \"IR\"",
     f"SELECT count(*) FROM meta WHERE kid = {kid('channels')} AND vtype = 13 AND num IS NULL AND str = convert_to('IR', 'UTF8')",
     "SELECT count(*) FROM bench_docs WHERE meta @> '{\"channels\": [\"IR\"]}'"),
    ("top 10 by temperature",
     f"SELECT rid FROM meta WHERE kid = {kid('temperature')} AND vtype = 2 ORDER BY num DESC LIMIT 10",
     "SELECT rid FROM bench_docs WHERE meta ? 'temperature' ORDER BY (meta->>'temperature')::numeric DESC LIMIT 10"),
]
def timed(sql):
    script = "SET search_path = trove;\n\\timing on\n" + (sql + ";\n") * 5
    out = subprocess.run(["psql", url, "-qAt"], input=script, capture_output=True, text=True, check=True).stdout
    times = [float(t) for t in re.findall(r"Time: ([0-9.]+) ms", out)]
    return statistics.median(times)
print("\n| index design (PostgreSQL 15, same catalog) | size |")
print("|---|---|")
print(f"| B-tree rows, as trove uses | {sizes[0]} |")
print(f"| JSONB column + GIN (jsonb_path_ops) | {sizes[1]} |")
print("\n| question (inside the server, median of 5) | B-tree rows (ms) | JSONB + GIN (ms) |")
print("|---|---|---|")
for name, btree, gin in questions:
    print(f"| {name} | {timed(btree):.1f} | {timed(gin):.1f} |")
PY
psql "$URL" -qAt -c "DROP TABLE trove.bench_docs" >&2
