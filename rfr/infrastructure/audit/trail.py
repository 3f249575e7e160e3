"""The ``AuditTrail`` port over the event store's recorder and the audit tools of infrastructure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from rfr.application.app import RfrApplication
from rfr.infrastructure.audit.jsonable import to_jsonable
from rfr.infrastructure.audit.verification import verify
from rfr.infrastructure.persistence.chain import ChainedRecorder, ChainHead

# The library's own bookkeeping on every event, reported under plain names instead.
_EVENT_BOOKKEEPING = {"originator_id", "originator_version", "timestamp"}


class RecorderAuditTrail:
    def __init__(self, app: RfrApplication) -> None:
        self.app = app

    def verify(self, anchor: str | None) -> Mapping[str, Any]:
        result = verify(self.app.recorder, anchor=ChainHead.parse(anchor) if anchor else None)
        return {
            "ok": result.ok,
            "checked": result.checked,
            "first_bad_position": result.first_bad_position,
            "reason": result.reason,
            "head": str(result.head) if result.head is not None else None,
            "summary": result.summary(),
        }

    def head(self) -> Mapping[str, Any] | None:
        recorder = self.app.recorder
        assert isinstance(recorder, ChainedRecorder)
        head = recorder.chain_head()
        return None if head is None else {"count": head.count, "hash": head.hash, "text": str(head)}

    def history(self, aggregate_id: UUID, until: datetime | None) -> list[Mapping[str, Any]]:
        events = []
        for event in self.app.events.get(aggregate_id):
            if until is not None and event.timestamp > until:
                break
            attributes = {k: v for k, v in vars(event).items() if k not in _EVENT_BOOKKEEPING}
            events.append(
                {
                    "originator_id": str(event.originator_id),
                    "originator_version": event.originator_version,
                    "timestamp": event.timestamp.isoformat(),
                    "topic": get_topic(type(event)),
                    "attributes": to_jsonable(attributes),
                }
            )
        return events
