"""zarr-python 3 opens the Zarr arrays trove writes from npy files, and trove converts them back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from conftest import numbers_in
from test_npy import DTYPES, assert_same_array, sample

SHAPE = (25, 37)  # not a multiple of 10: edge chunks are partial


def put_zarr(store, a: np.ndarray, *options: str):
    src = store.path("arr.npy")
    np.save(src, a)
    out = store.out("put", "lab/z", src, "--as", "zarr", *options)
    assert "arr.zarr" in out, out
    path = store.locate("lab/z:arr.zarr")
    assert path.is_dir() and (path / "zarr.json").is_file(), sorted(p.name for p in path.iterdir())
    return path


def metadata(path) -> dict:
    return json.loads((path / "zarr.json").read_text())


def codec_names(meta: dict) -> list[str]:
    names = []
    for codec in meta.get("codecs", []):
        names.append(codec.get("name"))
        names += [c.get("name") for c in codec.get("configuration", {}).get("codecs", [])]  # sharding
    return names


@pytest.mark.parametrize("dtype", DTYPES)
def test_zarr_python_reads_trove_zarr(store, dtype):
    a = sample(dtype, SHAPE)
    path = put_zarr(store, a)
    z = zarr.open_array(path, mode="r")
    assert z.shape == a.shape and z.dtype == a.dtype, (z.shape, z.dtype)
    assert_same_array(z[...], a)
    back = store.path("back.npy")
    store.out("get", "lab/z:arr.zarr", "--as", "npy", "-o", back)
    assert_same_array(np.load(back), a)


def test_chunks_are_the_ones_asked_for(store):
    a = sample("float64", SHAPE)
    path = put_zarr(store, a, "--chunks", "10,10")
    meta = metadata(path)
    assert meta["zarr_format"] == 3 and meta["node_type"] == "array", meta
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [10, 10], meta
    z = zarr.open_array(path, mode="r")
    assert z.chunks == (10, 10)
    assert_same_array(z[...], a)
    assert_same_array(z[3:17, 20:], a[3:17, 20:])


def test_uncompressed_zarr_reads(store):
    a = sample("int32", SHAPE)
    path = put_zarr(store, a, "--compression", "none")
    names = codec_names(metadata(path))
    assert not {"zstd", "blosc", "gzip"} & set(names), names
    assert_same_array(zarr.open_array(path, mode="r")[...], a)
    back = store.path("back.npy")
    store.out("get", "lab/z:arr.zarr", "--as", "npy", "-o", back)
    assert_same_array(np.load(back), a)


def test_big_endian_and_fortran_npy_become_the_same_values(store):
    for a in (sample("float64", SHAPE).astype(">f8"), np.asfortranarray(sample("int64", SHAPE))):
        path = put_zarr(store, a, "--chunks", "10,10")
        assert np.array_equal(zarr.open_array(path, mode="r")[...], a, equal_nan=True)
        back = store.path("back.npy")
        store.out("get", "lab/z:arr.zarr", "--as", "npy", "-o", back)
        assert np.array_equal(np.load(back), a, equal_nan=True)


def test_cat_slice_shows_the_sliced_values(store):
    a = np.arange(SHAPE[0] * SHAPE[1], dtype="float64").reshape(SHAPE)
    put_zarr(store, a, "--chunks", "10,10")
    out = store.out("cat", "lab/z:arr.zarr", "--slice", "0:5, 3")
    shown = set(numbers_in(out))
    want = a[0:5, 3]  # 3, 40, 77, 114, 151
    assert set(want.tolist()) <= shown, f"expected {want.tolist()} in:\n{out}"
    assert a[5, 3] not in shown and a[0, 4] not in shown, f"values outside the slice in:\n{out}"


TIMES_AND_TEXT = ["datetime64", "timedelta64", "unicode"]


@pytest.mark.parametrize("kind", TIMES_AND_TEXT)
def test_times_and_text_go_both_ways_with_zarr_python(store, kind):
    import warnings

    from test_npy import every_kind_of_array

    a = every_kind_of_array()[kind]
    path = put_zarr(store, a, "--chunks", "2,3")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr-python calls these extension types unstable
        got = zarr.open_array(path, mode="r")[...]
    assert got.dtype == a.dtype and got.tobytes() == a.tobytes(), (got, a)

    # And an array zarr-python wrote: trove keeps it, summarises it and converts it to the same npy.
    theirs = store.path("theirs.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        z = zarr.create_array(theirs, shape=a.shape, chunks=(2, 2), dtype=a.dtype, zarr_format=3)
        z[...] = a
    store.out("put", "lab/theirs", theirs)
    assert store.show_json("lab/theirs:theirs.zarr")["summary"]["dtype"] == str(a.dtype)
    out = store.path("back.npy")
    store.out("get", "lab/theirs:theirs.zarr", "--as", "npy", "-o", out)
    back = np.load(out)
    assert back.dtype == a.dtype and back.tobytes() == a.tobytes()
