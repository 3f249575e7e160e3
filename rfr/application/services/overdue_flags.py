"""The worker's oversight round: each flag that has fallen due is recorded (L-06, L-09, L-10, U-03).

``OverdueFlagging.run()`` reads, through the usage counts projection, the library approvals in
force and the cache entries in the cache at the round's time (the only ones that can carry a
flag), loads each, and records the flags the domain says are due and not recorded yet
(``rfr.domain.overdue_flags``), in the name of ``OVERSIGHT_WORKER``. A round costs what is
open for review, not every approval or probe ever recorded; a round run again records nothing.
A failure on one item is reported and the round goes on; it is tried again next round.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from uuid import UUID

import attrs

from rfr.application.projections.usage_counts import APPROVAL, UCC
from rfr.application.services.base import WorkerUseCase
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.overdue_flags import OVERSIGHT_WORKER
from rfr.domain.probe_image import ProbeImage


@attrs.frozen
class FlagFailure:
    kind: str
    aggregate_id: str
    error: str


@attrs.frozen
class FlagSummary:
    """One round: flags recorded by rule, (kind, id, rule) of each, and failures."""

    at: datetime
    raised: Mapping[str, int]
    items: tuple[tuple[str, str, str], ...]
    failed: tuple[FlagFailure, ...]


class OverdueFlagging(WorkerUseCase):
    """See the module docstring. Acts as the oversight worker: no User is loaded or stamped."""

    worker = OVERSIGHT_WORKER

    def run(self) -> FlagSummary:
        at = self.clock.now()
        raised: Counter[str] = Counter()
        items: list[tuple[str, str, str]] = []
        failed: list[FlagFailure] = []
        for subject_id, kind in self.app.usage_counts.open_for_review(at):
            try:
                if kind == APPROVAL:
                    rules = self._flag_approval(UUID(subject_id), at)
                elif kind == UCC:
                    rules = self._flag_ucc_entry(UUID(subject_id), at)
                else:  # another kind of thing open for review: not flagged here
                    continue
            except Exception as err:  # one item's trouble never stops the round
                failed.append(FlagFailure(kind, subject_id, f"{type(err).__name__}: {err}"))
                continue
            for rule_id in rules:
                raised[rule_id] += 1
                items.append((kind, subject_id, rule_id))
        return FlagSummary(at, dict(sorted(raised.items())), tuple(items), tuple(failed))

    def _flag_approval(self, approval_id: UUID, at: datetime) -> tuple[str, ...]:
        approval = self.load(approval_id, LibraryApproval)
        if not approval.flags_to_raise(at):
            return ()
        return self._act(
            OVERSIGHT_WORKER.user_id,
            "flag library approval",
            [approval],
            lambda a: approval.raise_due_flags(a.actor, a.at),
        )

    def _flag_ucc_entry(self, probe_id: UUID, at: datetime) -> tuple[str, ...]:
        probe = self.load(probe_id, ProbeImage)
        if not probe.ucc_review_flag_due(at):
            return ()
        recorded = self._act(
            OVERSIGHT_WORKER.user_id,
            "flag cache entry review",
            [probe],
            lambda a: probe.flag_ucc_review(a.actor, a.at),
        )
        return ("U-03",) if recorded else ()
