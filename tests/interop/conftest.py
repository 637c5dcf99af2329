"""Shared fixtures of the interoperability tests: the trove binary and a fresh store per test.

Every test makes its own store in pytest's tmp_path (`trove init DIR`) and calls the real binary with
`--store DIR` before the subcommand. The binary is $TROVE_BIN (tests/interop/run.sh sets it), else
$CARGO_TARGET_DIR/debug/trove.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest


def trove_binary() -> Path:
    if os.environ.get("TROVE_BIN"):
        return Path(os.environ["TROVE_BIN"])
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/trove-target"))
    return Path(target) / "debug" / "trove"


def describe(cmd: list[str], proc: subprocess.CompletedProcess) -> str:
    def show(data: bytes | str) -> str:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        return text if len(text) < 4000 else text[:4000] + f"\n... ({len(text)} characters)"

    return (
        f"command: {' '.join(map(str, cmd))}\nexit status: {proc.returncode}\n"
        f"--- stderr\n{show(proc.stderr)}\n--- stdout\n{show(proc.stdout)}"
    )


class Store:
    """A trove store in a temporary folder, driven through the CLI."""

    def __init__(self, binary: Path, root: Path, work: Path):
        self.binary = binary
        self.root = root
        self.work = work  # a folder for the test's input and output files, outside the store

    def run(self, *args: str | os.PathLike, ok: bool = True, text: bool = True) -> subprocess.CompletedProcess:
        cmd = [str(self.binary), "--store", str(self.root), *map(str, args)]
        proc = subprocess.run(cmd, capture_output=True, text=text, timeout=300, stdin=subprocess.DEVNULL)
        if ok and proc.returncode != 0:
            pytest.fail("trove failed\n" + describe(cmd, proc), pytrace=False)
        return proc

    def out(self, *args: str | os.PathLike) -> str:
        return self.run(*args).stdout

    def locate(self, ref: str) -> Path:
        path = Path(self.out("locate", ref).strip())
        assert path.is_absolute(), f"trove locate {ref} printed a relative path: {path}"
        assert path.exists(), f"trove locate {ref} printed {path}, which does not exist"
        return path

    def show_json(self, ref: str) -> dict:
        text = self.out("show", ref, "--json")
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            pytest.fail(f"trove show {ref} --json is not JSON ({e}):\n{text}", pytrace=False)

    def path(self, name: str) -> Path:
        return self.work / name


@pytest.fixture(scope="session")
def trove_bin() -> Path:
    binary = trove_binary()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"no trove binary at {binary}: build it (cargo build -p trove-cli) or set TROVE_BIN", pytrace=False)
    return binary


@pytest.fixture
def store(trove_bin: Path, tmp_path: Path) -> Store:
    root = tmp_path / "store"
    work = tmp_path / "files"
    work.mkdir()
    cmd = [str(trove_bin), "init", str(root)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        pytest.fail("trove init failed\n" + describe(cmd, proc), pytrace=False)
    return Store(trove_bin, root, work)


NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def numbers_in(text: str) -> list[float]:
    """Every number written in `text` (loosely: `3`, `3.0`, `-1.5e3`, the 64 of `float64` too)."""
    return [float(m) for m in NUMBER.findall(text)]
