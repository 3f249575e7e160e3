"""eventsourcing's in-memory (POPO) persistence with the same audit chain, for fast tests.

Point ``PERSISTENCE_MODULE`` at this module; it holds exactly one infrastructure factory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventsourcing import popo
from eventsourcing.persistence import ApplicationRecorder, StoredEvent

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

    def _update_table(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        # Runs under the recorder's database lock, after the uniqueness check, so a conflict
        # leaves both the events and the chain untouched.
        notification_ids = super()._update_table(stored_events, **kwargs)
        assert notification_ids is not None
        rows = [stored_row(s, nid) for s, nid in zip(stored_events, notification_ids, strict=True)]
        links, self._head = extend_chain(self._head, rows)
        self._chain.extend(links)
        return notification_ids

    def chain_head(self) -> ChainHead | None:
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
