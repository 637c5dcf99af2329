"""The Python package (`import trove`) against real stores, and against the CLI on the same store.

Run by tests/python/run.sh (which builds the extension into the test venv with `maturin develop`); the CLI is
$TROVE_BIN.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import trove

TROVE_BIN = os.environ.get("TROVE_BIN", os.path.expanduser("~/.cache/trove-target/debug/trove"))


def cli(store: trove.Store, *args: str) -> str:
    proc = subprocess.run([TROVE_BIN, "--store", str(store.root), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def s(tmp_path: Path) -> trove.Store:
    return trove.init(tmp_path / "store", durable=False)


def test_put_show_edit_and_the_cli_agrees(s: trove.Store, tmp_path: Path) -> None:
    src = tmp_path / "velocity.csv"
    src.write_text("t,v\n0,1.5\n1,2.5\n")
    lab = s.project("lab", metadata={"institute": "Materials Physics Lab"})
    ds = lab.put("runs/2024/r17", src, metadata={"material": "steel", "temperature": 300, "seed": 2**64 - 1,
                                                  "sample": {"thickness_mm": 2}, "note": "a\u0000b"},
                 tags={"calibrated"}, kind="measurement")
    assert ds.ref == "lab/runs/2024/r17" and ds.kind == "measurement"
    assert ds.metadata["seed"] == 2**64 - 1 and ds.metadata["note"] == "a\u0000b"
    assert "calibrated" in ds.tags and set(ds.tags) == {"calibrated"}
    assert ds.objects["velocity.csv"].format == "csv"
    assert ds.objects["velocity.csv"].path_on_disk.read_text() == src.read_text()
    assert ds.path_on_disk == Path(cli(s, "locate", ds.ref).strip())
    assert ds.created <= ds.updated

    ds.update(reviewer="ada", quality=0.93)
    ds.set_meta({"sample.thickness_mm": 3})
    ds.unset("quality")
    ds.tags.add("reviewed")
    ds.tags.discard("calibrated")
    shown = json.loads(cli(s, "show", ds.ref, "--json"))
    assert shown["metadata"] == ds.metadata == {"material": "steel", "temperature": 300, "seed": 2**64 - 1,
                                                 "sample": {"thickness_mm": 3}, "note": "a\u0000b", "reviewer": "ada"}
    assert shown["tags"] == ["reviewed"] and shown["id"] == ds.id
    assert ds.inherited_metadata()["institute"] == "Materials Physics Lab"
    assert lab.metadata == {"institute": "Materials Physics Lab"} and s.projects() == [lab]

    # What the CLI writes, Python sees (the handle catches up by itself).
    cli(s, "meta", "set", ds.ref, "status=done")
    assert s[ds.ref].metadata["status"] == "done" and ds.refresh().metadata["status"] == "done"


def test_data_kinds_unicode_names_and_identical_contents(s: trove.Store, tmp_path: Path) -> None:
    lab = s.project("lab")
    name = "é" * 127  # 254 bytes: the longest name of 2-byte characters
    a = lab.put(f"runs/{name}", b"same bytes", name="x#1.bin")
    b = lab.put("runs/twin", b"same bytes", name="x#1.bin")
    assert a.objects["x#1.bin"].checksum == b.objects["x#1.bin"].checksum
    assert a.objects["x#1.bin"].path_on_disk.read_bytes() == b"same bytes"
    d = lab.put("runs/doc", {"α": [1, 2], "deep": {"x": {"y": None}}})
    assert json.loads(d.objects["data.json"].path_on_disk.read_text()) == {"α": [1, 2], "deep": {"x": {"y": None}}}
    arr = np.arange(12, dtype=">i4").reshape(3, 4)
    n = lab.put("runs/arr", arr, name="a.npy")
    assert n.objects["a.npy"].summary["shape"] == [3, 4]
    back = np.load(n.objects["a.npy"].path_on_disk)
    assert back.dtype == arr.dtype and (back == arr).all()
    df = pd.DataFrame({"i": pd.array([1, None, 3], dtype="Int64"), "s": ["α", "b", None],
                       "c": pd.Categorical(["x", "y", "x"]), "t": pd.date_range("2024-01-01", periods=3, tz="UTC")})
    t = lab.put("runs/table", df, name="t.parquet")
    assert t.objects["t.parquet"].format == "parquet" and t.objects["t.parquet"].summary["rows"] == 3
    pd.testing.assert_frame_equal(pd.read_parquet(t.objects["t.parquet"].path_on_disk), df)
    empty = lab.put("runs/empty", b"", name="empty.bin")
    assert empty.objects["empty.bin"].size == 0
    folder = tmp_path / "frames"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "f.txt").write_text("frame")
    f = lab.put("runs/folder", folder)
    assert f.objects["frames"].format == "folder"
    with pytest.raises(TypeError, match="cannot store a builtins.set"):
        lab.put("runs/bad", {1, 2})
    assert "lab/runs/bad" not in s


def test_find_in_three_forms_lazily(s: trove.Store) -> None:
    lab = s.project("lab")
    for i in range(25):
        lab.put(f"runs/r{i:02d}", metadata={"i": i, "material": "steel" if i % 2 else "glass",
                                             "sample": {"thickness_mm": i % 3}}, tags={f"batch-{i % 5}"})
    text = s.find("material == 'steel' and i >= 10")
    mongo = s.find({"material": "steel", "i": {"$gte": 10}})
    kwargs = s.find(material="steel", i__gte=10)
    assert len(text) == len(mongo) == len(kwargs) == 7
    assert text.refs() == mongo.refs() == kwargs.refs() == [f"lab/runs/r{i:02d}" for i in range(11, 25, 2)]
    assert len(s.find(sample__thickness_mm__in=[1, 2], i__lt=6)) == 4
    assert len(s.find(material__ne="steel", i__exists=True)) == 13
    assert len(s.find(material__glob="st*")) == 12
    assert len(s.find("@tag == 'batch-3'")) == 5
    top = s.find(sort="-i", limit=3)
    assert [d.metadata["i"] for d in top] == [24, 23, 22] and len(top) == 3
    assert [d.metadata["i"] for d in s.find(sort="i", offset=20)] == [20, 21, 22, 23, 24]
    assert s.find("i == 1000").first() is None
    many = list(s.find())  # more than one batch with a smaller batch size
    trove.BATCH, old = 4, trove.BATCH
    try:
        assert [d.ref for d in s.find()] == [d.ref for d in many] and len(many) == 25
    finally:
        trove.BATCH = old
    cli_refs = cli(s, "find", "--ids", "material == 'steel' and i >= 10").split()
    assert cli_refs == text.refs()


def test_errors_are_one_tree_with_the_cli_messages(s: trove.Store, tmp_path: Path) -> None:
    with pytest.raises(trove.NotFound) as e:
        s["lab/nope"]
    assert isinstance(e.value, KeyError) and str(e.value) == "dataset lab/nope not found"
    with pytest.raises(trove.FilterError) as f:
        s.find("temperature >= ")
    assert f.value.column == 16 and "expected a value" in str(f.value)
    with pytest.raises(trove.FilterError):
        s.find({"$bogus": 1})
    with pytest.raises(trove.InvalidName):
        s.project("lab").put("runs/a:b", b"x")
    with pytest.raises(trove.InvalidInput, match="64 bits"):
        s.project("lab").put("runs/big", metadata={"seed": 2**64})
    with pytest.raises(trove.InvalidInput):
        s.project("lab").put("runs/dots", metadata={"a.b": 1})
    with pytest.raises(trove.StorageError) as missing:
        s.project("lab").put("runs/missing", tmp_path / "no such file.csv")
    assert "no such file.csv" in str(missing.value) and not isinstance(missing.value, trove.NotFound)
    with pytest.raises(trove.StoreNotFound):
        trove.open(tmp_path / "nowhere")
    with pytest.raises(trove.Conflict):
        trove.init(s.root)
    # Nothing of the failed writes was committed.
    assert len(s.find()) == 0 and cli(s, "find", "--count").strip() == "0"
    # The library's error kinds, each with what a Python caller does about it (never a CLI flag).
    s.project("lab").put("tree/a")
    s.project("lab").put("tree/a/b")
    with pytest.raises(trove.InvalidInput, match=r"removing it removes them too \(pass recursive=True"):
        s["lab/tree/a"].remove()
    s["lab/tree/a"].remove(recursive=True)
    with pytest.raises(trove.StoreNotFound, match="TROVE_STORE") as nowhere:
        old, env = os.getcwd(), os.environ.pop("TROVE_STORE", None)
        os.chdir("/")
        try:
            trove.open()
        finally:
            os.chdir(old)
            if env is not None:
                os.environ["TROVE_STORE"] = env
    assert "--store" not in str(nowhere.value)
    with pytest.raises(trove.Conflict, match="no batch is open"):
        s._native.end_batch(True)
    with pytest.raises(trove.InvalidInput, match="not an array"):
        s.project("lab").put("j", {"a": 1}).objects["data.json"]._store._native.export_slice("lab/j:data.json", "0",
                                                                                            str(tmp_path / "x.npy"))


def test_move_copy_remove(s: trove.Store) -> None:
    lab = s.project("lab")
    a = lab.put("runs/a", b"1", name="one.bin", metadata={"k": 1})
    moved = a.move("lab/archive/a")
    assert moved.id == a.id and moved.objects["one.bin"].path_on_disk.read_bytes() == b"1"
    copy = moved.copy("lab/scratch/a")
    assert copy.id != moved.id and copy.metadata == {"k": 1}
    copy.remove()
    assert "lab/scratch/a" not in s and "lab/archive/a" in s
    assert s.remove("lab/archive/a") == 1 and len(s.find()) == 0


def test_threads_share_one_store(s: trove.Store) -> None:
    lab = s.project("lab")
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            for i in range(20):
                lab.put(f"t{t}/r{i}", metadata={"t": t, "i": i})
                len(s.find(t=t))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert len(s.find()) == 160 and cli(s, "find", "--count").strip() == "160"
    before = cli(s, "find", "--json", "--sort", "path")
    cli(s, "sync", "--full")
    assert cli(s, "find", "--json", "--sort", "path") == before, "the catalog differs from a rebuild"


def _child_writes(root: str, n: int, worker: int) -> None:
    store = trove.open(root)
    for i in range(n):
        store.project("lab").put(f"p{worker}/r{i}", metadata={"worker": worker, "i": i, "shared": worker})
        assert len(store.find(worker=worker)) == i + 1  # a process reads its own writes
        store.project("lab").put("shared", metadata={f"w{worker}_{i}": i, "last": worker})
    with store.batch():
        for i in range(n):
            store[f"lab/p{worker}/r{i}"].update(done=True)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_eight_processes_write_one_store_and_the_catalog_equals_a_rebuild(s: trove.Store, method: str) -> None:
    ctx = multiprocessing.get_context(method)
    procs = [ctx.Process(target=_child_writes, args=(str(s.root), 12, w)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0] * 8
    # This handle was open all along: it sees the other processes' commits without being reopened.
    assert len(s.find(done=True)) == 96
    shared = s["lab/shared"].metadata
    assert all(shared[f"w{w}_{i}"] == i for w in range(8) for i in range(12)), "an update was lost"
    before = cli(s, "find", "--json", "--sort", "path")
    cli(s, "sync", "--full")
    assert cli(s, "find", "--json", "--sort", "path") == before
    cli(s, "check")


def test_a_forked_handle_says_to_reopen(s: trove.Store) -> None:
    fork = multiprocessing.get_context("fork")
    queue = fork.Queue()

    def use_inherited() -> None:
        try:
            len(s.find())
            queue.put("worked")
        except trove.Error as e:
            queue.put(str(e))

    p = fork.Process(target=use_inherited)
    p.start()
    p.join(60)
    said = queue.get(timeout=10)
    assert "call trove.open() again" in said, said


def test_objects_load_as_natural_values(s: trove.Store, tmp_path: Path) -> None:
    lab = s.project("lab")
    csv = tmp_path / "runs.csv"
    csv.write_text("t,site,v\n" + "".join(f"{i},{'AB'[i % 2]},{i * 0.5}\n" for i in range(100)))
    ds = lab.put("runs/r1", csv)
    table = ds.objects["runs.csv"]
    full = table.load()
    assert list(full.columns) == ["t", "site", "v"] and len(full) == 100
    part = table.load(columns=["v", "t"], rows=range(10, 13))
    assert part.to_dict("list") == {"v": [5.0, 5.5, 6.0], "t": [10, 11, 12]}
    assert table.load(as_="pyarrow").num_rows == 100
    with pytest.raises(trove.InvalidInput):
        table.load(columns=["nope"])

    df = pd.DataFrame({"i": np.arange(1000, dtype="int64"), "x": np.linspace(0, 1, 1000, dtype="float32")})
    pq = lab.put("runs/r2", df, name="t.parquet").objects["t.parquet"]
    pd.testing.assert_frame_equal(pq.load(), df)
    assert pq.load(rows=slice(998, None))["i"].tolist() == [998, 999]

    cube = np.arange(2 * 3 * 4, dtype="<f8").reshape(2, 3, 4)
    for name, a in [("c.npy", cube), ("f.npy", np.asfortranarray(cube)), ("b.npy", cube.astype(">f8")),
                    ("t.npy", np.array(["2024-01-01", "NaT"], dtype="M8[s]")), ("z.npy", np.array(2.5)),
                    ("e.npy", np.zeros((0, 3), dtype="u2"))]:
        obj = lab.put("runs/arrays", a, name=name).objects[name]
        got = obj.load()
        assert got.dtype == a.dtype and got.shape == a.shape and got.tobytes() == np.ascontiguousarray(a).tobytes()
    # Asked for by name: a Zarr array (chunked, compressed), sliced reading only the chunks it needs.
    z = lab.put("runs/zarr", cube, name="c.zarr").objects["c.zarr"]
    assert z.format == "zarr" and np.array_equal(z.load(), cube) and np.array_equal(z[1, :, 2:], cube[1, :, 2:])
    c = s["lab/runs/arrays"].objects["c.npy"]
    assert (c[0:1, :, 3] == cube[0:1, :, 3]).all() and (c[..., ::-2] == cube[..., ::-2]).all()
    assert c[1, 2, 3] == cube[1, 2, 3]
    with pytest.raises(TypeError):
        c["x"]

    assert lab.put("runs/j", {"α": 1}).objects["data.json"].load() == {"α": 1}
    assert lab.put("runs/b", b"\x00\x01", name="raw.bin").objects["raw.bin"].load() == b"\x00\x01"
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    assert lab.put("runs/f", folder).objects["frames"].load() == s["lab/runs/f"].objects["frames"].path_on_disk


def test_ingest_sql_and_schema(s: trove.Store, tmp_path: Path) -> None:
    src = tmp_path / "v.txt"
    src.write_text("v")
    created, updated = s.ingest(
        {"path": f"lab/runs/r{i:04d}", "kind": "measurement", "metadata": {"i": i, "material": ["steel", "glass"][i % 2]},
         "tags": [f"batch-{i % 3}"], "files": {"v.txt": str(src)} if i == 0 else {}}
        for i in range(2500)
    )
    assert (created, updated) == (2500, 0)
    assert s.ingest([{"path": "lab/runs/r0000", "metadata": {"i": -1}}]) == (0, 1)
    assert s["lab/runs/r0000"].objects["v.txt"].load() == b"v"
    with pytest.raises(trove.InvalidInput, match="64 bits"):
        s.ingest([{"path": "lab/runs/huge", "metadata": {"i": 2**70}}])
    with pytest.raises(trove.Error, match="line 2"):
        s.ingest([{"path": "lab/runs/ok"}, {"path": "lab/runs/bad", "nope": 1}])
    assert "lab/runs/ok" not in s  # every line is checked before anything is written
    counts = s.sql("SELECT tag, count(*) AS n FROM tags GROUP BY tag ORDER BY tag")
    assert counts.to_dict("list") == {"tag": ["batch-0", "batch-1", "batch-2"], "n": [834, 833, 833]}
    with pytest.raises(trove.Error):
        s.sql("DELETE FROM datasets")
    schema = {k["key"]: k for k in s.schema()}
    assert schema["i"]["count"] == 2500 and schema["i"]["min"] == -1 and schema["i"]["max"] == 2499
    assert schema["material"]["types"] == {"string": 2500}
    cli_schema = [json.loads(line) for line in cli(s, "schema", "--json").splitlines()]
    assert cli_schema == s.schema()


def test_children_and_history(s: trove.Store) -> None:
    lab = s.project("lab")
    top = lab.put("runs", metadata={"level": 0})
    for ref in ["runs/a", "runs/2024/b", "runs/2024/c", "runs/a/deeper", "other/x"]:
        lab.put(ref)
    assert [d.ref for d in top.children()] == ["lab/runs/2024/b", "lab/runs/2024/c", "lab/runs/a"]
    assert s["lab/runs/a/deeper"].children() == []
    top.update(level=1)
    top.tags.add("t")
    history = top.history()
    assert [h["op"] for h in history][:1] == ["put"] and len(history) == 3
    cli_log = [json.loads(line) for line in cli(s, "log", top.ref, "--json").splitlines()]
    assert cli_log == history


def test_tables_and_arrays_round_trip_dtypes_that_break_naive_code(s: trove.Store) -> None:
    import pyarrow as pa

    lab = s.project("lab")
    frame = pd.DataFrame({
        "nullable": pd.array([1, None, 2**62], dtype="Int64"),
        "cat": pd.Categorical(["ä", "b", "ä"]),
        "when": pd.date_range("2024-03-31 01:00", periods=3, freq="h", tz="Europe/Berlin"),
        "text": ["ünï", "", "a\u0000b"],
        "flag": [True, False, True],
        "f32": np.array([1.5, np.nan, -0.0], dtype=np.float32),
    })
    loaded = lab.put("t/frame", frame, name="f.parquet").objects["f.parquet"].load()
    pd.testing.assert_frame_equal(loaded, frame)
    # A pyarrow RecordBatchReader is streamed; any object with __arrow_c_stream__ goes through the C interface.
    table = pa.table({"i": pa.array(range(10), pa.int64())})
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=3))
    assert lab.put("t/reader", reader, name="r.parquet").objects["r.parquet"].load(as_="pyarrow").equals(table)

    class Stream:
        def __arrow_c_stream__(self, requested_schema: object = None) -> object:
            return table.__arrow_c_stream__(requested_schema)

    assert lab.put("t/stream", Stream(), name="s.parquet").objects["s.parquet"].load()["i"].tolist() == list(range(10))
    empty = pd.DataFrame({"a": pd.Series([], dtype="int64")})
    pd.testing.assert_frame_equal(lab.put("t/empty", empty, name="e.parquet").objects["e.parquet"].load(), empty)
    # Values are written in the store's staging area and moved in: nothing is left there, and two datasets
    # with identical contents each get their own file.
    lab.put("t/twin", frame, name="f.parquet")
    assert s["lab/t/twin"].objects["f.parquet"].checksum == s["lab/t/frame"].objects["f.parquet"].checksum
    staging = s.root / ".trove" / "staging"
    assert not staging.exists() or not list(staging.iterdir())
    cli(s, "check")


def test_xarray_round_trips_with_coordinates_dimension_names_and_attributes(s: trove.Store) -> None:
    import xarray as xr

    lab = s.project("lab")
    temps = np.arange(2 * 3 * 4, dtype=">f4").reshape(2, 3, 4)
    ds = xr.Dataset(
        {"temperature": (("time", "y", "x"), temps, {"units": "K"}),
         "ünï_flag": (("time",), np.array([True, False]))},
        coords={"time": pd.date_range("2024-01-01", periods=2, tz=None), "y": [10.0, 20.0, 30.0],
                "x": ["a", "b", "c", "d"]},
        attrs={"title": "run ς", "seed": 2**62},
    )
    obj = lab.put("fields/r1", ds, name="field.zarr").objects["field.zarr"]
    back = obj.load()
    xr.testing.assert_identical(back, ds)
    # Any xarray user opens the stored folder directly.
    xr.testing.assert_identical(xr.open_zarr(obj.path_on_disk, consolidated=False).load(), ds)

    da = xr.DataArray(np.ones((2, 2)), dims=("a", "b"), coords={"a": [1, 2]}, name="ones", attrs={"k": "v"})
    loaded = lab.put("fields/r2", da).objects["data.zarr"].load()
    assert isinstance(loaded, xr.DataArray)
    xr.testing.assert_identical(loaded, da)
    cli(s, "check")
