"""Data generation and the numpy / pyarrow / zarr-python baselines of bench/formats.sh.

Each timed command does one job in a fresh process and prints one line of JSON on stdout:
{"seconds": <the job, timed with time.perf_counter>, "fsync": <seconds of an fsync after a write, if any>,
"rss_kb": <peak resident set size of the process, from getrusage, interpreter and imports included>}.
Process start and imports are not in "seconds" (unlike the trove figures, which time the whole command).

    python formats_baseline.py gen-array N PATH            N random float64 values, saved with np.save
    python formats_baseline.py gen-table N PATH            an N-row CSV: int, float, float, category, timestamp
    python formats_baseline.py np-save SRC DST             np.load(SRC) untimed, then np.save(DST) (+ fsync)
    python formats_baseline.py np-load SRC                 np.load(SRC)
    python formats_baseline.py np-mmap-slice SRC START STOP np.load(SRC, mmap_mode="r")[START:STOP] copied
    python formats_baseline.py zarr-slice DIR START STOP   zarr.open_array(DIR)[START:STOP]
    python formats_baseline.py pa-csv2parquet CSV DST      pyarrow.csv.read_csv + pq.write_table(zstd) (+ fsync)
    python formats_baseline.py pa-read-parquet SRC         pq.read_table
    python formats_baseline.py pa-parquet2csv SRC DST      pq.read_table + pyarrow.csv.write_csv (+ fsync)
    python formats_baseline.py pa-parquet2arrow SRC DST    pq.read_table + an Arrow IPC file (+ fsync)
    python formats_baseline.py render RESULTS SPEC          the Markdown tables of bench/formats.sh
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

import numpy as np


def fsync(path: str) -> float:
    t0 = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return time.perf_counter() - t0


def report(seconds: float, fsync_seconds: float | None = None) -> None:
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "fsync": fsync_seconds, "rss_kb": rss_kb}))


def gen_array(n: int, path: str) -> None:
    rng = np.random.default_rng(42)
    np.save(path, rng.random(n, dtype=np.float64))


def gen_table(n: int, path: str) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(42)
    categories = np.array(["steel", "copper", "aluminium", "titanium", "glass", "PEEK", "brass", "nickel"])
    start = np.datetime64("2020-01-01T00:00:00", "s")
    batch = 1_000_000
    schema = pa.schema(
        [("id", pa.int64()), ("x", pa.float64()), ("y", pa.float64()), ("material", pa.string()), ("when", pa.string())]
    )
    # Unquoted, as most instruments and scripts write CSV (no value here needs quotes).
    # (pyarrow quotes header names whatever the style: the header is written here).
    options = pacsv.WriteOptions(quoting_style="none", include_header=False)
    with open(path, "wb") as f, pacsv.CSVWriter(f, schema, write_options=options) as writer:
        f.write((",".join(schema.names) + "\n").encode())
        for lo in range(0, n, batch):
            m = min(batch, n - lo)
            when = start + rng.integers(0, 5 * 365 * 86400, size=m).astype("timedelta64[s]")
            writer.write_table(
                pa.table(
                    {
                        "id": pa.array(np.arange(lo, lo + m, dtype=np.int64)),
                        "x": pa.array(rng.standard_normal(m)),
                        "y": pa.array(np.round(rng.random(m) * 1000, 3)),
                        "material": pa.array(categories[rng.integers(0, len(categories), size=m)]),
                        "when": pc.strftime(pa.array(when), format="%Y-%m-%dT%H:%M:%S"),
                    },
                    schema=schema,
                )
            )


def render(results_path: str, spec_path: str) -> None:
    """RESULTS: "KEY SECONDS RSS_KB" per round. SPEC: "SECTION<TAB>KEY<TAB>LABEL<TAB>BYTES<TAB>ROWS<TAB>BASELINES"
    per figure, in the order shown; BASELINES is "-" or comma-separated keys of figures doing the same job."""
    import statistics

    runs: dict[str, list[tuple[float, int]]] = {}
    with open(results_path) as f:
        for line in f:
            key, seconds, rss = line.split()
            runs.setdefault(key, []).append((float(seconds), int(rss)))
    spec = [line.rstrip("\n").split("\t") for line in open(spec_path) if line.strip()]
    labels = {row[1]: row[2] for row in spec}
    median = {k: statistics.median(s for s, _ in v) for k, v in runs.items()}
    section = None
    for sec, key, label, nbytes, rows, baselines in spec:
        if key not in runs:
            continue
        if sec != section:
            section = sec
            print(f"\n### {sec}\n")
            print("| operation | median s | range s | throughput | peak RSS MiB | trove ÷ baseline throughput |")
            print("|---|---:|---:|---:|---:|---|")
        secs = [s for s, _ in runs[key]]
        m = median[key]
        through = f"{int(nbytes) / 1e6 / m:,.0f} MB/s" if m > 0 else "-"
        if int(rows):
            through += f", {int(rows) / 1e6 / m:,.2f} M rows/s"
        rss = max(r for _, r in runs[key]) / 1024
        ratios = []
        for b in baselines.split(","):
            if b != "-" and b in median and m > 0:
                ratios.append(f"{median[b] / m:.2f}x {labels.get(b, b)}")
        print(
            f"| {label} | {m:.3f} | {min(secs):.3f}–{max(secs):.3f} | {through} | {rss:,.0f} | {'; '.join(ratios)} |"
        )


def main(argv: list[str]) -> None:
    cmd, args = argv[0], argv[1:]
    if cmd.startswith("pa-"):
        # pq.read_table imports pyarrow.dataset on first use (about half a second): not part of the job.
        import pyarrow.dataset  # noqa: F401
    if cmd == "render":
        render(args[0], args[1])
    elif cmd == "gen-array":
        gen_array(int(float(args[0])), args[1])
    elif cmd == "gen-table":
        gen_table(int(float(args[0])), args[1])
    elif cmd == "np-save":
        a = np.load(args[0])
        t0 = time.perf_counter()
        np.save(args[1], a)
        report(time.perf_counter() - t0, fsync(args[1]))
    elif cmd == "np-load":
        t0 = time.perf_counter()
        a = np.load(args[0])
        seconds = time.perf_counter() - t0
        assert a.size > 0
        report(seconds)
    elif cmd == "np-mmap-slice":
        t0 = time.perf_counter()
        part = np.array(np.load(args[0], mmap_mode="r")[int(args[1]) : int(args[2])])
        seconds = time.perf_counter() - t0
        assert part.size == int(args[2]) - int(args[1])
        report(seconds)
    elif cmd == "zarr-slice":
        import zarr

        t0 = time.perf_counter()
        part = zarr.open_array(args[0], mode="r")[int(args[1]) : int(args[2])]
        seconds = time.perf_counter() - t0
        assert part.size == int(args[2]) - int(args[1])
        report(seconds)
    elif cmd == "pa-csv2parquet":
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        t0 = time.perf_counter()
        pq.write_table(pacsv.read_csv(args[0]), args[1], compression="zstd")
        report(time.perf_counter() - t0, fsync(args[1]))
    elif cmd == "pa-read-parquet":
        import pyarrow.parquet as pq

        t0 = time.perf_counter()
        table = pq.read_table(args[0])
        seconds = time.perf_counter() - t0
        assert table.num_rows > 0
        report(seconds)
    elif cmd == "pa-parquet2csv":
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        t0 = time.perf_counter()
        pacsv.write_csv(pq.read_table(args[0]), args[1])
        report(time.perf_counter() - t0, fsync(args[1]))
    elif cmd == "pa-parquet2arrow":
        import pyarrow.ipc
        import pyarrow.parquet as pq

        t0 = time.perf_counter()
        table = pq.read_table(args[0])
        with pyarrow.ipc.new_file(args[1], table.schema) as writer:
            writer.write_table(table)
        report(time.perf_counter() - t0, fsync(args[1]))
    else:
        sys.exit(f"formats_baseline.py: unknown command {cmd!r}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv[1:])
