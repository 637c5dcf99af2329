"""`with s.batch():`: many writes, one commit, all or nothing, against real stores and the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import trove
from test_api import cli


@pytest.fixture
def s(tmp_path: Path) -> trove.Store:
    store = trove.init(tmp_path / "store", durable=False)
    store.ingest({"path": f"lab/runs/{i}", "metadata": {"i": i}, "tags": ["batch-0"]} for i in range(300))
    return store


def segments(s: trove.Store) -> int:
    return len(os.listdir(s.root / ".trove" / "log"))


def test_a_loop_of_edits_in_a_batch_is_one_commit_and_the_cli_agrees(s: trove.Store) -> None:
    before = segments(s)
    with s.batch():
        for i in range(300):
            s[f"lab/runs/{i}"].update(status="done", big=2**64 - 1 - i)
            assert s[f"lab/runs/{i}"].metadata["status"] == "done"  # the batch reads its own writes
        s.project("lab").put("ünï/ςode", metadata={"note": "a\u0000b"}, tags={"β"})
        s["lab/runs/7"].remove()
        s["lab/runs/8"].tags.discard("batch-0")
    assert segments(s) == before + 1
    assert cli(s, "find", "status == 'done'", "--count").strip() == "299"
    shown = json.loads(cli(s, "show", "lab/ünï/ςode", "--json"))
    assert shown["metadata"] == {"note": "a\u0000b"} and shown["tags"] == ["β"]
    assert json.loads(cli(s, "show", "lab/runs/5", "--json"))["metadata"]["big"] == 2**64 - 6
    assert "batch-0" not in s["lab/runs/8"].tags
    cli(s, "check")


def test_an_exception_in_a_batch_writes_nothing(s: trove.Store, tmp_path: Path) -> None:
    before = cli(s, "find", "--json")
    data = tmp_path / "same.bin"
    data.write_bytes(b"identical")
    with pytest.raises(RuntimeError, match="boom"):
        with s.batch():
            s["lab/runs/1"].update(status="half")
            s.project("lab").put("new/one", data)
            s.project("lab").put("new/two", data)
            raise RuntimeError("boom")
    assert cli(s, "find", "--json") == before
    assert "lab/new/one" not in s
    staging = s.root / ".trove" / "staging"
    assert not staging.exists() or not list(staging.iterdir())
    # The store takes writes again at once.
    s["lab/runs/1"].update(status="after")
    assert s["lab/runs/1"].metadata["status"] == "after"


def test_a_bad_write_inside_a_batch_raises_and_the_rest_commits(s: trove.Store) -> None:
    with s.batch():
        s["lab/runs/1"].update(status="ok")
        with pytest.raises(trove.NotFound):
            s["lab/missing"].update(status="x")
        with pytest.raises(trove.InvalidInput):
            s["lab/runs/2"].update(**{"$bad": 1})
        s["lab/runs/3"].update(status="ok")
    assert len(s.find(status="ok")) == 2


KILLED = """
import os, signal, sys, trove
s = trove.open(sys.argv[1])
with s.batch():
    for i in range(200):
        s[f"lab/runs/{i}"].update(status="killed")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_process_killed_inside_a_batch_leaves_the_store_as_it_was(s: trove.Store) -> None:
    before = cli(s, "find", "--json")
    proc = subprocess.run([sys.executable, "-c", KILLED, str(s.root)], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert cli(s, "find", "--json") == before
    s.sync()
    assert len(s.find(status="killed")) == 0
    cli(s, "check")


def test_a_process_killed_right_after_the_batch_commit_loses_nothing(s: trove.Store, tmp_path: Path) -> None:
    data = tmp_path / "f.txt"
    data.write_text("contents")
    script = """
import sys, trove
s = trove.open(sys.argv[1])
with s.batch():
    for i in range(50):
        s[f"lab/runs/{i}"].update(status="committed")
    s.project("lab").put("with/file", sys.argv[2])
"""
    env = dict(os.environ, TROVE_FAULT="after-commit")
    proc = subprocess.run([sys.executable, "-c", script, str(s.root), str(data)], capture_output=True, timeout=120,
                          env=env)
    assert proc.returncode != 0  # aborted at the fault point, after publishing
    reopened = trove.open(s.root)
    assert len(reopened.find(status="committed")) == 50
    assert reopened["lab/with/file"].objects["f.txt"].load() == b"contents"
    cli(s, "check")


def test_other_threads_see_a_batch_whole_or_not_at_all(s: trove.Store) -> None:
    seen: list[int] = []
    with s.batch():
        for i in range(100):
            s[f"lab/runs/{i}"].update(status="batched")
        # A reader in another thread does not wait: it sees the store as it was before the batch.
        reader = threading.Thread(target=lambda: seen.append(len(s.find(status="batched"))))
        reader.start()
        reader.join()
        # A writer in another thread waits for the batch to end.
        writer = threading.Thread(target=lambda: s["lab/runs/0"].update(status="after"))
        writer.start()
        writer.join(timeout=0.2)
        assert writer.is_alive(), "a writer in another thread must wait for the batch"
    writer.join()
    assert seen == [0]
    assert len(s.find(status="batched")) == 99 and s["lab/runs/0"].metadata["status"] == "after"


INTERRUPTED = """
import os, signal, sys, threading, time, trove
root = sys.argv[1]
s = trove.init(root, durable=False)

def interrupt_after_the_first_commit() -> None:
    watcher = trove.open(root)
    while len(watcher.find()) == 0:
        time.sleep(0.005)
    os.kill(os.getpid(), signal.SIGINT)

threading.Thread(target=interrupt_after_the_first_commit, daemon=True).start()
try:
    s.ingest({"path": f"lab/r{i}", "metadata": {"i": i}} for i in range(300_000))
    print("finished")
except KeyboardInterrupt:
    print("interrupted", len(s.find()))
"""


def test_ctrl_c_stops_a_long_ingest_between_commits(tmp_path: Path) -> None:
    root = tmp_path / "store"
    proc = subprocess.run([sys.executable, "-c", INTERRUPTED, str(root)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    word, *count = proc.stdout.split()
    assert word == "interrupted", proc.stdout
    n = int(count[0])
    assert 0 < n < 300_000 and n % 10_000 == 0, n  # whole batches, never part of one
    store = trove.open(root)
    assert cli(store, "find", "--count").strip() == str(n)
    cli(store, "check")
