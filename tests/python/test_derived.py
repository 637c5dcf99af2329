"""Derived data from Python: `Store.get_or_compute`, `@trove.cached`, and query results as DataFrames."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trove
from test_api import cli


@pytest.fixture
def s(tmp_path: Path) -> trove.Store:
    return trove.init(tmp_path / "store", durable=False)


def test_get_or_compute_runs_once_and_loads_back_what_was_returned(s: trove.Store) -> None:
    calls: list[int] = []
    frame = pd.DataFrame({"t": np.arange(5, dtype=np.int64), "v": np.linspace(0, 1, 5, dtype=np.float32),
                          "name": ["ä", "b", "c", "d", "e"]})

    def body() -> pd.DataFrame:
        calls.append(1)
        return frame

    first = s.get_or_compute("smooth", "1", body, config={"window": 5, "big": 2**64 - 1})
    again = s.get_or_compute("smooth", "1", body, config={"big": 2**64 - 1, "window": 5})
    pd.testing.assert_frame_equal(first, frame)
    pd.testing.assert_frame_equal(again, frame)
    assert calls == [1]
    s.get_or_compute("smooth", "2", body, config={"window": 5, "big": 2**64 - 1})
    s.get_or_compute("smooth", "1", body, config={"window": 6, "big": 2**64 - 1})
    assert len(calls) == 3
    derived = s.find(project="derived").to_pandas()
    assert len(derived) == 3 and set(derived["kind"]) == {"derived"}
    ds = next(iter(s.find(project="derived")))
    assert ds.lineage is not None and ds.lineage["name"] == "smooth"
    assert json.loads(cli(s, "lineage", ds.ref, "--json"))["key"] == ds.lineage["key"]


def test_results_of_every_shape_round_trip(s: trove.Store) -> None:
    arr = np.arange(12, dtype=">i4").reshape(3, 4)
    fortran = np.asfortranarray(np.ones((2, 3), dtype=np.float32))
    assert np.array_equal(s.get_or_compute("arr", "1", lambda: arr), arr)
    both = s.get_or_compute("pair", "1", lambda: (arr, fortran))
    assert isinstance(both, tuple) and np.array_equal(both[0], arr) and np.array_equal(both[1], fortran)
    named = s.get_or_compute("named", "1", lambda: {"x": arr, "y": b"\x00raw"})
    assert set(named) == {"x", "y"} and named["y"] == b"\x00raw"
    meta = s.get_or_compute("stats", "1", lambda: {"mean": 1.5, "n": 2**63 + 1, "deep": {"a": [1, {"b": None}]}})
    assert meta == {"mean": 1.5, "n": 2**63 + 1, "deep": {"a": [1, {"b": None}]}}
    empty = s.get_or_compute("empty", "1", lambda: np.zeros((0, 3)))
    assert empty.shape == (0, 3)
    scalar = s.get_or_compute("scalar", "1", lambda: np.array(7.5))
    assert scalar.shape == () and scalar == 7.5


def test_a_raising_function_stores_nothing_and_its_exception_propagates(s: trove.Store) -> None:
    class Boom(Exception):
        pass

    def body() -> None:
        raise Boom("no data today")

    with pytest.raises(Boom, match="no data today"):
        s.get_or_compute("fails", "1", body)
    assert len(s.find(project="derived")) == 0
    assert s.get_or_compute("fails", "1", lambda: {"ok": True}) == {"ok": True}


def test_inputs_enter_the_key_by_content(s: trove.Store, tmp_path: Path) -> None:
    src = tmp_path / "raw.csv"
    src.write_text("a,b\n1,2\n")
    twin = s.project("lab").put("twin", src)
    raw = s.project("lab").put("raw", src)
    runs: list[str] = []

    def body(tag: str) -> dict[str, str]:
        runs.append(tag)
        return {"tag": tag}

    s.get_or_compute("use", "1", lambda: body("obj"), inputs=[raw.objects["raw.csv"]])
    # Another object with identical contents is the same input.
    s.get_or_compute("use", "1", lambda: body("twin"), inputs=[twin.objects["raw.csv"]])
    s.get_or_compute("use", "1", lambda: body("array"), inputs=[np.arange(3)])
    s.get_or_compute("use", "1", lambda: body("array2"), inputs=[np.arange(3, dtype=np.int32)])
    assert runs == ["obj", "array", "array2"]


def test_cached_decorator_keys_on_arguments_version_and_code(s: trove.Store, tmp_path: Path) -> None:
    runs: list[tuple[int, str]] = []

    @trove.cached(store=s)
    def scale(factor: int, label: str = "x", data: np.ndarray | None = None) -> np.ndarray:
        runs.append((factor, label))
        base = np.arange(4) if data is None else data
        return base * factor

    assert np.array_equal(scale(2), np.arange(4) * 2)
    assert np.array_equal(scale(2, label="x"), np.arange(4) * 2)
    assert len(runs) == 1
    scale(3)
    scale(2, "y")
    scale(2, data=np.ones(4, dtype=np.int64))
    scale(2, data=np.ones(4, dtype=np.int64))
    assert len(runs) == 4

    @trove.cached(store=s, name="scale", version="2")
    def scale_v2(factor: int, label: str = "x", data: np.ndarray | None = None) -> np.ndarray:
        runs.append((factor, label))
        return np.arange(4) * factor

    scale_v2(2)
    assert len(runs) == 5


def test_a_changed_function_body_gives_a_new_key(s: trove.Store, tmp_path: Path) -> None:
    import importlib.util

    runs: list[str] = []
    for k, body in enumerate(("return {'v': n}", "return {'v': n + 0}", "return {'v': n}")):
        source = tmp_path / f"steps_{k}.py"
        source.write_text(f"import trove\n\ndef make(s, runs):\n    @trove.cached(store=s)\n    def step(n):\n"
                          f"        runs.append({body!r})\n        {body}\n    return step\n")
        spec = importlib.util.spec_from_file_location(f"steps_{k}", source)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.make(s, runs)(1) == {"v": 1}
    # The first and third bodies are the same code: the third call finds the first one's result.
    assert runs == ["return {'v': n}", "return {'v': n + 0}"]


CACHED_SCRIPT = """
import os, sys, time, trove, numpy as np

