"""The README's install line works: `pip install ./crates/trove-py` into a fresh venv, with maturin fetched from
PyPI as the PEP 517 backend, gives a package that opens a store and agrees with the CLI.

The build is asked for in the dev profile (`MATURIN_PEP517_ARGS`), into the shared target folder the test
script's `maturin develop` already filled, so CI does not pay for a second, release, build; a user's `pip
install` builds in release mode and is otherwise the same command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_api import TROVE_BIN

REPO = Path(__file__).resolve().parents[2]

TOUR = """
import sys, trove
s = trove.init(sys.argv[1], durable=False)
ds = s.project("lab").put("ünï/a", {"x": 2**64 - 1}, metadata={"t": 300}, tags={"pilot"})
with s.batch():
    ds.update(status="done")
print(len(s.find("t >= 300 and status == 'done'")), ds.objects["data.json"].load()["x"])
"""


def test_pip_install_of_the_package_into_a_fresh_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["MATURIN_PEP517_ARGS"] = "--profile dev"
    env.setdefault("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/trove-target"))
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(REPO / "crates" / "trove-py")],
                         env=env, capture_output=True, text=True, timeout=1800)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    store = tmp_path / "store"
    run = subprocess.run([str(venv / "bin" / "python"), "-c", TOUR, str(store)], env=env, capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1", str(2**64 - 1)]
    cli = subprocess.run([TROVE_BIN, "--store", str(store), "find", "status == 'done'", "--count"], capture_output=True,
                         text=True, timeout=120)
    assert cli.stdout.strip() == "1", cli.stderr
