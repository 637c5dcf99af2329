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


def test_every_public_name_has_a_docstring_with_an_example() -> None:
    import inspect

    import trove

    lacking = []
    for name in trove.__all__:
        obj = getattr(trove, name)
        items = [(name, obj)]
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            items += [(f"{name}.{m}", v) for m, v in vars(obj).items()
                      if not m.startswith("_") or m in ("__getitem__", "__len__", "__iter__", "__contains__")]
        lacking += [n for n, o in items if ">>>" not in (inspect.getdoc(o) or "")]
    assert not lacking, f"help() shows no example for: {lacking}"
