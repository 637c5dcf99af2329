"""The issue-15 workload in Python, through trove and through signac, in the same run (bench/python.sh).

For each N: create N records ({"i", "temperature", "material", "run"} and 2 tags), reopen and count, three
queries listing matches (material == "steel", 300 <= temperature < 310, tag batch-3), update `run` on 1,000
records, delete 1,000 records. Then an 80 MB float64 array and a 10^6-row, 5-column DataFrame (int64,
float64 x2, categorical, timestamp) stored and loaded by trove, against np.save/np.load and
to_parquet/read_parquet of the same data. Also `len(s.find(...))` and `to_pandas()` of the matches.

signac has no tags: its records carry the tags in the job document (`doc.tags`), and the tag query is a
`$regex`-free equality on `doc.batch`, the one tag the query asks for, which is what a signac user would
write. `run` lives in the job document too (changing a state point key changes the job's id).

Prints one Markdown table per N on stdout; progress on stderr. Timings are wall-clock (time.perf_counter),
one round each, warm page cache; stores are not durable (no fsync) on the trove side, as signac does not
fsync either.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import trove

MATERIALS = ["steel", "glass", "copper", "ceramic"]


def record(i: int) -> dict[str, Any]:
    return {"i": i, "temperature": 250 + (i * 7) % 100, "material": MATERIALS[i % 4], "run": 0}


def tags(i: int) -> list[str]:
    return [f"batch-{i % 10}", "campaign-a"]


def timed(label: str, f: Callable[[], Any]) -> tuple[float, Any]:
    print(f"  {label} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    out = f()
    return time.perf_counter() - start, out


def bench_trove(root: Path, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    s = trove.init(root, durable=False)
    out["create"], _ = timed("trove create", lambda: s.ingest(
        {"path": f"bench/r{i}", "metadata": record(i), "tags": tags(i)} for i in range(n)))
    del s

    def reopen() -> int:
        return len(trove.open(root).find())

    out["reopen+count"], count = timed("trove reopen", reopen)
    assert count == n, count
    s = trove.open(root)
    out["q material"], a = timed("trove q1", lambda: s.find(material="steel").refs())
    out["q temperature"], b = timed("trove q2", lambda: s.find("temperature >= 300 and temperature < 310").refs())
    out["q tag"], c = timed("trove q3", lambda: s.find("@tag == 'batch-3'").refs())
    out["matches"] = (len(a), len(b), len(c))
    out["len(find)"], _ = timed("trove len", lambda: len(s.find(material="steel")))
    out["to_pandas (every record)"], frame = timed("trove to_pandas", lambda: s.find().to_pandas())
    out["to_pandas rows"] = len(frame)

    def update_each() -> None:
        for i in range(1000):
            s[f"bench/r{i}"].update(run=1)

    def update_batch() -> None:
        with s.batch():
            for i in range(1000, 2000):
                s[f"bench/r{i}"].update(run=1)

    def delete_each() -> None:
        for i in range(2000, 3000):
            s[f"bench/r{i}"].remove()

    out["update 1000 (each a commit)"], _ = timed("trove update each", update_each)
    out["update 1000 (one batch)"], _ = timed("trove update batch", update_batch)
    out["delete 1000 (each a commit)"], _ = timed("trove delete each", delete_each)
    out["delete 1000 (one call)"], _ = timed("trove delete", lambda: s.remove(*[f"bench/r{i}" for i in range(3000, 4000)]))
    assert len(s.find(run=1)) == 2000
    return out


def bench_signac(root: Path, n: int) -> dict[str, Any]:
    import signac

    out: dict[str, Any] = {}
    project = signac.init_project(root)

    def create() -> None:
        for i in range(n):
            job = project.open_job({k: v for k, v in record(i).items() if k != "run"}).init()
            job.doc.update({"run": 0, "tags": tags(i), "batch": tags(i)[0]})

    out["create"], _ = timed("signac create", create)
    del project
    out["reopen+count"], count = timed("signac reopen", lambda: len(signac.get_project(root)))
    assert count == n, count
    project = signac.get_project(root)
    out["q material"], a = timed("signac q1", lambda: [j.id for j in project.find_jobs({"material": "steel"})])
    out["q temperature"], b = timed("signac q2", lambda: [
        j.id for j in project.find_jobs({"temperature": {"$gte": 300, "$lt": 310}})])
    out["q tag"], c = timed("signac q3", lambda: [j.id for j in project.find_jobs({"doc.batch": "batch-3"})])
    out["matches"] = (len(a), len(b), len(c))
    out["len(find)"], _ = timed("signac len", lambda: len(project.find_jobs({"material": "steel"})))
    jobs = sorted(project.find_jobs(), key=lambda j: j.sp["i"])

    def update() -> None:
        for job in jobs[:1000]:
            job.doc["run"] = 1

    def delete() -> None:
        for job in jobs[2000:3000]:
            job.remove()

    out["update 1000 (each a commit)"], _ = timed("signac update", update)
    out["delete 1000 (each a commit)"], _ = timed("signac delete", delete)
    return out


def median_of(rounds: int, label: str, f: Callable[[int], Any]) -> tuple[float, Any]:
    """The median time of `rounds` runs of `f(round)` (page-cache effects make single runs of 100 MB jobs
    vary by 5x here), and the last result."""
    times, out = [], None
    for r in range(rounds):
        t, out = timed(f"{label} ({r + 1}/{rounds})", lambda: f(r))
        times.append(t)
    return sorted(times)[len(times) // 2], out


def bench_data(root: Path, rounds: int = 5) -> list[tuple[str, float, str, float]]:
    rng = np.random.default_rng(0)
    array = rng.random(10_000_000)  # 80 MB of float64
    rows = 1_000_000
    frame = pd.DataFrame({
        "i": np.arange(rows, dtype=np.int64),
        "x": rng.random(rows),
        "y": rng.random(rows),
        "site": pd.Categorical(rng.choice(["north", "south", "east", "west"], rows)),
        "t": pd.date_range("2024-01-01", periods=rows, freq="s"),
    })
    s = trove.init(root / "data-store", durable=False)
    p = s.project("bench")
    out = []
    t_save, _ = median_of(rounds, "np.save", lambda r: np.save(root / f"plain{r}.npy", array))
    t_put, ds = median_of(rounds, "trove put array", lambda r: p.put(f"array{r}", array, name="a.npy"))
    t_load_np, _ = median_of(rounds, "np.load", lambda r: np.load(root / f"plain{r}.npy"))
    t_load, loaded = median_of(rounds, "trove load array", lambda r: s[f"bench/array{r}"].objects["a.npy"].load())
    assert np.array_equal(loaded, array)
    out += [("put 80 MB float64 array", t_put, "np.save", t_save), ("load it", t_load, "np.load", t_load_np)]
    t_write, _ = median_of(rounds, "to_parquet", lambda r: frame.to_parquet(root / f"plain{r}.parquet"))
    t_putf, ds = median_of(rounds, "trove put frame", lambda r: p.put(f"frame{r}", frame, name="f.parquet"))
    t_read, _ = median_of(rounds, "read_parquet", lambda r: pd.read_parquet(root / f"plain{r}.parquet"))
    t_loadf, loaded_frame = median_of(rounds, "trove load frame",
                                      lambda r: s[f"bench/frame{r}"].objects["f.parquet"].load())
    pd.testing.assert_frame_equal(loaded_frame, frame)
    out += [("put 10^6-row DataFrame", t_putf, "to_parquet", t_write),
            ("load it", t_loadf, "read_parquet", t_read)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--big", type=int, default=0, help="also: trove alone at this N (create, len, queries)")
    parser.add_argument("--tmp", default=os.environ.get("BENCH_TMP", "/tmp"))
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="trove-bench-py.", dir=args.tmp))
    try:
        import signac

        print(f"trove {trove.__version__}, signac {signac.__version__}, numpy {np.__version__}, "
              f"pandas {pd.__version__}, load {os.getloadavg()[0]:.2f}\n")
        for n in args.n:
            print(f"N = {n}", file=sys.stderr)
            t = bench_trove(scratch / f"trove-{n}", n)
            g = bench_signac(scratch / f"signac-{n}", n)
            assert t["matches"] == g["matches"], (t["matches"], g["matches"])
            print(f"### N = {n:,} (matches: {t['matches']})\n")
            print("| step | trove | signac 2.4 | signac ÷ trove |\n|---|---|---|---|")
            for key, value in t.items():
                if key in ("matches", "to_pandas rows"):
                    continue
                theirs = g.get(key)
                ratio = ""
                if theirs is not None and value > 0:
                    ratio = f"{theirs / value:,.0f}x" if theirs >= 10 * value else f"{theirs / value:.2f}x"
                their_text = f"{theirs:.3f} s" if theirs is not None else ""
                print(f"| {key} | {value:.4f} s | {their_text} | {ratio} |")
            print(f"\n(to_pandas: {t['to_pandas rows']:,} rows)\n")
            shutil.rmtree(scratch / f"trove-{n}", ignore_errors=True)
            shutil.rmtree(scratch / f"signac-{n}", ignore_errors=True)
        if args.big:
            print(f"N = {args.big} (trove alone)", file=sys.stderr)
            root = scratch / "trove-big"
            s = trove.init(root, durable=False)
            create, _ = timed("trove create", lambda: s.ingest(
                {"path": f"bench/r{i}", "metadata": record(i), "tags": tags(i)} for i in range(args.big)))
            s = trove.open(root)
            count, n = timed("trove len", lambda: len(s.find(material="steel")))
            q2, b = timed("trove q2", lambda: s.find("temperature >= 300 and temperature < 310").refs())
            print(f"### N = {args.big:,}, trove alone\n\n| step | trove |\n|---|---|\n| create | {create:.1f} s |\n"
                  f"| len(s.find(material='steel')) ({n:,}) | {count * 1000:.1f} ms |\n"
                  f"| 300 <= temperature < 310, listed ({len(b):,}) | {q2 * 1000:.0f} ms |\n")
            shutil.rmtree(root, ignore_errors=True)
        print("### Data objects (median of 5 rounds)\n\n| step | trove | baseline | | trove ÷ baseline time |\n"
              "|---|---|---|---|---|")
        for label, ours, baseline, theirs in bench_data(scratch):
            print(f"| {label} | {ours:.3f} s | {baseline} | {theirs:.3f} s | {ours / theirs:.2f}x |")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