@trove.cached(store=trove.open(sys.argv[1]), name="slow", hash_code=False)
def slow(n: int):
    with open(sys.argv[2], "a") as f:
        f.write(f"{os.getpid()}\\n")
    time.sleep(0.5)
    return np.arange(n)

assert np.array_equal(slow(10), np.arange(10))
"""


def test_cached_runs_once_for_eight_processes_asking_at_once(s: trove.Store, tmp_path: Path) -> None:
    ran = tmp_path / "ran.txt"
    procs = [subprocess.Popen([sys.executable, "-c", CACHED_SCRIPT, str(s.root), str(ran)], stderr=subprocess.PIPE)
             for _ in range(8)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    assert len(ran.read_text().splitlines()) == 1
    assert len(s.find(project="derived")) == 1


def test_to_pandas_flattens_metadata_to_dotted_columns(s: trove.Store) -> None:
    s.ingest([
        {"path": "lab/a", "metadata": {"material": "steel", "sample": {"thickness_mm": 2, "grain": {"µm": 5}}},
         "tags": ["x", "y"]},
        {"path": "lab/b", "metadata": {"material": "ünï", "big": 2**64 - 1, "list": [1, 2], "empty": {}}},
        {"path": "lab/c"},
    ])
    frame = s.find(project="lab", sort="path").to_pandas()
    assert list(frame.columns[:7]) == ["id", "project", "path", "kind", "tags", "created", "updated"]
    assert list(frame["path"]) == ["a", "b", "c"]
    assert frame.loc[0, "sample.thickness_mm"] == 2 and frame.loc[0, "sample.grain.µm"] == 5
    assert frame.loc[1, "big"] == 2**64 - 1 and frame.loc[1, "list"] == [1, 2] and frame.loc[1, "empty"] == {}
    assert frame.loc[0, "tags"] == ["x", "y"]
    assert str(frame["created"].dtype).startswith("datetime64")
    assert len(s.find(project="nothing").to_pandas()) == 0
    assert os.fspath(s.root)


HOLDER = """
import sys, time, trove
s = trove.open(sys.argv[1])

def slow() -> dict:
    open(sys.argv[2], "w").close()   # the lease is held from here on
    time.sleep(120)
    return {"done": True}

s.get_or_compute("slow-step", "1", slow)
"""

WAITER = """
import os, signal, sys, threading, time, trove
s = trove.open(sys.argv[1])
threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
try:
    s.get_or_compute("slow-step", "1", lambda: {"ran": "here"})
    print("finished")
except KeyboardInterrupt:
    print("interrupted")
"""


def test_ctrl_c_stops_waiting_for_another_process_computing_the_same_key(s: trove.Store, tmp_path: Path) -> None:
    started = tmp_path / "started"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(s.root), str(started)], stderr=subprocess.PIPE)
    try:
        for _ in range(600):
            if started.exists() or holder.poll() is not None:
                break
            time.sleep(0.1)
        assert started.exists(), holder.stderr.read().decode() if holder.stderr else ""
        waiter = subprocess.run([sys.executable, "-c", WAITER, str(s.root)], capture_output=True, text=True,
                                timeout=100)
        assert waiter.stdout.strip() == "interrupted", waiter.stdout + waiter.stderr
        assert holder.poll() is None, "the waiter must stop waiting while the other process still computes"
        assert len(s.find(project="derived")) == 0
    finally:
        holder.kill()
        holder.wait()
