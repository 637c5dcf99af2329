"""numpy reads the npy files trove keeps, and trove gives them back byte for byte."""

from __future__ import annotations

import numpy as np
import pytest

DTYPES = ["bool", "int8", "uint16", "int32", "int64", "float32", "float64", "complex64", "complex128"]
SHAPES = [(7,), (3, 4, 5)]


def sample(dtype: str, shape: tuple[int, ...], seed: int = 1) -> np.ndarray:
    """Values that use the dtype's whole range (and NaN and infinities for floats)."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    n = int(np.prod(shape))
    if dt.kind == "b":
        a = rng.random(n) < 0.5
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        a = rng.integers(info.min, info.max, size=n, dtype=dt, endpoint=True)
        a[0], a[-1] = info.min, info.max
    else:
        real = np.float32 if dt in (np.float32, np.complex64) else np.float64
        a = (rng.standard_normal(n) * 1e3).astype(real)
        if n > 3:
            a[:3] = [np.nan, np.inf, -np.inf]
        if dt.kind == "c":
            a = a + 1j * (rng.standard_normal(n).astype(real))
        a = a.astype(dt)
    return a.reshape(shape)


def assert_same_array(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    assert np.array_equal(got, want, equal_nan=want.dtype.kind in "fc")


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", DTYPES)
def test_npy_is_kept_and_read_by_numpy(store, dtype, shape):
    a = sample(dtype, shape)
    src = store.path("arr.npy")
    np.save(src, a)
    store.out("put", "lab/a", src)
    show = store.show_json("lab/a:arr.npy")
    assert show.get("format") == "npy", show
    assert_same_array(np.load(store.locate("lab/a:arr.npy")), a)
    out = store.path("out.npy")
    store.out("get", "lab/a:arr.npy", "-o", out)
    assert out.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("order", ["fortran", "big-endian"])
def test_unusual_npy_files_are_kept_too(store, order):
    a = sample("float64", (4, 6))
    a = np.asfortranarray(a) if order == "fortran" else a.astype(">f8")
    src = store.path("arr.npy")
    np.save(src, a)
    store.out("put", "lab/a", src)
    assert_same_array(np.load(store.locate("lab/a:arr.npy")), a)
    out = store.path("out.npy")
    store.out("get", "lab/a:arr.npy", "-o", out)
    assert out.read_bytes() == src.read_bytes()


def test_zero_dimensional_npy(store):
    a = np.array(2.5)
    src = store.path("arr.npy")
    np.save(src, a)
    proc = store.run("put", "lab/a", src, ok=False)
    if proc.returncode != 0:
        # Refusing a 0-d array is allowed, with a clear message (not a panic).
        assert proc.stderr.startswith("error:") and "panicked" not in proc.stderr, proc.stderr
        pytest.skip(f"trove refuses 0-d arrays: {proc.stderr.strip()}")
    assert_same_array(np.load(store.locate("lab/a:arr.npy")), a)
    out = store.path("out.npy")
    store.out("get", "lab/a:arr.npy", "-o", out)
    assert out.read_bytes() == src.read_bytes()
