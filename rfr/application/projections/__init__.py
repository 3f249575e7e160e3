"""Projections: facts that cross aggregates, kept in tables beside the event store (ADR 0013).

A projection turns each domain event into SQL statements over its own tables. The statements
of every event an ``RfrApplication.save`` stores are executed by the recorder in the same
transaction as the events and their audit-chain links, and the recorder records the position
(the last notification id) each projection has applied in that transaction too. So a
projection is never behind the log it projects, a unique key in it is an invariant the store
enforces (two concurrent enrolments of one image: the second save fails as a conflict), and a
query reads a few indexed rows instead of loading aggregates or scanning the log.

``rfr projections rebuild`` empties a projection's tables and replays the whole log through
it, in one transaction; a rebuilt projection equals the live one (tests prove it for generated
command sequences). A store written before a projection existed, or by another version of it,
is brought up to date the same way when the application starts.

The SQL keeps to what SQLite and PostgreSQL both read: ``?`` placeholders (a recorder for a
store with another style translates them), ``INSERT ... ON CONFLICT``, partial indexes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import StoredEvent

Statement = tuple[str, tuple[Any, ...]]
# The keyword an ``RfrApplication.save`` passes its statements to the recorder under.
STATEMENTS_KEYWORD = "projection_statements"


@runtime_checkable
class Projection(Protocol):
    """Tables maintained from events. ``version`` changes whenever the tables or the statements
    change meaning: a store holding another version is rebuilt on start."""

    name: str
    version: int
    tables: tuple[str, ...]
    ddl: tuple[str, ...]

    def statements(self, event: DomainEventProtocol[Any]) -> list[Statement]: ...


@runtime_checkable
class ProjectionStore(Protocol):
    """What a recorder does for projections (``rfr.infrastructure.persistence``)."""

    def install_projections(self, projections: Sequence[Projection]) -> list[str]:
        """Creates the tables; returns the names of those not up to date with the log."""
        ...

    def rebuild_projections(
        self, projections: Sequence[Projection], statements_of: Callable[[StoredEvent], list[Statement]]
    ) -> int:
        """Empties and refills ``projections`` from every stored event, in one transaction;
        returns the number of events read."""
        ...

    def projection_positions(self) -> dict[str, tuple[int, int]]:
        """Each installed projection's (version, position)."""
        ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read of the projections' tables."""
        ...


def placeholders(count: int) -> str:
    """``?, ?, ?`` for an ``IN (...)`` of ``count`` values (at least one)."""
    if count < 1:
        raise ValueError("an IN list needs at least one value")
    return ", ".join("?" * count)
