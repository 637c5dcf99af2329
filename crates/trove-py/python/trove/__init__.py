"""trove: a catalog and store for scientific data, from Python.

The same store, catalog and filter language as the `trove` command (the native module wraps the same Rust
library), so a script and the CLI always agree::

    import trove
    s = trove.open("~/data/lab-store")              # or trove.init(path); trove.open() finds it like the CLI
    lab = s.project("lab")
    ds = lab.put("runs/r17", "velocity.csv", metadata={"material": "steel", "temperature": 300}, tags={"pilot"})
    ds.update(reviewer="ada")
    for d in s.find("material == 'steel' and temperature >= 300"):
        print(d.ref, d.metadata["temperature"], d.path_on_disk)
    len(s.find(material="steel", temperature__gte=300))   # an index count

Errors are one tree under `trove.Error` (`NotFound`, `FilterError`, `InvalidName`, ...), each with the CLI's
one-line message.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, overload

from trove import _trove
from trove._errors import (
    Conflict,
    Error,
    FilterError,
    IntegrityError,
    InvalidInput,
    InvalidName,
    NotFound,
    StorageError,
    StoreNotFound,
)

__all__ = [
    "Conflict",
    "Dataset",
    "Error",
    "FilterError",
    "Found",
    "IntegrityError",
    "InvalidInput",
    "InvalidName",
    "NotFound",
    "Object",
    "Project",
    "StorageError",
    "Store",
    "StoreNotFound",
    "Tags",
    "cached",
    "init",
    "open",
]

__version__: str = _trove.__version__

PathLike = str | os.PathLike[str]

#: Django/Hera-style lookups of `Store.find(**lookups)`: `temperature__gte=300`.
LOOKUPS = {"exact": None, "ne": "$ne", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte", "in": "$in",
           "nin": "$nin", "exists": "$exists", "glob": "$glob"}

#: Datasets fetched by the first round trip while iterating over a `Found`; each next one fetches twice as
#: many, up to `MAX_BATCH`.
BATCH = 1000
MAX_BATCH = 64_000


def open(root: PathLike | None = None, connection: str | None = None) -> Store:  # noqa: A001 - the module's verb
    """Opens a store: `root`, else `$TROVE_STORE`, else the named `connection` (else `$TROVE_CONNECTION`; see
    `trove connections`), else the nearest folder above the current one holding `trove.toml`, else the
    connection named like the login user.

    >>> s = trove.open("/data/lab-store")   # doctest: +SKIP
    >>> s = trove.open(connection="lab")    # doctest: +SKIP
    """
    if root is not None and connection is not None:
        raise ValueError("give root or connection, not both")
    return Store(_trove.Store.open(None if root is None else _location(root), connection))


def init(root: PathLike, durable: bool = True, catalog: str | None = None) -> Store:
    """Makes a new store at `root` and opens it. `durable=False` skips fsyncs (scratch stores, tests);
    `catalog` is a PostgreSQL URL for a catalog many machines share (the password from `PGPASSWORD`).

    >>> s = trove.init("/tmp/scratch-store", durable=False)   # doctest: +SKIP
    >>> s = trove.init("/data/lab", catalog="postgres://ann@db/lab")   # doctest: +SKIP
    """
    return Store(_trove.Store.init(_location(root), durable, catalog))


def _location(root: PathLike) -> str:
    """A store location as the library takes it: an object-store URL as it is, a folder with `~` expanded."""
    text = os.fspath(root)
    if isinstance(text, str) and "://" in text:
        return text
    return os.fspath(Path(root).expanduser())


def _edit(**parts: Any) -> str:
    return json.dumps({k: v for k, v in parts.items() if v is not None}, allow_nan=False)


class Store:
    """An open store. Safe to share between threads; after `fork`, open it again in the child.

    >>> s = trove.open()                       # doctest: +SKIP
    >>> s["lab/runs/r17"].metadata             # doctest: +SKIP
    {'material': 'steel', 'temperature': 300}
    """

    def __init__(self, native: _trove.Store) -> None:
        self._native = native

    @property
    def root(self) -> Path:
        """The store's folder (for a store in an object store, this machine's folder of its cached catalog).

        >>> s.root / "lab"   # doctest: +SKIP
        """
        return Path(self._native.root())

    @property
    def location(self) -> str:
        """Where the store is: its folder, or its object-store URL (`s3://bucket/prefix`).

        >>> trove.open("s3://lab-bucket/trove").location   # doctest: +SKIP
        's3://lab-bucket/trove'
        """
        return self._native.location()

    @property
    def catalog(self) -> str:
        """Where the catalog lives: the SQLite file, or the PostgreSQL URL (without its password).

        >>> s.catalog   # doctest: +SKIP
        'PostgreSQL postgres://ann@db/lab'
        """
        return self._native.catalog_location()

    def __repr__(self) -> str:
        return f"trove.Store({str(self.root)!r})"

    def sync(self) -> int:
        """Applies commits other processes made since (every call does this too); returns how many.

        >>> s.sync()   # doctest: +SKIP
        """
        return self._native.sync()

    @contextlib.contextmanager
    def batch(self) -> Iterator[Store]:
        """Groups every write this thread makes inside the block into one commit (one log segment, one fsync):
        all of it is written when the block ends, or none of it if the block raises. Reads inside the block
        see its writes; other threads and processes see them once it ends. A batch keeps other writers of the
        store waiting, so keep it to the loop that needs it. Batches nest (an inner one joins the outer).

        >>> with s.batch():                                          # doctest: +SKIP
        ...     for run in runs:
        ...         s[run].update(status="done")
        """
        self._native.begin_batch()
        try:
            yield self
        except BaseException:
            self._native.end_batch(False)
            raise
        self._native.end_batch(True)

    def project(self, name: str, metadata: Mapping[str, Any] | None = None) -> Project:
        """The project `name` (made on its first write); `metadata` is set on it now if given.

        >>> lab = s.project("lab", metadata={"institute": "Materials Physics Lab"})   # doctest: +SKIP
        """
        if metadata:
            self._native.project(name, json.dumps(dict(metadata), allow_nan=False))
        return Project(self, name)

    def projects(self) -> list[Project]:
        """Every project of the store.

        >>> [p.name for p in s.projects()]   # doctest: +SKIP
        """
        return [Project(self, p["project"]) for p in json.loads(self._native.projects())]

    def dataset(self, ref: str) -> Dataset:
        """The dataset `PROJECT/PATH`; raises `trove.NotFound` when there is none.

        >>> s.dataset("lab/runs/r17").tags   # doctest: +SKIP
        """
        return Dataset(self, json.loads(self._native.show(ref, False)))

    def __getitem__(self, ref: str) -> Dataset:
        """The dataset `PROJECT/PATH` (`trove.NotFound` when absent).

        >>> s["lab/runs/r17"]   # doctest: +SKIP
        """
        return self.dataset(ref)

    def __contains__(self, ref: object) -> bool:
        """Whether a dataset is at `PROJECT/PATH`.

        >>> "lab/runs/r17" in s   # doctest: +SKIP
        """
        if not isinstance(ref, str):
            return False
        try:
            self.dataset(ref)
        except NotFound:
            return False
        return True

    def find(
        self,
        filter: str | Mapping[str, Any] | None = None,  # noqa: A002 - the word every user types
        *,
        project: str | None = None,
        inherited: bool = False,
        sort: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        **lookups: Any,
    ) -> Found:
        """The datasets matching a filter: the text language (`"material == 'steel' and temperature >= 300"`),
        the MongoDB form (`{"temperature": {"$gte": 300}}`), or keyword lookups (`material="steel",
        temperature__gte=300`; `__` reaches into nested keys; lookups: exact ne lt lte gt gte in nin exists
        glob). All given are ANDed. The result is lazy: `len()` counts in the index, iteration streams.

        >>> len(s.find(material="steel", sample__thickness_mm__in=[1, 2]))   # doctest: +SKIP
        """
        text: str | None = None
        mongo: dict[str, Any] = {}
        if isinstance(filter, str):
            text = filter
        elif filter is not None:
            mongo.update(filter)
        clauses = [mongo] if mongo else []
        for name, value in lookups.items():
            parts = name.split("__")
            op = None
            if len(parts) > 1 and parts[-1] in LOOKUPS:
                op = LOOKUPS[parts[-1]]
                parts = parts[:-1]
            key = ".".join(parts)
            clauses.append({key: value} if op is None else {key: {op: value}})
        combined: dict[str, Any] | None = None
        if len(clauses) == 1:
            combined = clauses[0]
        elif clauses:
            combined = {"$and": clauses}
        return Found(self, text, None if combined is None else json.dumps(combined, allow_nan=False), project,
                     inherited, sort, limit, offset)

    def remove(self, *refs: str, recursive: bool = False) -> int:
        """Removes datasets (with everything below them when `recursive`) in one commit, all or none.

        >>> s.remove("lab/scratch/a", "lab/scratch/b")   # doctest: +SKIP
        """
        return self._native.remove(list(refs), recursive)

    def ingest(self, records: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
        """Creates or updates many datasets from dicts in the `trove ingest` shape (`{"path": "lab/runs/1",
        "kind": ..., "metadata": {...}, "tags": [...], "files": {"NAME": "local/file"}}`): every record is
        checked before anything is written, one commit per batch. Returns `(created, updated)`.

        >>> s.ingest({"path": f"lab/runs/{i}", "metadata": {"i": i}} for i in range(10_000))   # doctest: +SKIP
        """
        lines = "\n".join(json.dumps(dict(r), allow_nan=False, ensure_ascii=False) for r in records)
        return self._native.ingest(lines)

    def sql(self, query: str) -> Any:
        """Read-only SQL over the documented views (`datasets tags objects metadata projects`, as `trove sql`),
        as a pandas DataFrame.

        >>> s.sql("SELECT tag, count(*) AS n FROM tags GROUP BY tag")   # doctest: +SKIP
        """
        import pandas as pd

        result = json.loads(self._native.sql(query))
        return pd.DataFrame(result["rows"], columns=result["columns"])

    def get_or_compute(
        self,
        name: str,
        version: str,
        fn: Callable[[], Any],
        *,
        config: Mapping[str, Any] | None = None,
        inputs: Iterable[Any] = (),
        project: str = "derived",
        code: Mapping[str, str] | None = None,
    ) -> Any:
        """The value derived by `name`/`version` from `config` and `inputs`: loaded from the store if it was
        computed before (by any process), else `fn()` runs once (other threads and processes asking meanwhile
        wait for it) and what it returns is stored with its lineage, then loaded back. A DataFrame or pyarrow
        Table is stored as Parquet, a numpy array as npy, a dict of JSON values as metadata, `bytes` as a
        file; a tuple, or a dict whose values are all of those data kinds, as several objects. `inputs` are
        trove `Object`s and `Dataset`s (by content) or numpy arrays, pandas objects and bytes (hashed). `code`
        maps names to source text that enters the key. If `fn` raises, nothing is stored and the exception
        propagates.

        >>> s.get_or_compute("smooth", "1", lambda: smooth(raw, 5), config={"window": 5}, inputs=[raw_obj])   # doctest: +SKIP
        """
        refs: list[str] = []
        checksums: list[str] = []
        for item in inputs:
            if isinstance(item, (Object, Dataset)):
                refs.append(item.ref)
            else:
                checksums.append(_content_checksum(item))
        code_pairs = [(file, _trove.Store.checksum(text.encode("utf-8"))) for file, text in sorted((code or {}).items())]

        def compute(folder: str) -> str | None:
            meta = _write_result(fn(), Path(folder))
            return json.dumps(meta, allow_nan=False, ensure_ascii=False)

        outcome = json.loads(self._native.get_or_compute(
            name, version, json.dumps(dict(config or {}), allow_nan=False, ensure_ascii=False, sort_keys=True),
            refs, checksums, code_pairs, project, compute))
        return _load_result(self.dataset(outcome["reference"]))

    def schema(self, project: str | None = None) -> list[dict[str, Any]]:
        """The metadata keys in use, with their types, counts and ranges (`trove schema --json`).

        >>> {k["key"]: k["types"] for k in s.schema("lab")}   # doctest: +SKIP
        """
        return list(json.loads(self._native.schema(project)))


class Project:
    """A project: a namespace of datasets with its own metadata, which its datasets inherit.

    >>> lab = s.project("lab"); lab.put("runs/r1", metadata={"t": 300})   # doctest: +SKIP
    """

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name

    def __repr__(self) -> str:
        return f"trove.Project({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Project) and (other.store.root, other.name) == (self.store.root, self.name)

    def __hash__(self) -> int:
        return hash(self.name)

    @property
    def metadata(self) -> dict[str, Any]:
        """The project's own metadata.

        >>> s.project("lab").metadata.get("institute")   # doctest: +SKIP
        """
        for p in json.loads(self.store._native.projects()):
            if p["project"] == self.name:
                return dict(p.get("metadata", {}))
        return {}

    def dataset(self, path: str) -> Dataset:
        """The dataset at `path` in this project (`trove.NotFound` when absent).

        >>> s.project("lab").dataset("runs/r17")   # doctest: +SKIP
        """
        return self.store.dataset(f"{self.name}/{path}")

    def __getitem__(self, path: str) -> Dataset:
        """The dataset at `path` in this project.

        >>> s.project("lab")["runs/r17"]   # doctest: +SKIP
        """
        return self.dataset(path)

    def datasets(self) -> Found:
        """Every dataset of the project, in path order.

        >>> [d.path for d in s.project("lab").datasets()]   # doctest: +SKIP
        """
        return self.store.find(project=self.name)

    def put(
        self,
        path: str,
        data: Any = None,
        *,
        name: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        kind: str | None = None,
        files: Iterable[PathLike] = (),
    ) -> Dataset:
        """Creates or updates the dataset `path` in one commit: the top-level keys of `metadata` are set as
        given (others kept; keys follow the CLI's rule: no dots, no leading `@` or `$`), tags added, objects
        added or replaced atomically.

        `data` is a file or folder path (`str`/`Path`, stored as it is), `bytes` (an object named `name`,
        default `data.bin`), a `dict` (a JSON object, default `data.json`), a numpy array (`.npy`, default
        `data.npy`), a pandas DataFrame, pyarrow Table or RecordBatchReader, polars DataFrame or anything
        with `__arrow_c_stream__` (Parquet, default `data.parquet`), or an xarray Dataset/DataArray (a Zarr
        group `xarray.open_zarr` opens, default `data.zarr`). `files` imports more files as the CLI does.

        >>> lab.put("runs/r17", "velocity.csv", metadata={"temperature": 300}, tags={"pilot"})   # doctest: +SKIP
        """
        imports: list[tuple[str, str | None, str | None]] = [(os.fspath(f), None, None) for f in files]
        edit = _edit(meta_doc=dict(metadata) if metadata else None, tags_add=sorted(set(tags)) or None, kind=kind)
        if data is None or isinstance(data, (str, os.PathLike)):
            if data is not None:
                imports.insert(0, (os.fspath(data), name, None))
            self.store._native.put(self.name, path, edit, imports)
            return self.dataset(path)
        # Values are written once, by the library that owns their type, into the store's own staging area,
        # from where the put moves the file in (hashing it is the only other pass over its bytes).
        scratch = Path(self.store._native.scratch_folder())
        try:
            imports.insert(0, _import_of(data, name, scratch))
            self.store._native.put(self.name, path, edit, imports, adopt=True)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return self.dataset(path)


def _import_of(data: Any, name: str | None, scratch: Path) -> tuple[str, str | None, str | None]:
    """What `put` imports for `data` (source, object name, format to store it as): its own path, or a file
    written into `scratch` by the library that owns the type (numpy's `save`, pyarrow's Parquet writer)."""
    if isinstance(data, (str, os.PathLike)):
        return os.fspath(data), name, None
    if isinstance(data, (bytes, bytearray, memoryview)):
        target = scratch / (name or "data.bin")
        target.write_bytes(bytes(data))
        return os.fspath(target), None, None
    if isinstance(data, dict):
        target = scratch / (name or "data.json")
        target.write_text(json.dumps(data, allow_nan=False, ensure_ascii=False), encoding="utf-8")
        return os.fspath(target), None, None
    module = type(data).__module__.split(".")[0]
    if module == "xarray":
        import xarray as xr

        # A Zarr v3 group as xarray writes it: each variable an array carrying its dimension names, the
        # coordinates and attributes kept, so that `xarray.open_zarr` (and `Object.load`) gives it back.
        target = scratch / (name or "data.zarr")
        if isinstance(data, xr.DataArray):
            variable = data.name if data.name is not None else "data"
            dataset = data.to_dataset(name=variable)
            dataset.attrs[DATAARRAY_ATTR] = variable
        else:
            dataset = data
        dataset.to_zarr(target, mode="w-", zarr_format=3, consolidated=False)
        return os.fspath(target), None, None
    if module == "numpy":
        import numpy as np

        if name is not None and name.endswith(".zarr"):
            # Asked for a Zarr array: numpy writes the npy, trove converts it (chunked, compressed).
            target = scratch / (name[: -len(".zarr")] + ".npy")
            np.save(target, data, allow_pickle=False)
            return os.fspath(target), name, "zarr"
        target = scratch / (name or "data.npy")
        np.save(target, data, allow_pickle=False)
        return os.fspath(target), None, None
    if module in ("pandas", "pyarrow", "polars") or hasattr(data, "__arrow_c_stream__"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        target = scratch / (name or "data.parquet")
        if isinstance(data, pa.RecordBatchReader):
            # Streamed batch by batch: a reader may hold more than memory.
            with pq.ParquetWriter(target, data.schema, compression="zstd") as writer:
                for batch in data:
                    writer.write_batch(batch)
            return os.fspath(target), None, None
        # A pandas DataFrame through pyarrow's converter; anything else (a Table, a RecordBatch, a polars
        # DataFrame, any object with `__arrow_c_stream__`) through the Arrow C interface.
        table = pa.Table.from_pandas(data) if module == "pandas" else pa.table(data)
        pq.write_table(table, target, compression="zstd")
        return os.fspath(target), None, None
    raise TypeError(
        f"trove cannot store a {type(data).__module__}.{type(data).__qualname__}: give a file or folder path, "
        "bytes, a dict, a numpy array, a pandas DataFrame or a pyarrow Table"
    )


class Tags:
    """A dataset's tags: a set view whose `add` and `discard` are commits.

    >>> "calibrated" in ds.tags; ds.tags.add("reviewed")   # doctest: +SKIP
    """

    def __init__(self, dataset: Dataset) -> None:
        self._dataset = dataset

    def _current(self) -> set[str]:
        return set(self._dataset._view["tags"])

    def __contains__(self, tag: object) -> bool:
        """Whether the dataset has the tag.

        >>> "pilot" in ds.tags   # doctest: +SKIP
        """
        return tag in self._current()

    def __iter__(self) -> Iterator[str]:
        """The tags, sorted.

        >>> sorted(ds.tags)   # doctest: +SKIP
        """
        return iter(sorted(self._current()))

    def __len__(self) -> int:
        """How many tags.

        >>> len(ds.tags)   # doctest: +SKIP
        """
        return len(self._current())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Tags):
            return self._current() == other._current()
        return isinstance(other, (set, frozenset)) and self._current() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Tags({sorted(self._current())!r})"

    def add(self, *tags: str) -> None:
        """Adds tags (one commit).

        >>> ds.tags.add("reviewed", "final")   # doctest: +SKIP
        """
        self._dataset._edit(tags_add=list(tags))

    def discard(self, *tags: str) -> None:
        """Removes tags if present (one commit).

        >>> ds.tags.discard("pilot")   # doctest: +SKIP
        """
        self._dataset._edit(tags_rm=list(tags))


#: Formats `Object.load` reads as tables and as arrays.
TABLES = ("parquet", "csv", "tsv", "arrow")
ARRAYS = ("npy", "zarr")


def _slice_text(index: Any) -> str:
    """numpy indexing (`obj[0:5, :, 3]`, `obj[::-1]`, `obj[...]`) as the slice text trove parses."""
    items = index if isinstance(index, tuple) else (index,)

    def one(item: Any) -> str:
        if item is Ellipsis:
            return "..."
        if isinstance(item, slice):
            parts = ["" if v is None else str(int(v)) for v in (item.start, item.stop)]
            return ":".join(parts) + ("" if item.step is None else f":{int(item.step)}")
        if isinstance(item, int) and not isinstance(item, bool):
            return str(item)
        raise TypeError(f"an array object is indexed by integers, slices and ..., not {item!r}")

    return ", ".join(one(i) for i in items) or "..."


#: The attribute marking a Zarr group written from an `xarray.DataArray` (its variable's name), so that it
#: loads back as a DataArray.
DATAARRAY_ATTR = "_trove_dataarray"


def _is_labelled_zarr_group(path: Path) -> bool:
    """Whether `path` is a Zarr v3 group holding arrays that name their dimensions (as xarray writes them)."""
    try:
        root = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
        if root.get("node_type") != "group":
            return False
        for child in path.iterdir():
            meta = child / "zarr.json"
            if child.is_dir() and meta.is_file() and json.loads(meta.read_text(encoding="utf-8")).get("dimension_names"):
                return True
    except (OSError, ValueError, AttributeError):
        return False
    return False


def _xarray_of(path: Path) -> Any:
    """A Zarr group written by xarray, loaded into memory: an `xarray.Dataset`, or the `DataArray` it was."""
    import xarray as xr

    dataset = xr.open_zarr(path, consolidated=False, zarr_format=3).load()
    variable = dataset.attrs.pop(DATAARRAY_ATTR, None)
    if isinstance(variable, str) and variable in dataset:
        array = dataset[variable]
        array.attrs = dict(array.attrs)
        return array
    return dataset


class Object:
    """A data object of a dataset: a file or folder in the store, with its format, size, checksum and summary.

    >>> temps = ds.objects["t.parquet"].load(columns=["t", "temperature"], rows=range(0, 1000))   # doctest: +SKIP
    >>> part = ds.objects["field.zarr"][0:5, :, 3]      # reads only the chunks it needs   # doctest: +SKIP
    """

    def __init__(self, store: Store, view: dict[str, Any], dataset_ref: str) -> None:
        self._store = store
        self._view = view
        self.ref = f"{dataset_ref}:{view['name']}"

    @property
    def name(self) -> Any:
        """The object's name (its file name).

        >>> ds.objects["v.csv"].name   # doctest: +SKIP
        """
        return self._view["name"]
    @property
    def format(self) -> Any:
        """`parquet`, `npy`, `zarr`, `csv`, `hdf5`, ...

        >>> ds.objects["v.csv"].format     # "csv"   # doctest: +SKIP
        """
        return self._view["format"]
    @property
    def size(self) -> Any:
        """Bytes (a folder's files added up).

        >>> ds.objects["v.csv"].size   # doctest: +SKIP
        """
        return self._view["size"]
    @property
    def checksum(self) -> Any:
        """`blake3:...` of the content.

        >>> ds.objects["v.csv"].checksum   # doctest: +SKIP
        """
        return self._view["checksum"]
    @property
    def media_type(self) -> Any:
        """The media type, from content first.

        >>> ds.objects["v.csv"].media_type   # doctest: +SKIP
        """
        return self._view.get("media_type")
    @property
    def summary(self) -> Any:
        """What `trove show` prints about the content.

        >>> ds.objects["v.csv"].summary["columns"]   # doctest: +SKIP
        """
        return self._view.get("summary")

    @property
    def _remote(self) -> bool:
        return "://" in self._store.location

    @property
    def path_on_disk(self) -> Path:
        """The absolute path of the object's file or folder (what `trove locate` prints). A store in a bucket
        has none: `trove.StorageError` (use `load()`, or `export()`).

        >>> ds.objects["v.csv"].path_on_disk.read_text()   # doctest: +SKIP
        """
        if "://" in self._store.location:
            raise StorageError(f"{self.ref}: the store is at {self._store.location}, not on a local disk")
        return Path(self._store.root) / str(self._view["path"])

    def export(self, dest: PathLike) -> int:
        """Writes the object (a file, or a folder object as a folder) to `dest`, checked against its checksum;
        returns the bytes written.

        >>> ds.objects["v.csv"].export("/tmp/v.csv")   # doctest: +SKIP
        """
        return int(self._store._native.export(self.ref, os.fspath(dest)))

    def load(self, *, columns: list[str] | None = None, rows: range | slice | None = None,
             slice: str | None = None, as_: str = "pandas") -> Any:  # noqa: A002 - numpy's word
        """The object as the natural Python value: a pandas DataFrame for a table (`as_="pyarrow"` for a
        pyarrow Table, `"polars"` for a polars DataFrame; `columns=` and `rows=` read only what they need), a
        numpy array for an array (`slice="0:5, :, 3"` reads only the chunks needed), an xarray object for a
        Zarr group whose arrays name their dimensions, parsed JSON for a JSON file, the `Path` of any other
        folder, and `bytes` for any other file.

        >>> ds.objects["t.parquet"].load(columns=["t"], rows=range(100))   # doctest: +SKIP
        """
        fmt = self.format
        if fmt in TABLES:
            start = stop = None
            if rows is not None:
                if rows.step not in (None, 1):
                    raise ValueError("rows= takes a contiguous range (step 1)")
                start, stop = rows.start, rows.stop
            reader = self._store._native.read_table(self.ref, columns, start, stop)
            table = reader.read_all()
            if as_ == "pyarrow":
                return table
            if as_ == "polars":
                import polars

                return polars.from_arrow(table)
            if as_ != "pandas":
                raise ValueError(f"as_ is 'pandas', 'pyarrow' or 'polars', not {as_!r}")
            return table.to_pandas()
        if columns is not None or rows is not None:
            raise ValueError(f"columns= and rows= are for tables; {self.ref} is {fmt}")
        if fmt in ARRAYS:
            import numpy as np

            if fmt == "npy" and slice is None and not self._remote:
                # The stored file is the array as it was put: numpy reads it directly.
                return np.load(self.path_on_disk, allow_pickle=False)
            with tempfile.TemporaryDirectory(prefix="trove-load-") as scratch:
                target = Path(scratch) / "part.npy"
                self._store._native.export_slice(self.ref, slice or "...", os.fspath(target))
                return np.load(target, allow_pickle=False)
        if slice is not None:
            raise ValueError(f"slice= is for arrays; {self.ref} is {fmt}")
        if self._remote:
            # In a bucket: fetched whole, verified, into a scratch folder first.
            with tempfile.TemporaryDirectory(prefix="trove-load-") as scratch:
                path = Path(scratch) / self.name
                self.export(path)
                if path.is_dir():
                    if _is_labelled_zarr_group(path):
                        return _xarray_of(path).load()
                    raise StorageError(f"{self.ref} is a folder in {self._store.location}: export() it to a folder")
                if fmt == "json":
                    return json.loads(path.read_text(encoding="utf-8"))
                return path.read_bytes()
        path = self.path_on_disk
        if path.is_dir():
            return _xarray_of(path) if _is_labelled_zarr_group(path) else path
        if fmt == "json":
            return json.loads(path.read_text(encoding="utf-8"))
        return path.read_bytes()

    def __getitem__(self, index: Any) -> Any:
        """Part of an array object, numpy style: `obj[0:5, :, 3]`.

        >>> ds.objects["field.zarr"][0:5, :, 3]   # doctest: +SKIP
        """
        if self.format not in ARRAYS:
            raise TypeError(f"{self.ref} is {self.format}, not an array")
        return self.load(slice=_slice_text(index))

    def __repr__(self) -> str:
        return f"trove.Object({self.name!r}, format={self.format!r}, size={self.size})"


class Dataset:
    """A dataset: metadata, tags and objects at `PROJECT/PATH`. Reading attributes uses the state read when
    the object was made; `refresh()` reads it again (every edit through this object refreshes it).

    >>> ds = s["lab/runs/r17"]; ds.metadata["temperature"], sorted(ds.tags)   # doctest: +SKIP
    """

    def __init__(self, store: Store, view: dict[str, Any]) -> None:
        self.store = store
        self._view = view

    @property
    def id(self) -> Any:
        """The dataset's id (a UUID, kept across moves).

        >>> ds.id   # doctest: +SKIP
        """
        return self._view["id"]
    @property
    def project(self) -> Any:
        """The project's name.

        >>> ds.project   # "lab"   # doctest: +SKIP
        """
        return self._view["project"]
    @property
    def path(self) -> Any:
        """The path within the project (`runs/2024/r17`).

        >>> ds.path      # "runs/r17"   # doctest: +SKIP
        """
        return self._view["path"]
    @property
    def kind(self) -> Any:
        """The kind (`measurement`, `derived`, ...) or None.

        >>> ds.kind   # doctest: +SKIP
        """
        return self._view.get("kind")

    @property
    def ref(self) -> str:
        """`PROJECT/PATH`, what every command takes.

        >>> ds.ref          # "lab/runs/r17"   # doctest: +SKIP
        """
        return f"{self.project}/{self.path}"

    @property
    def created(self) -> datetime:
        """When the dataset was created (UTC).

        >>> ds.created.isoformat()   # doctest: +SKIP
        """
        return datetime.fromisoformat(self._view["created"])

    @property
    def updated(self) -> datetime:
        """When the dataset last changed (UTC).

        >>> ds.updated > ds.created   # doctest: +SKIP
        """
        return datetime.fromisoformat(self._view["updated"])

    @property
    def metadata(self) -> dict[str, Any]:
        """The dataset's own metadata (a copy: change it with `update`, `set_meta`, `unset`).

        >>> ds.metadata["sample"]["thickness_mm"]   # doctest: +SKIP
        """
        copied: dict[str, Any] = json.loads(json.dumps(self._view["metadata"]))
        return copied

    def inherited_metadata(self) -> dict[str, Any]:
        """The metadata merged under its project's and ancestors' (`trove show --inherited`).

        >>> ds.inherited_metadata()["institute"]   # doctest: +SKIP
        """
        return dict(json.loads(self.store._native.show(self.ref, True)).get("inherited", {}))

    @property
    def lineage(self) -> dict[str, Any] | None:
        """For derived data: what it was computed from (`name version config inputs code key`), else None.

        >>> (ds.lineage or {}).get("key")   # doctest: +SKIP
        """
        lineage = self._view.get("lineage")
        return None if lineage is None else dict(lineage)

    @property
    def tags(self) -> Tags:
        """The dataset's tags: a set view whose `add` and `discard` are commits.

        >>> ds.tags.add("reviewed")   # doctest: +SKIP
        """
        return Tags(self)

    @property
    def objects(self) -> dict[str, Object]:
        """Object name → `Object`.

        >>> list(ds.objects)   # doctest: +SKIP
        """
        return {o["name"]: Object(self.store, o, self.ref) for o in self._view.get("objects", [])}

    @property
    def path_on_disk(self) -> Path:
        """The absolute path of the dataset's folder (what `trove locate` prints).

        >>> sorted(p.name for p in ds.path_on_disk.iterdir())   # doctest: +SKIP
        """
        where = self.store._native.locate(self.ref)
        if "://" in where:
            raise StorageError(f"{self.ref} is at {where}, not on a local disk")
        return Path(where)

    def children(self) -> list[Dataset]:
        """The nearest datasets below this one (through folders that are not datasets), in path order.

        >>> [c.ref for c in s["lab/runs"].children()]   # doctest: +SKIP
        """
        return [self.store.dataset(ref) for ref in self.store._native.children(self.ref)]

    def history(self) -> list[dict[str, Any]]:
        """The commits that changed the dataset, oldest first, as `trove log REF --json` prints them: `time`,
        `op`, `writer`, `host`, `user`, and what changed.

        >>> [h["op"] for h in ds.history()]   # doctest: +SKIP
        """
        entries: list[dict[str, Any]] = json.loads(self.store._native.history(self.ref))
        return entries

    def refresh(self) -> Dataset:
        """Reads the dataset's state again (other processes may have changed it).

        >>> ds.refresh().metadata   # doctest: +SKIP
        """
        self._view = json.loads(self.store._native.show(self.ref, False))
        return self

    def _edit(self, **parts: Any) -> None:
        self.store._native.edit([self.ref], _edit(**parts))
        self.refresh()

    def update(self, **meta: Any) -> None:
        """Sets metadata keys (one commit): `ds.update(status="done", quality=0.93)`.

        >>> ds.update(status="done", quality=0.93)   # doctest: +SKIP
        """
        self._edit(meta=list(meta.items()))

    def set_meta(self, meta: Mapping[str, Any]) -> None:
        """Sets metadata keys from a dict; dotted keys reach into nested values (`{"sample.thickness_mm": 2}`).

        >>> ds.set_meta({"sample.thickness_mm": 2})   # doctest: +SKIP
        """
        self._edit(meta=list(dict(meta).items()))

    def unset(self, *keys: str) -> None:
        """Removes metadata keys (dotted keys remove nested values).

        >>> ds.unset("quality", "sample.thickness_mm")   # doctest: +SKIP
        """
        self._edit(unset=list(keys))

    def remove(self, recursive: bool = False) -> None:
        """Removes the dataset and its objects (one commit).

        >>> s["lab/scratch/tmp"].remove()   # doctest: +SKIP
        """
        self.store._native.remove([self.ref], recursive)

    def move(self, new_ref: str) -> Dataset:
        """Moves the dataset (its id is kept, its files move along) and returns it at its new place.

        >>> ds = ds.move("lab/archive/r17")   # doctest: +SKIP
        """
        self.store._native.rename(self.ref, new_ref)
        return self.store.dataset(new_ref)

    def copy(self, new_ref: str) -> Dataset:
        """Copies the dataset to `new_ref` (a new id, its origin recorded) and returns the copy.

        >>> twin = ds.copy("lab/scratch/r17")   # doctest: +SKIP
        """
        self.store._native.copy(self.ref, new_ref, False)
        return self.store.dataset(new_ref)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Dataset) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"trove.Dataset({self.ref!r})"


class Found:
    """The lazy result of `Store.find`: `len()` counts in the index; iteration streams datasets in batches;
    `refs()` lists `PROJECT/PATH`s; `first()` is the first match or None.

    >>> found = s.find(material="steel"); len(found), found.first()   # doctest: +SKIP
    """

    def __init__(self, store: Store, text: str | None, mongo: str | None, project: str | None, inherited: bool,
                 sort: str | None, limit: int | None, offset: int) -> None:
        _trove.Store.check(text, mongo, sort)  # a bad filter fails here, not at the first use
        self._store = store
        self._args: dict[str, Any] = dict(filter=text, mongo=mongo, project=project, inherited=inherited)
        self._sort, self._limit, self._offset = sort, limit, offset

    def __len__(self) -> int:
        """How many datasets match (an index count; nothing is read).

        >>> len(s.find(material="steel"))   # doctest: +SKIP
        """
        total = max(self._store._native.count(**self._args) - self._offset, 0)
        return total if self._limit is None else min(total, self._limit)

    def _windows(self, refs: bool) -> Iterator[str]:
        # Each window is a query of its own that skips the rows before it: windows double in size (up to
        # MAX_BATCH), so that iterating over n matches costs O(n), not O(n^2 / BATCH).
        done, window = 0, BATCH
        while self._limit is None or done < self._limit:
            size = window if self._limit is None else min(window, self._limit - done)
            batch = self._store._native.find(**self._args, sort=self._sort, offset=self._offset + done, limit=size,
                                             form="refs" if refs else "views")
            yield from batch
            done += len(batch)
            if len(batch) < size:
                return
            window = min(window * 2, MAX_BATCH)

    def __iter__(self) -> Iterator[Dataset]:
        """The matching datasets, streamed in batches.

        >>> for d in s.find(material="steel"): print(d.ref)   # doctest: +SKIP
        """
        for text in self._windows(refs=False):
            yield Dataset(self._store, json.loads(text))

    def refs(self) -> list[str]:
        """Every match as `PROJECT/PATH`, in order (no dataset is read; one query).

        >>> s.find("temperature >= 300").refs()   # doctest: +SKIP
        """
        return self._store._native.find(**self._args, sort=self._sort, offset=self._offset, limit=self._limit,
                                        form="refs")

    def to_pandas(self) -> Any:
        """The matches as a pandas DataFrame, one row per dataset: `id project path kind tags created updated`,
        then the metadata flattened to dotted columns (`sample.thickness_mm`), absent values as None.

        >>> s.find(material="steel").to_pandas().groupby("temperature").size()   # doctest: +SKIP
        """
        import pandas as pd

        table = json.loads(self._store._native.find(**self._args, sort=self._sort, offset=self._offset, form="table",
                                                          limit=self._limit))
        frame = pd.DataFrame(table["rows"], columns=table["columns"])
        for column in ("created", "updated"):
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        return frame

    def first(self) -> Dataset | None:
        """The first match, or None.

        >>> s.find(material="steel", sort="-temperature").first()   # doctest: +SKIP
        """
        found = self._store._native.find(**self._args, sort=self._sort, offset=self._offset, limit=1)
        return Dataset(self._store, json.loads(found[0])) if found else None

    def __repr__(self) -> str:
        return f"trove.Found({len(self)} datasets)"


#: The metadata key under which a Python result records its shape, so that it loads back as it was returned.
RESULT_KEY = "python_result"


def _data_kind(value: Any) -> str | None:
    """`"table"`, `"array"` or `"bytes"` for a value stored as an object; None for anything else."""
    module = type(value).__module__.split(".")[0]
    if module in ("pandas", "polars") and hasattr(value, "columns"):
        return "table"
    if module == "pyarrow" and type(value).__name__ in ("Table", "RecordBatch"):
        return "table"
    if module == "numpy" and hasattr(value, "dtype"):
        return "array"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes"
    return None


def _write_object(value: Any, folder: Path, stem: str) -> str:
    """Writes one data value into a computation's folder as `<stem>.<ext>`; returns the object name."""
    kind = _data_kind(value)
    if kind == "table":
        import pyarrow as pa
        import pyarrow.parquet as pq

        module = type(value).__module__.split(".")[0]
        table = pa.Table.from_pandas(value) if module == "pandas" else value.to_arrow() if module == "polars" \
            else pa.Table.from_batches([value]) if isinstance(value, pa.RecordBatch) else value
        name = f"{stem}.parquet"
        pq.write_table(table, folder / name, compression="zstd")
        return name
    if kind == "array":
        import numpy as np

        name = f"{stem}.npy"
        np.save(folder / name, value, allow_pickle=False)
        return name
    if kind == "bytes":
        name = f"{stem}.bin"
        (folder / name).write_bytes(bytes(value))
        return name
    raise TypeError(f"trove cannot store a {type(value).__module__}.{type(value).__qualname__} as data")


def _write_result(value: Any, folder: Path) -> dict[str, Any]:
    """Stores a computation's return value in its output folder; returns the result's metadata."""
    if isinstance(value, tuple):
        names = [_write_object(v, folder, f"item{i}") for i, v in enumerate(value)]
        return {RESULT_KEY: {"form": "tuple", "objects": names}}
    if isinstance(value, dict) and value and all(_data_kind(v) is not None for v in value.values()):
        names = [_write_object(v, folder, str(k)) for k, v in value.items()]
        return {RESULT_KEY: {"form": "dict", "keys": [str(k) for k in value], "objects": names}}
    if isinstance(value, dict):
        if RESULT_KEY in value:
            raise ValueError(f"a result stored as metadata cannot use the key {RESULT_KEY!r}")
        return {**value, RESULT_KEY: {"form": "metadata"}}
    return {RESULT_KEY: {"form": "value", "objects": [_write_object(value, folder, "result")]}}


def _load_result(dataset: Dataset) -> Any:
    """A stored result, loaded back in the shape the computation returned it."""
    meta = dataset.metadata
    shape = meta.pop(RESULT_KEY, None)
    if not isinstance(shape, dict):
        return dataset  # derived data made outside Python (`trove compute`): the dataset itself
    objects = dataset.objects
    loaded = [objects[name].load() for name in shape.get("objects", [])]
    form = shape.get("form")
    if form == "metadata":
        return meta
    if form == "tuple":
        return tuple(loaded)
    if form == "dict":
        return dict(zip(shape["keys"], loaded, strict=True))
    return loaded[0]


def _content_checksum(value: Any) -> str:
    """The checksum a value enters a lineage with: its bytes, with what gives them meaning (dtype, shape,
    columns) hashed in."""
    module = type(value).__module__.split(".")[0]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _trove.Store.checksum(bytes(value))
    if module == "numpy" and hasattr(value, "dtype"):
        import numpy as np

        array = np.ascontiguousarray(value)
        header = json.dumps({"dtype": array.dtype.str, "shape": list(array.shape)}).encode()
        return _trove.Store.checksum(header + b"\0" + array.tobytes())
    if module == "pandas":
        import pandas as pd

        frame = value.to_frame() if isinstance(value, pd.Series) else value
        described = json.dumps({"columns": [str(c) for c in frame.columns], "dtypes": [str(d) for d in frame.dtypes]})
        rows = pd.util.hash_pandas_object(frame, index=True).to_numpy()
        return _trove.Store.checksum(described.encode() + b"\0" + rows.tobytes())
    raise TypeError(f"a {type(value).__module__}.{type(value).__qualname__} cannot be an input: give trove "
                    "Objects or Datasets, numpy arrays, pandas objects or bytes")


P = ParamSpec("P")
R = TypeVar("R")


@overload
def cached(fn: Callable[P, R], /) -> Callable[P, R]: ...


@overload
def cached(
    fn: None = None,
    *,
    name: str | None = None,
    version: str = "1",
    store: Store | PathLike | None = None,
    hash_code: bool = True,
    project: str = "derived",
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def cached(
    fn: Callable[P, R] | None = None,
    *,
    name: str | None = None,
    version: str = "1",
    store: Store | PathLike | None = None,
    hash_code: bool = True,
    project: str = "derived",
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Makes a function's results derived data: its arguments become the lineage's config (canonical JSON),
    arguments that are trove Objects/Datasets or numpy/pandas values become inputs named by content, its
    source code is hashed in (`hash_code=False` to leave it out), and its return value is stored and loaded
    back on the next call with the same lineage (by any process). One call computes; others asking at once
    wait for it.

    >>> @trove.cached(version="2")                              # doctest: +SKIP
    ... def spectrum(run: trove.Dataset, window: int = 5) -> pd.DataFrame:
    ...     return compute_spectrum(run.objects["signal.npy"].load(), window)
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        import functools
        import inspect

        signature = inspect.signature(function)
        step = name or function.__name__
        source: dict[str, str] = {}
        if hash_code:
            try:
                source[f"{function.__module__}.{function.__qualname__}"] = inspect.getsource(function)
            except (OSError, TypeError) as e:
                raise TypeError(f"cannot read the source of {function.__qualname__} to hash it ({e}): pass "
                                "hash_code=False, and change version= when the code changes") from e

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            config: dict[str, Any] = {}
            inputs: list[Any] = []
            for arg, value in bound.arguments.items():
                # An input enters the key by content; the config says which argument it was.
                if isinstance(value, (Object, Dataset)) or _data_kind(value) is not None \
                        or type(value).__module__.split(".")[0] == "pandas":
                    config[arg] = {"input": len(inputs)}
                    inputs.append(value)
                else:
                    config[arg] = value
            target = store if isinstance(store, Store) else open(store)
            loaded: R = target.get_or_compute(step, version, lambda: function(*args, **kwargs), config=config,
                                         inputs=inputs, project=project, code=source)
            return loaded

        return wrapper

    return decorate if fn is None else decorate(fn)
