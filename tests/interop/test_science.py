"""trove summarises the science files real writers make: HDF5 from h5py, netCDF-4 from h5netcdf (the layout
netCDF's C library writes), FITS from astropy and images from Pillow. Each summary is what `show --json`
prints and the catalog indexes, so `find` can ask about it; the file itself comes back byte for byte."""

from __future__ import annotations

import gzip
import json

import h5netcdf
import h5py
import numpy as np
from astropy.io import fits
from PIL import Image


def summary(store, ref: str) -> dict:
    show = store.show_json(ref)
    assert show.get("summary"), show
    return show


def test_hdf5_from_h5py(store):
    src = store.path("run α.h5")
    with h5py.File(src, "w") as f:
        f.attrs["title"] = "run α"
        f.attrs["seed"] = np.uint64(2**64 - 5)
        f.attrs["gains"] = np.array([1.5, -0.0, 2.25])
        f.attrs["flag"] = np.int8(-3)
        deep = f.create_group("raw/detector/ünïcode")
        for level in range(40):
            deep = deep.create_group(f"l{level}")
        deep.create_dataset("leaf", data=np.zeros(0, dtype="<f4"))
        d = f.create_dataset("raw/detector/counts", data=np.arange(12, dtype=">i4").reshape(3, 4), chunks=(1, 4), compression="gzip")
        d.attrs["units"] = "counts"
        f.create_dataset("table", data=np.zeros(3, dtype=[("x", "<f8"), ("name", "S4")]))
        f.create_dataset("names", data=["a", "bb"], dtype=h5py.string_dtype())
        f.create_dataset("ok", data=np.array([True, False]))
        f.create_dataset("scalar", data=3.0)
        f["same"] = f["scalar"]  # a hard link: the same dataset under two names
    store.out("put", "lab/h5", src)
    o = summary(store, "lab/h5:run α.h5")
    assert o["format"] == "hdf5", o
    s = o["summary"]
    assert s["attributes"] == {"title": "run α", "seed": 2**64 - 5, "gains": [1.5, 0, 2.25], "flag": -3}, s
    datasets = {d["path"]: d for d in s["datasets"]}
    counts = datasets["/raw/detector/counts"]
    assert (counts["dtype"], counts["shape"], counts["chunks"]) == ("int32", [3, 4], [1, 4]), counts
    assert counts["attributes"] == {"units": "counts"}
    assert datasets["/table"]["dtype"] == "compound(x: float64, name: S4)"
    assert datasets["/names"]["dtype"] == "str"
    assert datasets["/ok"]["dtype"] == "bool"
    assert datasets["/scalar"]["shape"] == [] and datasets["/same"]["shape"] == []
    leaf = [p for p in datasets if p.endswith("/l39/leaf")]
    assert leaf and datasets[leaf[0]]["shape"] == [0], sorted(datasets)
    assert "/raw/detector/ünïcode" in {g["path"] for g in s["groups"]}
    # The catalog indexes the summary: find asks about it.
    ids = store.out("find", "--ids", '@format == "hdf5"').split()
    assert ids == ["lab/h5"], ids
    back = store.path("back.h5")
    store.out("get", "lab/h5:run α.h5", "-o", back)
    assert back.read_bytes() == src.read_bytes()


def write_netcdf4(path):
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"time": None, "x": 3}
        f.attrs["title"] = "runs"
        f.attrs["seed"] = np.int64(-(2**63))
        t = f.create_variable("t", ("time", "x"), "f8")
        f.resize_dimension("time", 2)
        t[:] = np.ones((2, 3))
        t.attrs["units"] = "K"
        sub = f.create_group("sub")
        sub.dimensions = {"y": 2}
        sub.create_variable("u", ("y",), "i2")


