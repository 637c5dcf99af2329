"""A script using the whole public API, checked with `mypy --strict` against the package's stubs
(tests/python/test_typing.py). It is type-checked, not run."""

from __future__ import annotations

from pathlib import Path

import trove


def tour(root: Path) -> None:
    s: trove.Store = trove.init(root / "store", durable=False)
    s = trove.open(root / "store")
    lab: trove.Project = s.project("lab", metadata={"institute": "x"})
    projects: list[trove.Project] = s.projects()
    ds: trove.Dataset = lab.put("runs/r1", b"bytes", name="a.bin", metadata={"t": 300}, tags={"pilot"}, kind="run")
    ds.update(status="done")
    ds.set_meta({"sample.thickness_mm": 2})
    ds.unset("status")
    ds.tags.add("reviewed")
    ds.tags.discard("pilot")
    is_tagged: bool = "reviewed" in ds.tags
    meta: dict[str, object] = ds.metadata
    inherited: dict[str, object] = ds.inherited_metadata()
    where: Path = ds.path_on_disk
    obj: trove.Object = ds.objects["a.bin"]
    size: int = obj.size
    value: object = obj.load()
    found: trove.Found = s.find("t >= 300", project="lab", sort="-t", limit=10)
    n: int = len(found)
    refs: list[str] = found.refs()
    first: trove.Dataset | None = s.find({"t": {"$gte": 300}}).first()
    for d in s.find(t__gte=300, kind="run"):
        print(d.ref, d.id, d.project, d.path, d.kind, d.created, d.updated)
    created, updated = s.ingest([{"path": "lab/runs/r2", "metadata": {"t": 1}}])
    keys: list[dict[str, object]] = s.schema()
    moved: trove.Dataset = ds.move("lab/archive/r1")
    copy: trove.Dataset = moved.copy("lab/scratch/r1")
    copy.remove()
    removed: int = s.remove("lab/archive/r1")
    try:
        s["lab/nope"]
    except trove.NotFound as e:
        print(e)
    except trove.FilterError as e:
        print(e.column)
    print(projects, is_tagged, meta, inherited, where, size, value, n, refs, first, created, updated, keys, removed)


def more(ds: trove.Dataset) -> None:
    kids: list[trove.Dataset] = ds.children()
    log: list[dict[str, object]] = ds.history()
    print(kids, log)


def derived(s: trove.Store, ds: trove.Dataset) -> None:
    with s.batch():
        ds.update(status="batched")
    lineage: dict[str, object] | None = ds.lineage
    frame: object = s.find(status="batched").to_pandas()
    value: object = s.get_or_compute("double", "1", lambda: {"x": 2}, config={"n": 2}, inputs=[ds])

    @trove.cached(store=s, version="2")
    def double(n: int) -> dict[str, int]:
        return {"x": 2 * n}

    again: object = double(3)
    print(lineage, frame, value, again)
