"""Two writers on one store: conflicts are refused whole, and the chain never forks (A-02)."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from eventsourcing.application import AggregateNotFoundError
from rfr_audit_samples import Case, open_app

from rfr.application.app import ConcurrentModification
from rfr.infrastructure.audit import verify

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("persistence", ["sqlite", "memory"])
def test_A02_concurrent_edits_of_one_aggregate_raise_and_store_nothing(
    data_dir: Path, persistence: str
) -> None:
    """A-02: concurrent edits of one aggregate raise and store nothing."""
    app = open_app(data_dir, persistence)
    writer_a = app
    # On SQLite the second writer is a separate application (its own connections), as the
    # API and the worker would be.
    writer_b = open_app(data_dir, persistence) if persistence == "sqlite" else app
    case = Case("C-1", "Smith", "DS")
    app.save(case)

    as_seen_by_a = writer_a.get(case.id, Case)
    as_seen_by_b = writer_b.get(case.id, Case)
    as_seen_by_a.add_note("from A")
    writer_a.save(as_seen_by_a)

    as_seen_by_b.add_note("from B")
    bystander = Case("C-2", "Jones", "DC")
    head_before = writer_b.recorder.chain_head()
    with pytest.raises(ConcurrentModification) as raised:
        # One save with a conflicting and a fresh aggregate: all or nothing.
        writer_b.save(as_seen_by_b, bystander)

    assert (case.id, 2) in raised.value.attempted
    assert writer_b.recorder.chain_head() == head_before
    assert writer_a.get(case.id, Case).notes == ("from A",)
    with pytest.raises(AggregateNotFoundError):
        writer_a.get(bystander.id)
    result = verify(writer_a.recorder)
    assert result.ok and result.checked == 2
    if persistence == "sqlite":
        with sqlite3.connect(data_dir / "events.sqlite3") as db:
            assert db.execute("SELECT COUNT(*) FROM stored_events").fetchone() == (2,)
            assert db.execute("SELECT COUNT(*) FROM rfr_audit_chain").fetchone() == (2,)
        writer_b.close()
    app.close()


def test_A02_parallel_writers_on_one_file_extend_a_single_chain(data_dir: Path) -> None:
    """A-02: parallel writers on one file extend a single chain."""
    writers, saves_each = 4, 12
    open_app(data_dir).close()  # create the tables once, as deployment would
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(n: int) -> None:
        app = open_app(data_dir)
        try:
            start.wait()
            for i in range(saves_each):
                case = Case(f"C-{n}-{i}", "Smith", "DS")
                case.add_note("note")
                app.save(case)
        except BaseException as e:
            errors.append(e)
        finally:
            app.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors

    app = open_app(data_dir)
    result = verify(app.recorder)
    app.close()
    assert result.ok, result.reason
    assert result.checked == writers * saves_each * 2


WRITER = """
import sys, time
from pathlib import Path
from rfr_audit_samples import Case, open_app
data_dir, tag, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
app = open_app(data_dir)
while not go.exists():
    time.sleep(0.002)
started = time.time()
app.save(Case(f"{tag}-0", "Smith", "DS"))
# Every writer has saved once before any goes on: their windows overlap whatever the speed of
# a save or the scheduling of the processes (saves got fast enough to finish one by one).
(go.parent / f"{tag}.first").touch()
deadline = time.time() + 60
while len(list(go.parent.glob("*.first"))) < 3 and time.time() < deadline:
    time.sleep(0.002)
for i in range(1, 40):
    app.save(Case(f"{tag}-{i}", "Smith", "DS"))
print(started, time.time())
app.close()
"""


def test_A02_writer_processes_on_one_file_extend_a_single_chain(data_dir: Path, tmp_path: Path) -> None:
    """A-02: writer processes on one file extend a single chain."""
    open_app(data_dir).close()
    go = tmp_path / "go"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(data_dir), tag, str(go)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for tag in "ABC"
    ]
    time.sleep(1.0)  # let all three open the store (and race on its schema) first
    go.touch()
    windows = []
    for p in processes:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        windows.append(tuple(map(float, out.split())))

    app = open_app(data_dir)
    result = verify(app.recorder)
    writers = [
        json.loads(n.state)["reference"][0] for n in app.recorder.select_notifications(start=1, limit=1000)
    ]
    app.close()
    assert result.ok, result.reason
    assert result.checked == len(writers) == 120
    assert set(writers) == set("ABC")
    # SQLite makes a waiting writer sleep, so the rows come out in runs per writer; what
    # shows the writers really contended is that their writing windows overlapped.
    assert any(a[0] < b[1] and b[0] < a[1] for a, b in itertools.combinations(windows, 2))