def test_netcdf4_from_h5netcdf_plain_and_gzipped(store):
    src = store.path("run.nc")
    write_netcdf4(src)
    store.out("put", "lab/nc", src)
    o = summary(store, "lab/nc:run.nc")
    assert o["format"] == "netcdf", o
    s = o["summary"]
    assert s["netcdf"].startswith("netCDF-4"), s
    assert s["dimensions"] == {"time": 2, "x": 3} and s["unlimited"] == ["time"], s
    assert s["attributes"]["title"] == "runs" and s["attributes"]["seed"] == -(2**63), s
    t = next(v for v in s["variables"] if v["name"] == "t")
    assert (t["dtype"], t["dimensions"], t["shape"], t["attributes"]) == ("float64", ["time", "x"], [2, 3], {"units": "K"})
    sub = s["groups"][0]
    assert sub["name"] == "sub" and sub["variables"][0]["dimensions"] == ["y"], sub

    # The same file gzipped keeps its format word and summary; a second dataset with identical bytes too.
    gz = store.path("run.nc.gz")
    gz.write_bytes(gzip.compress(src.read_bytes()))
    store.out("put", "lab/ncgz", gz)
    store.out("put", "lab/nc-copy", src)
    z = summary(store, "lab/ncgz:run.nc.gz")
    assert z["format"] == "netcdf" and z["summary"]["dimensions"] == s["dimensions"], z
    assert summary(store, "lab/nc-copy:run.nc")["summary"] == s
    assert store.out("find", "--count", '@format == "netcdf"').strip() == "3"


def test_fits_from_astropy(store):
    primary = fits.PrimaryHDU(np.arange(6, dtype=">i2").reshape(2, 3))
    primary.header["OBJECT"] = "M31 'core'"
    primary.header["EXPTIME"] = 15.0
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="flux", format="D", unit="Jy", array=np.ones(4)), fits.Column(name="id", format="J", array=np.arange(4))],
        name="CATALOG",
    )
    src = store.path("sky.fits")
    fits.HDUList([primary, table, fits.ImageHDU(np.zeros((4, 5, 6), dtype=np.float32), name="CUBE")]).writeto(src)
    store.out("put", "lab/fits", src)
    s = summary(store, "lab/fits:sky.fits")["summary"]
    hdus = s["hdus"]
    assert [h["type"] for h in hdus] == ["PRIMARY", "BINTABLE", "IMAGE"], hdus
    assert hdus[0]["shape"] == [2, 3] and hdus[0]["bitpix"] == 16, hdus[0]
    assert hdus[0]["header"]["OBJECT"] == "M31 'core'" and hdus[0]["header"]["EXPTIME"] == 15.0, hdus[0]
    assert hdus[1]["name"] == "CATALOG" and hdus[1]["rows"] == 4, hdus[1]
    assert [c["name"] for c in hdus[1]["columns"]] == ["flux", "id"] and hdus[1]["columns"][0]["unit"] == "Jy"
    assert hdus[2]["shape"] == [4, 5, 6] and hdus[2]["bitpix"] == -32, hdus[2]
    gz = store.path("sky.fits.gz")
    gz.write_bytes(gzip.compress(src.read_bytes()))
    store.out("put", "lab/fitsgz", gz)
    assert summary(store, "lab/fitsgz:sky.fits.gz")["summary"] == s


def test_images_from_pillow(store):
    for name, mode, size in [("a.png", "RGBA", (64, 32)), ("b.jpg", "RGB", (17, 9)), ("c.tif", "I;16", (10, 20)), ("d.png", "LA", (5, 6)), ("e.gif", "P", (3, 4)), ("f.bmp", "RGB", (7, 8))]:
        src = store.path(name)
        Image.new(mode, size).save(src)
        store.out("put", "lab/img", src)
        with Image.open(src) as im:
            want = (im.width, im.height, im.mode)
        s = summary(store, f"lab/img:{name}")["summary"]
        assert (s["width"], s["height"], s["mode"]) == want, (name, s)


def test_json_summary_keeps_keys_exactly(store):
    src = store.path("params.json")
    src.write_text(json.dumps({"α": 1, "seed": 12345678901234567891, "nul": "a\u0000b", "deep": {"x": [1]}}))
    store.out("put", "lab/json", src)
    s = summary(store, "lab/json:params.json")["summary"]
    assert s == {"keys": ["α", "seed", "nul", "deep"], "key_count": 4}, s
