"""Running the worker's round "as of" a time (``rfr worker --once --as-of``, ADR 0025).

The round's use cases read the time from their clock, so a round as of a time is the same
round over a clock that stands at that time: everything due by then is done, and every event
it records carries that time. Two limits keep the audit trail one that moves forward:

- never earlier than the latest event recorded: the trail lists events in the order they
  were stored, and an event dated before the one stored ahead of it would make a trail that
  travels back in time; the gap between the latest event and now is time in which nothing
  was recorded, so a round dated inside it contradicts nothing;
- never later than now unless the caller says so (``allow_future``): a later time dates
  events ahead of the real clock, so the next command of a user would be stored after them
  with an earlier time. That is for a copy of a store or a test ("eleven years on"), never
  for a store still in use.
"""

from __future__ import annotations

from datetime import datetime

from rfr.application.app import RfrApplication


class StillClock:
    """A Clock that stands at one time: every command of a round as of it is stamped with it."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("the time must name its offset from UTC")
        self._at = at

    def now(self) -> datetime:
        return self._at


def latest_event_time(app: RfrApplication) -> datetime | None:
    """When the last event stored was recorded; None for an empty store. Reads one event."""
    head = app.recorder.max_notification_id()
    if not head:
        return None
    (last,) = app.recorder.select_notifications(start=head, limit=1)
    return app.mapper.to_domain_event(last).timestamp


def as_of_refusal(
    as_of: datetime, *, latest: datetime | None, now: datetime, allow_future: bool
) -> str | None:
    """Why a round may not run as of ``as_of`` (see the module docstring), or None if it may."""
    if as_of.tzinfo is None:
        return "the time must name its offset from UTC, e.g. 2031-05-01T02:00:00+00:00"
    if latest is not None and as_of < latest:
        return (
            f"{as_of.isoformat()} is earlier than the latest recorded event ({latest.isoformat()}): "
            "the audit trail would go back in time"
        )
    if as_of > now and not allow_future:
        return (
            f"{as_of.isoformat()} is later than now ({now.isoformat()}): its events would be dated "
            "ahead of the real clock; pass --allow-future only on a copy of a store or in a test"
        )
    return None
