"""The package's type information holds: `mypy --strict` passes on the package itself and on a script that
uses the whole public API (tests/python/typing/example.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_mypy_strict_passes_on_the_package_and_an_example() -> None:
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "crates/trove-py/pyproject.toml"),
           "--no-incremental", str(REPO / "crates/trove-py/python/trove"), str(REPO / "tests/python/typing/example.py")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
