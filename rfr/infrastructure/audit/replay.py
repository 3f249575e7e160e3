"""Rebuilds any aggregate as it was at a given time, from its stored events alone."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.utils import get_topic

from rfr.infrastructure.audit.jsonable import to_jsonable

# The library's own bookkeeping on every aggregate; reported under their public names.
_BOOKKEEPING = {"_id", "_version", "_created_on", "_modified_on", "_pending_events"}


def replay(
    app: Application[Any], aggregate_id: UUID | str, until: dt.datetime | None = None
) -> dict[str, Any]:
    """The aggregate's state after its last event with ``timestamp <= until`` (all events if None).

    Decoding goes through the application's mapper, so upcasting applies as it does in use.
    A naive ``until`` is read as UTC, the zone of every event timestamp.
    Raises ``AggregateNotFoundError`` when the aggregate did not exist at ``until``.
    """
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=dt.UTC)
    aggregate = None
    for event in app.events.get(aggregate_id):
        if until is not None and event.timestamp > until:
            # Versions are in time order within an aggregate, so nothing later can qualify.
            break
        aggregate = event.mutate(aggregate)
    if aggregate is None:
        when = "" if until is None else f" at {until.isoformat()}"
        raise AggregateNotFoundError(f"aggregate {aggregate_id} did not exist{when}")
    return {
        "topic": get_topic(type(aggregate)),
        "id": to_jsonable(aggregate.id),
        "version": aggregate.version,
        "created_on": to_jsonable(aggregate.created_on),
        "modified_on": to_jsonable(aggregate.modified_on),
        "until": None if until is None else until.isoformat(),
        "state": {
            name: to_jsonable(value) for name, value in vars(aggregate).items() if name not in _BOOKKEEPING
        },
    }
