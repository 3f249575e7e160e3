"""Potential matches found by re-searching Unresolved Crime Cache probes against new material (U-02).

When images are enrolled in a library, every cached probe to which that library is relevant
is searched against the new templates only; what comes close enough is queued here, one
queue per probe, for a person to adjudicate (S-05). A queued match is a potential match,
never a viable one, until adjudicated.

The queue re-checks, at the moment of queueing, what a search of that library with that
probe would need: the probe is live and still in the cache (U-02, R-05) and may be
searched at all (P-03); the library's approval is in force, not blocked by an overdue
review and covers the probe's purposes (L-01, L-06, L-08); the matches are templates the
library may still search, made by the probe's algorithm (R-01, T-01). The person who
adjudicates must be within the library's access restrictions (L-13).

Events hold ids, scores and algorithm ids only (ADR 0004).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import attrs
from eventsourcing.domain import Aggregate

from rfr.domain.adjudication import Adjudication, identity_recorded, may_adjudicate
from rfr.domain.calendar import require_aware
from rfr.domain.codec import from_data, to_data
from rfr.domain.decisions import Decision, combine
from rfr.domain.governed import GovernedAggregate, formerly
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.people import Actor
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import LibraryHoldings, ReferenceLibrary
from rfr.domain.rules_access import authorised
from rfr.domain.rules_search import approval_covers, within_access

_QUEUES = uuid5(NAMESPACE_URL, "urn:rfr:ucc-match-queues")


@attrs.frozen
class QueuedMatch:
    """A template of new library material close to a cached probe; higher score = more similar."""

    library_id: str
    image_id: str
    template_id: str
    algorithm_id: str
    score: float

    @property
    def match_id(self) -> str:
        return f"{self.library_id}#{self.image_id}"


def may_queue(
    probe: ProbeImage,
    library: ReferenceLibrary,
    approval: LibraryApproval,
    *,
    algorithm_id: str,
    at: datetime,
    config: PolicyConfig,
) -> Decision:
    """Whether this library's new material may be searched with this cached probe now (U-02)."""
    in_ucc = probe.ucc is not None and probe.ucc.removed_at is None
    return combine(
        Decision.check(probe.purged_at is None, "R-05", "the probe has been deleted"),
        Decision.check(in_ucc, "U-02", "the probe is not in the Unresolved Crime Cache"),
        probe.age_safeguards(),
        Decision.check(str(approval.id) == library.approval_id, "L-01", "not the library's approval"),
        approval_covers(approval, probe.form.purposes, at, config),
        Decision.check(
            bool(probe.template_ids(algorithm_id)), "T-01", f"the probe has no templates by {algorithm_id}"
        ),
    )


