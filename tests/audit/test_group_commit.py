"""Group commit (ADR 0016): saves from several threads written in one transaction, each
acknowledged only once its own batch is written, and a conflict refused alone.

The writer here is a fake that records batches; the PostgreSQL recorder that uses it is tested in
``test_postgres_store.py``. No timing: the tests wait on the queue's length and on events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import pytest

from rfr.infrastructure.persistence.group_commit import GroupCommit


class Conflict(Exception):
    pass


class Writer:
    """Writes batches of strings; blocks the first batch until released; refuses ``bad``."""

    def __init__(self, bad: frozenset[str] = frozenset()) -> None:
        self.batches: list[list[str]] = []
        self.stored: list[str] = []
        self.release = threading.Event()
        self.first_started = threading.Event()
        self.bad = bad

    def __call__(self, batch: Sequence[str]) -> list[str]:
        if not self.first_started.is_set():
            self.first_started.set()
            assert self.release.wait(30)
        self.batches.append(list(batch))
        if self.bad & set(batch):
            raise Conflict(sorted(self.bad & set(batch)))
        self.stored.extend(batch)
        return [f"stored {r}" for r in batch]


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in 30 s"
        time.sleep(0.001)


def _submit_all(commits: GroupCommit[str, str], writer: Writer, later: list[str]) -> dict[str, object]:
    """``first`` is written alone while ``later`` queue behind it; every outcome by request."""
    outcomes: dict[str, object] = {}

    def run(request: str) -> None:
        try:
            outcomes[request] = commits.submit(request)
        except Exception as e:
            outcomes[request] = e

    threads = [threading.Thread(target=run, args=("first",))]
    threads[0].start()
    assert writer.first_started.wait(30)
    for request in later:
        threads.append(threading.Thread(target=run, args=(request,)))
        threads[-1].start()
    _until(lambda: commits.waiting == len(later))
    writer.release.set()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    return outcomes


def test_saves_that_wait_are_written_in_one_batch_and_each_gets_its_own_result() -> None:
    writer = Writer()
    commits: GroupCommit[str, str] = GroupCommit(writer, retry_alone=(Conflict,))
    outcomes = _submit_all(commits, writer, [f"s{i}" for i in range(6)])
    assert writer.batches[0] == ["first"]
    assert len(writer.batches) == 2 and sorted(writer.batches[1]) == [f"s{i}" for i in range(6)]
    assert outcomes == {r: f"stored {r}" for r in ["first", *(f"s{i}" for i in range(6))]}
    assert (commits.batches, commits.saves) == (2, 7)


def test_a_conflict_in_a_batch_is_refused_alone_and_the_others_are_stored() -> None:
    writer = Writer(bad=frozenset({"s3"}))
    commits: GroupCommit[str, str] = GroupCommit(writer, retry_alone=(Conflict,))
    outcomes = _submit_all(commits, writer, [f"s{i}" for i in range(6)])
    assert isinstance(outcomes.pop("s3"), Conflict)
    assert outcomes == {r: f"stored {r}" for r in ["first", "s0", "s1", "s2", "s4", "s5"]}
    assert sorted(writer.stored) == sorted(outcomes)
    # The batch of six was refused whole, then each was written in a transaction of its own.
    assert [len(b) for b in writer.batches] == [1, 6, 1, 1, 1, 1, 1, 1]


def test_an_error_that_is_no_conflict_is_raised_to_every_save_of_the_batch() -> None:
    class Down(Exception):
        pass

    calls: list[list[str]] = []

    def broken(batch: Sequence[str]) -> list[str]:
        calls.append(list(batch))
        raise Down("server gone")

    commits: GroupCommit[str, str] = GroupCommit(broken, retry_alone=(Conflict,))
    with pytest.raises(Down):
        commits.submit("one")
    assert calls == [["one"]] and (commits.batches, commits.saves) == (0, 0)


def test_a_batch_is_bounded_and_the_rest_is_written_next() -> None:
    writer = Writer()
    commits: GroupCommit[str, str] = GroupCommit(writer, retry_alone=(Conflict,), max_batch=4)
    outcomes = _submit_all(commits, writer, [f"s{i}" for i in range(9)])
    assert len(outcomes) == 10 and all(v == f"stored {k}" for k, v in outcomes.items())
    assert [len(b) for b in writer.batches] == [1, 4, 4, 1]
