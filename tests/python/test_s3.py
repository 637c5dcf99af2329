"""The Python package on a store in an S3 bucket (the SeaweedFS server scripts/test starts, at
$TROVE_TEST_S3_ENDPOINT): the same calls as on a folder, objects written and read back through the bucket."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pytest

import trove


def under_ci() -> bool:
    return os.environ.get("CI", "") not in ("", "false", "0")


@pytest.fixture
def bucket_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    endpoint = os.environ.get("TROVE_TEST_S3_ENDPOINT", "")
    if not endpoint:
        if under_ci():
            pytest.fail("TROVE_TEST_S3_ENDPOINT is not set: under CI the S3 tests must run")
        pytest.skip("*** no S3 server (TROVE_TEST_S3_ENDPOINT is not set; scripts/test starts one) ***")
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ["TROVE_TEST_S3_KEY"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ["TROVE_TEST_S3_SECRET"])
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    monkeypatch.setenv("TROVE_CACHE", str(tmp_path / "cache"))
    bucket = os.environ.get("TROVE_TEST_S3_BUCKET", "trove-test")
    return f"s3://{bucket}/py-{uuid.uuid4().hex}"


def test_a_store_in_a_bucket_keeps_and_finds_what_a_folder_store_does(bucket_url: str, tmp_path: Path) -> None:
    s = trove.init(bucket_url)
    assert s.location == bucket_url
    lab = s.project("lab")
    values = np.arange(1000, dtype="f8").reshape(100, 10)
    for i in range(5):
        lab.put(f"runs/ü{i}", values * i, name="v.npy", metadata={"t": 300 + i, "big": 2**64 - 1, "s": "a\x00b"})
    lab.put("same", b"identical", name="x.bin")
    lab.put("same2", b"identical", name="x.bin")
    assert sorted(s.find(t__gte=303).refs()) == ["lab/runs/ü3", "lab/runs/ü4"]
    back = s.dataset("lab/runs/ü2").objects["v.npy"].load()
    assert np.array_equal(back, values * 2)
    # Another machine: an empty cache, the same answers.
    os.environ["TROVE_CACHE"] = str(tmp_path / "other-cache")
    again = trove.open(bucket_url)
    assert len(again.find("exists(t)")) == 5
    assert again.dataset("lab/same2").objects["x.bin"].checksum == again.dataset("lab/same").objects["x.bin"].checksum


def test_an_unknown_scheme_is_an_error_not_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(trove.Error, match="cannot keep a store at a ftp:// URL"):
        trove.init("ftp://host/x")
    assert list(tmp_path.iterdir()) == []
