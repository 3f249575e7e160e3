"""Saves from several threads of one process written in one transaction (group commit, ADR 0016).

On PostgreSQL every transaction that stores events holds the events table's lock from its
insert until its commit is on disk, so one process's saves would otherwise wait for each other's
WAL flush one at a time. Here the first thread to arrive writes every save that is waiting at
that moment in one transaction; the threads that arrive while it writes wait, and the first of
them writes all of theirs next. Nothing is acknowledged before its own transaction commits.

A batch fails as a whole (one save's version conflict, or a projection's unique key, would
roll back the others), so a batch of more than one that meets an integrity error is written
again one save per transaction: only the save that conflicts is refused, as if it had been
alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

R = TypeVar("R")  # one save
T = TypeVar("T")  # what its writer returns for it

# Saves written in one transaction at most: bounds the transaction (and the lock's hold) when
# many threads wait at once.
MAX_BATCH = 64


class _Pending(Generic[R, T]):
    __slots__ = ("done", "error", "request", "result")

    def __init__(self, request: R) -> None:
        self.request = request
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = False


class GroupCommit(Generic[R, T]):
    """``submit`` from any thread; ``write`` stores a batch in one transaction, results in order.

    ``retry_alone`` says which errors of a batch of several mean "write them one by one"."""

    def __init__(
        self,
        write: Callable[[Sequence[R]], Sequence[T]],
        retry_alone: tuple[type[BaseException], ...],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._write = write
        self._retry_alone = retry_alone
        self._max_batch = max_batch
        self._condition = threading.Condition()
        self._queue: list[_Pending[R, T]] = []
        self._writing = False
        # Batches written and saves in them: what the tests and the benchmark read.
        self.batches = 0
        self.saves = 0

    @property
    def waiting(self) -> int:
        """Saves queued behind the batch being written."""
        with self._condition:
            return len(self._queue)

    def submit(self, request: R) -> T:
        mine: _Pending[R, T] = _Pending(request)
        with self._condition:
            self._queue.append(mine)
            while self._writing and not mine.done:
                self._condition.wait()
            if not mine.done:
                # No one is writing: this thread writes its own save and what waits behind it.
                self._writing = True
                self._queue.remove(mine)
                others = self._max_batch - 1
                batch, self._queue = [mine, *self._queue[:others]], self._queue[others:]
        if not mine.done:
            try:
                self._write_batch(batch)
            finally:
                with self._condition:
                    self._writing = False
                    self._condition.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.result  # type: ignore[return-value]

    def _write_batch(self, batch: list[_Pending[R, T]]) -> None:
        try:
            try:
                results = self._write([p.request for p in batch])
            except self._retry_alone:
                if len(batch) == 1:
                    raise
                for pending in batch:
                    self._write_batch([pending])
                return
            for pending, result in zip(batch, results, strict=True):
                pending.result = result
            self.batches += 1
            self.saves += len(batch)
        except BaseException as error:  # every waiter learns its save was not stored
            for pending in batch:
                pending.error = error
            if not isinstance(error, Exception):
                raise
        finally:
            for pending in batch:
                pending.done = True
