"""eventsourcing's in-memory (POPO) persistence with the same audit chain, for fast tests.

Point ``PERSISTENCE_MODULE`` at this module; it holds exactly one infrastructure factory.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing import popo
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, StoredEvent

from rfr.application.projections import STATEMENTS_KEYWORD, Projection, Statement
from rfr.infrastructure.persistence import projection_tables
from rfr.infrastructure.persistence.chain import (
    EMPTY_HEAD,
    AuditSnapshot,
    ChainHead,
    ChainLink,
    extend_chain,
    stored_row,
)


class ChainedPOPOApplicationRecorder(popo.POPOApplicationRecorder):
    def __init__(self) -> None:
        super().__init__()
        self._chain: list[ChainLink] = []
        self._head = EMPTY_HEAD
        # The projections' tables (ADR 0013): SQLite in memory, used only under the database lock.
        self._tables = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._projections_installed = False

    def _update_table(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        # Runs under the recorder's database lock, after the uniqueness check, so a conflict
        # leaves the events, the chain and the projections untouched. The projections' statements
        # run first, in a transaction committed only once the events are in.
        cursor = self._tables.cursor()
        cursor.execute("BEGIN")
        try:
            projection_tables.apply(cursor, kwargs.get(STATEMENTS_KEYWORD, ()), None)
        except sqlite3.IntegrityError as e:
            cursor.execute("ROLLBACK")
            raise IntegrityError(e) from e
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        notification_ids = super()._update_table(stored_events, **kwargs)
        assert notification_ids is not None
        rows = [stored_row(s, nid) for s, nid in zip(stored_events, notification_ids, strict=True)]
        links, self._head = extend_chain(self._head, rows)
        self._chain.extend(links)
        if self._projections_installed and notification_ids:
            projection_tables.apply(cursor, (), notification_ids[-1])
        cursor.execute("COMMIT")
        return notification_ids

    # -- projections (rfr.application.projections.ProjectionStore) ------------------------------

    def install_projections(self, projections: Sequence[Projection]) -> list[str]:
        with self._database_lock:
            cursor = self._tables.cursor()
            projection_tables.create(cursor, projections)
            self._projections_installed = True
            return projection_tables.stale(cursor, projections, len(self._stored_events))

    def rebuild_projections(
        self, projections: Sequence[Projection], statements_of: Callable[[StoredEvent], list[Statement]]
    ) -> int:
        with self._database_lock:
            cursor = self._tables.cursor()
            cursor.execute("BEGIN")
            try:
                events = enumerate(list(self._stored_events), start=1)
                count = projection_tables.rebuild(cursor, projections, events, statements_of)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
            return count

    def projection_positions(self) -> dict[str, tuple[int, int]]:
        with self._database_lock:
            return projection_tables.positions(self._tables.cursor())

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._database_lock:
            return [tuple(r) for r in self._tables.execute(sql, tuple(params)).fetchall()]

    def chain_head(self, *, durable: bool = True) -> ChainHead | None:
        with self._database_lock:
            return self._head

    @contextmanager
    def audit_snapshot(self) -> Iterator[AuditSnapshot]:
        with self._database_lock:
            events = [stored_row(s, i) for i, s in enumerate(self._stored_events, start=1)]
            links = list(self._chain)
            head = self._head
        yield AuditSnapshot(head=head, events=iter(events), links=iter(links))


class ChainedPOPOFactory(popo.POPOFactory):
    def application_recorder(self) -> ApplicationRecorder:
        return ChainedPOPOApplicationRecorder()