class UccMatchQueue(GovernedAggregate):
    """The U-02 matches of one cached probe, and their adjudications."""

    class Opened(GovernedAggregate.Event, Aggregate.Created):
        probe_id: str

        def apply(self, agg: UccMatchQueue) -> None:
            agg.probe_id = self.probe_id
            agg.matches = {}
            agg.adjudications = {}
            agg.library_approvals = {}

    class MatchesQueued(GovernedAggregate.Event):
        library_id: str
        approval_id: str
        algorithm_id: str
        probe_template_ids: list[str]
        matches: list[dict[str, Any]]

        def apply(self, agg: UccMatchQueue) -> None:
            agg.library_approvals[self.library_id] = self.approval_id
            for item in self.matches:
                match = from_data(QueuedMatch, item)
                agg.matches[match.match_id] = match

    class MatchAdjudicated(GovernedAggregate.Event):
        match_id: str
        viable: bool
        identity_known: bool | None

        def apply(self, agg: UccMatchQueue) -> None:
            agg.adjudications[self.match_id] = Adjudication(
                self.match_id,
                self.viable,
                self.reason,
                self.identity_known,
                self.acting.user_id,
                self.timestamp,
            )

    @staticmethod
    def id_for(probe_id: UUID | str) -> UUID:
        """One queue per probe, so two enrolments racing to open it collide in the store."""
        return uuid5(_QUEUES, str(probe_id))

    @classmethod
    def open_for(cls, actor: Actor, at: datetime, probe: ProbeImage) -> UccMatchQueue:
        return cls._create(
            cls.Opened,
            id=cls.id_for(probe.id),
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason="U-02: re-searching of a cached probe found potential matches",
            probe_id=str(probe.id),
        )

    def queue(
        self,
        actor: Actor,
        at: datetime,
        *,
        probe: ProbeImage,
        library: ReferenceLibrary,
        holdings: LibraryHoldings,
        approval: LibraryApproval,
        algorithm_id: str,
        matches: Sequence[QueuedMatch],
        config: PolicyConfig,
    ) -> None:
        """U-02: queue new potential matches of this probe in one library's new material."""
        library_id = str(library.id)
        searchable = holdings.searchable_templates if holdings.library_id == library_id else frozenset()
        ids = [m.match_id for m in matches]
        again = sorted(i for i in ids if i in self.matches)
        self._enforce(
            f"queue cache matches from {library_id}",
            actor,
            at,
            combine(
                authorised(actor),
                Decision.check(str(probe.id) == self.probe_id, "U-02", "not this queue's probe"),
                may_queue(probe, library, approval, algorithm_id=algorithm_id, at=at, config=config),
                Decision.check(bool(matches), "U-02", "no matches to queue"),
                Decision.check(len(set(ids)) == len(ids) and not again, "U-02", f"already queued: {again}"),
                Decision.check(
                    all(m.library_id == library_id for m in matches), "U-02", "matches of another library"
                ),
                Decision.check(
                    all(m.algorithm_id == algorithm_id for m in matches),
                    "T-01",
                    "templates of different algorithms are never compared",
                ),
                Decision.check(
                    all(m.template_id in searchable for m in matches),
                    "R-01",
                    "a match is not (or no longer) searchable in this library",
                ),
            ),
        )
        self._record(
            self.MatchesQueued,
            actor,
            at,
            f"U-02: {len(matches)} potential matches in new material of library {library_id}",
            library_id=library_id,
            approval_id=str(approval.id),
            algorithm_id=algorithm_id,
            probe_template_ids=list(probe.template_ids(algorithm_id)),
            matches=[to_data(m) for m in sorted(matches, key=lambda m: -m.score)],
        )

    def adjudicate(
        self,
        actor: Actor,
        at: datetime,
        match_id: str,
        viable: bool,
        rationale: str,
        *,
        approval: LibraryApproval,
        identity_known: bool | None = None,
    ) -> None:
        """S-05 for a queued match, by someone the library's access restrictions admit (L-13)."""
        match = self.matches.get(match_id)
        self._enforce(
            "adjudicate cache match",
            actor,
            at,
            combine(
                may_adjudicate(
                    actor,
                    match_id,
                    rationale,
                    known=self.matches.keys(),
                    decided=self.adjudications.keys(),
                    within_access=within_access(approval, actor),
                ),
                Decision.check(
                    match is None or self.library_approvals[match.library_id] == str(approval.id),
                    "L-01",
                    "not the approval of the match's library",
                ),
            ),
        )
        self._record(
            self.MatchAdjudicated,
            actor,
            at,
            rationale,
            match_id=match_id,
            viable=viable,
            identity_known=identity_recorded(viable, identity_known),
        )

    # -- queries ----------------------------------------------------------------------------

    def pending(self) -> tuple[QueuedMatch, ...]:
        """Queued matches awaiting adjudication, most similar first."""
        waiting = [m for i, m in self.matches.items() if i not in self.adjudications]
        return tuple(sorted(waiting, key=lambda m: (-m.score, m.match_id)))


# Stored before the Unresolved Crime Cache was called ``ucc`` everywhere (issue 7).
formerly(UccMatchQueue, "rfr.domain.cache_matches:CacheMatchQueue")
for _event in (UccMatchQueue.Opened, UccMatchQueue.MatchesQueued, UccMatchQueue.MatchAdjudicated):
    formerly(_event, f"rfr.domain.cache_matches:CacheMatchQueue.{_event.__name__}")
