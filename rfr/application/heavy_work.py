"""Admission to heavy biometric work: a bounded pool with a waiting limit and a per-user limit.

Decoding an upload, detecting faces and making templates each cost up to a few seconds of
CPU and hundreds of MiB of memory (bounded per image, see the detector's pixel bound). A
handful at once is what a host can take; beyond that, requests must be turned away quickly
rather than pile up until the host runs out of memory. So every use case that does such work
runs it inside ``HeavyWork.admit(user_id)``:

- at most ``workers`` run at once (the pool);
- at most ``queue`` more wait for a worker; a request that would wait beyond that, or longer
  than ``max_wait`` seconds, is refused with ``Busy`` at once;
- one user holds at most ``per_user`` admissions (running or waiting), so one client cannot
  take the whole pool.

``Busy`` carries ``retry_after`` (seconds); the HTTP API answers it with 503 and a
``Retry-After`` header. Nothing is recorded: no command ran.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import attrs

from rfr.application.errors import RfrError


class Busy(RfrError):
    """Heavy work is at capacity: try again after ``retry_after`` seconds (HTTP 503)."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@attrs.frozen
class HeavyWorkLimits:
    """The pool's size, the waiting limit, the per-user limit and how long one may wait."""

    workers: int = 2
    queue: int = 8
    per_user: int = 2
    max_wait: float = 30.0
    retry_after: int = 5

    def __attrs_post_init__(self) -> None:
        if self.workers < 1 or self.queue < 0 or self.per_user < 1 or self.max_wait < 0:
            raise ValueError("workers and per_user must be at least 1; queue and max_wait not negative")


class HeavyWork:
    """One per process: see the module docstring."""

    def __init__(self, limits: HeavyWorkLimits | None = None) -> None:
        self.limits = limits or HeavyWorkLimits()
        self._lock = threading.Condition()
        self._running = 0
        self._waiting = 0
        self._held: Counter[str] = Counter()

    @contextmanager
    def admit(self, user_id: str) -> Iterator[None]:
        """Runs the body as one of the pool's workers, or raises ``Busy`` without running it."""
        limits = self.limits
        with self._lock:
            if self._held[user_id] >= limits.per_user:
                raise Busy(
                    f"{user_id} already has {limits.per_user} image requests in progress",
                    limits.retry_after,
                )
            if self._running >= limits.workers and self._waiting >= limits.queue:
                raise Busy("the server is busy with other image requests", limits.retry_after)
            self._held[user_id] += 1
            self._waiting += 1
            deadline = time.monotonic() + limits.max_wait
            try:
                while self._running >= limits.workers:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise Busy("the server is busy with other image requests", limits.retry_after)
                    self._lock.wait(left)
            except BaseException:
                self._waiting -= 1
                self._release_user(user_id)
                raise
            self._waiting -= 1
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                self._release_user(user_id)
                self._lock.notify()

    def _release_user(self, user_id: str) -> None:
        self._held[user_id] -= 1
        if self._held[user_id] <= 0:
            del self._held[user_id]

    @property
    def in_use(self) -> tuple[int, int]:
        """(running, waiting), for health reports and tests."""
        with self._lock:
            return self._running, self._waiting
