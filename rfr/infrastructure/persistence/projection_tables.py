"""Projection tables written inside a recorder's transaction (ADR 0013).

The recorders call these with their own cursor, so a projection's rows and its position
commit or roll back with the events they come from. ``POSITIONS`` holds, per projection, the
version of its tables and the last notification id applied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from eventsourcing.persistence import StoredEvent

from rfr.application.projections import Projection, Statement

POSITIONS = "rfr_projections"
POSITIONS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {POSITIONS} ("
    "name TEXT PRIMARY KEY, version INTEGER NOT NULL, position BIGINT NOT NULL)"
)


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def fetchall(self) -> list[Any]: ...


def create(cursor: Cursor, projections: Sequence[Projection]) -> None:
    cursor.execute(POSITIONS_DDL)
    for projection in projections:
        for statement in projection.ddl:
            cursor.execute(statement)


def stale(cursor: Cursor, projections: Sequence[Projection], head: int) -> list[str]:
    """The projections whose tables are not those of this version, or lag the log's ``head``."""
    cursor.execute(f"SELECT name, version, position FROM {POSITIONS}")
    known = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
    return [
        p.name
        for p in projections
        if known.get(p.name, (None, -1))[0] != p.version or known[p.name][1] < head
    ]


def positions(cursor: Cursor) -> dict[str, tuple[int, int]]:
    cursor.execute(f"SELECT name, version, position FROM {POSITIONS}")
    return {row[0]: (int(row[1]), int(row[2])) for row in cursor.fetchall()}


def apply(cursor: Cursor, statements: Iterable[Statement], position: int | None) -> None:
    """Executes ``statements`` and moves every projection to ``position`` (the last id stored)."""
    for sql, params in statements:
        cursor.execute(sql, params)
    if position is not None:
        cursor.execute(f"UPDATE {POSITIONS} SET position = ? WHERE position < ?", (position, position))


def rebuild(
    cursor: Cursor,
    projections: Sequence[Projection],
    events: Iterable[tuple[int, StoredEvent]],
    statements_of: Callable[[StoredEvent], list[Statement]],
) -> int:
    """Empties ``projections``' tables and applies every event of ``events`` (in log order)."""
    for projection in projections:
        for table in projection.tables:
            cursor.execute(f"DELETE FROM {table}")
    count = last = 0
    for notification_id, event in events:
        for sql, params in statements_of(event):
            cursor.execute(sql, params)
        count, last = count + 1, notification_id
    for projection in projections:
        cursor.execute(
            f"INSERT INTO {POSITIONS} (name, version, position) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET version = excluded.version, position = excluded.position",
            (projection.name, projection.version, last),
        )
    return count
