"""Admission to heavy image work: a bounded pool, a waiting limit and a per-user limit.

Deterministic: the tests hold admissions open with events and never depend on timing,
except the one that proves a bounded wait (with a wait of 0 s).
"""

from __future__ import annotations

import threading
from contextlib import ExitStack

import pytest

from rfr.application.heavy_work import Busy, HeavyWork, HeavyWorkLimits


def hold(work: HeavyWork, user: str, started: threading.Event, release: threading.Event) -> threading.Thread:
    def run() -> None:
        with work.admit(user):
            started.set()
            release.wait(10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_at_most_the_pool_runs_and_beyond_the_queue_is_refused_at_once():
    work = HeavyWork(HeavyWorkLimits(workers=1, queue=0, per_user=5, retry_after=7))
    started, release = threading.Event(), threading.Event()
    holder = hold(work, "a", started, release)
    assert started.wait(10)
    with pytest.raises(Busy) as busy:
        with work.admit("b"):
            pytest.fail("ran beyond the pool")
    assert busy.value.retry_after == 7 and work.in_use == (1, 0)
    release.set()
    holder.join(10)
    with work.admit("b"):
        assert work.in_use == (1, 0)
    assert work.in_use == (0, 0)


def test_a_waiting_request_runs_when_a_worker_frees_up():
    work = HeavyWork(HeavyWorkLimits(workers=1, queue=1, per_user=5))
    started, release = threading.Event(), threading.Event()
    holder = hold(work, "a", started, release)
    assert started.wait(10)
    ran = threading.Event()

    def wait_then_run() -> None:
        with work.admit("b"):
            ran.set()

    waiter = threading.Thread(target=wait_then_run, daemon=True)
    waiter.start()
    while work.in_use != (1, 1):
        threading.Event().wait(0.01)
    with pytest.raises(Busy):  # the queue of one is taken
        with work.admit("c"):
            pass
    release.set()
    waiter.join(10)
    holder.join(10)
    assert ran.is_set() and work.in_use == (0, 0)


def test_one_user_holds_at_most_their_share():
    work = HeavyWork(HeavyWorkLimits(workers=4, queue=4, per_user=2))
    with ExitStack() as stack:
        stack.enter_context(work.admit("a"))
        stack.enter_context(work.admit("a"))
        with pytest.raises(Busy) as busy:
            stack.enter_context(work.admit("a"))
        assert "a already has 2" in str(busy.value)
        stack.enter_context(work.admit("b"))  # others are not held back by a's share
    with work.admit("a"):
        pass


def test_a_wait_is_bounded():
    work = HeavyWork(HeavyWorkLimits(workers=1, queue=1, per_user=5, max_wait=0))
    with work.admit("a"):
        with pytest.raises(Busy):
            with work.admit("b"):
                pass
    assert work.in_use == (0, 0)


def test_a_failing_body_frees_its_worker():
    work = HeavyWork(HeavyWorkLimits(workers=1, queue=0, per_user=1))
    with pytest.raises(RuntimeError):
        with work.admit("a"):
            raise RuntimeError("decoding failed")
    with work.admit("a"):
        assert work.in_use == (1, 0)
