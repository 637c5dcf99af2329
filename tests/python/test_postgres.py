"""The Python package on a store whose catalog is PostgreSQL (the throwaway server scripts/test starts, at
$TROVE_TEST_POSTGRES), and opening stores through named connections."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

import trove

TROVE_BIN = os.environ.get("TROVE_BIN", os.path.expanduser("~/.cache/trove-target/debug/trove"))


def under_ci() -> bool:
    return os.environ.get("CI", "") not in ("", "false", "0")


@pytest.fixture
def database() -> str:
    server = os.environ.get("TROVE_TEST_POSTGRES", "")
    if not server:
        if under_ci():
            pytest.fail("TROVE_TEST_POSTGRES is not set: under CI the PostgreSQL tests must run")
        pytest.skip("*** no PostgreSQL server (TROVE_TEST_POSTGRES is not set; scripts/test starts one) ***")
    name = f"trove_py_{uuid.uuid4().hex}"
    subprocess.run(["psql", server, "-qc", f"CREATE DATABASE {name} TEMPLATE template0"], check=True)
    return server.rsplit("/", 1)[0] + "/" + name


def test_a_store_on_a_postgres_catalog_answers_as_on_sqlite(database: str, tmp_path: Path) -> None:
    shared = trove.init(tmp_path / "team", durable=False, catalog=database)
    local = trove.init(tmp_path / "laptop", durable=False)
    assert shared.catalog.startswith("PostgreSQL postgres://") and local.catalog.startswith("SQLite")
    for s in (shared, local):
        p = s.project("lab")
        for i in range(20):
            p.put(f"runs/r{i:02d}", metadata={"t": 300 + i, "big": 2**64 - 1 - i, "name": f"ü{i}\x00x"}, tags=["x"])
    for query in ({"t__gte": 310}, {"big__lt": 2**64 - 10}, {"name__glob": "ü1*"}):
        assert sorted(shared.find(**query).refs()) == sorted(local.find(**query).refs())
    assert len(shared.find("t >= 310")) == 10
    frame = shared.find("t < 305").to_pandas()
    assert sorted(frame["path"]) == [f"runs/r{i:02d}" for i in range(5)]
    rows = shared.sql("select path from datasets where path like 'runs/r0%' order by path")
    assert list(rows["path"]) == [f"runs/r{i:02d}" for i in range(10)]
    # Another handle (another machine) sees the writes through the shared catalog.
    again = trove.open(tmp_path / "team")
    assert len(again.find(t__gte=300)) == 20


def test_a_named_connection_opens_its_store(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trove.init(tmp_path / "team", durable=False, catalog=database).project("lab").put("a", metadata={"t": 1})
    config = tmp_path / "config.toml"
    monkeypatch.setenv("TROVE_CONFIG", str(config))
    monkeypatch.delenv("TROVE_STORE", raising=False)
    secret = tmp_path / "pw"
    secret.write_text("not-a-real-password\n")
    secret.chmod(0o600)
    env = {**os.environ, "TROVE_CONFIG": str(config)}
    subprocess.run(
        [TROVE_BIN, "--store", str(tmp_path / "team"), "connections", "add", "team", "--secret-file", str(secret)],
        check=True,
        env=env,
        capture_output=True,
    )
    s = trove.open(connection="team")
    assert s.root == tmp_path / "team"
    assert s.find(t=1).refs() == ["lab/a"]
    with pytest.raises(trove.NotFound):
        trove.open(connection="nobody-has-this")
    with pytest.raises(ValueError):
        trove.open(tmp_path / "team", connection="team")
    secret.chmod(0o644)
    with pytest.raises(trove.Error, match="too open"):
        trove.open(connection="team")
