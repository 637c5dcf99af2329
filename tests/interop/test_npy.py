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


SLICES = [("1:3", np.s_[1:3]), ("::-2", np.s_[::-2]), ("-1", np.s_[-1]), ("1:, ::2", np.s_[1:, ::2]), ("0:0", np.s_[0:0])]


def every_kind_of_array() -> dict[str, np.ndarray]:
    """Arrays of the dtypes numpy users keep besides plain numbers, 2-d where numpy allows, with Unicode,
    NUL bytes, NaT and the extremes of int64."""
    rng = np.random.default_rng(7)
    times = np.array(["2024-01-01T00:00:00.123456789", "NaT", "1970-01-01", "2262-04-11T23:47:16"], dtype="datetime64[ns]")
    return {
        "datetime64": np.tile(times, (3, 1)),
        "timedelta64": (rng.integers(-(2**62), 2**62, size=(3, 4))).astype("timedelta64[s]"),
        "unicode": np.array([["α", "βγ", "", "naïve"], ["日本", "a\u0000b", "x" * 7, "🙂"], ["", "", "z", "é"]], dtype="<U7"),
        "bytes": np.array([[b"ab", b"\x00\x01", b"", b"xyz"]] * 3, dtype="S3"),
        "records": np.array(
            [[(1.5, [2**63 - 1, -(2**63)], "a"), (np.nan, [0, 1], "é")] * 2] * 3,
            dtype=[("x", "<f4"), ("y", "<i8", (2,)), ("name", "<U2")],
        ),
        "big-endian int": np.arange(12, dtype=">i4").reshape(3, 4),
        "fortran float16": np.asfortranarray(rng.standard_normal((3, 4)).astype("<f2")),
    }


@pytest.mark.parametrize("text,index", SLICES, ids=[s for s, _ in SLICES])
@pytest.mark.parametrize("kind", list(every_kind_of_array()))
def test_slices_of_every_fixed_size_dtype_are_what_numpy_slices(store, kind, text, index):
    a = every_kind_of_array()[kind]
    src = store.path("arr.npy")
    np.save(src, a)
    store.out("put", "lab/a", src)
    part = store.path("part.npy")
    store.out("get", "lab/a:arr.npy", "--slice", text, "-o", part)
    got, want = np.load(part), a[index]
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    assert got.tobytes() == np.ascontiguousarray(want).tobytes()
