"""The Unresolved Crime Cache (U-01, U-03, U-04): additions, reviews, removals and the entry list.

The entry lives on the probe, so these use cases act on ``ProbeImage``. U-01 is decided
over EVERY search request of the probe, found from the store rather than taken from the
caller, so a request with a useful viable match cannot be left out.

Additions (U-01 with P-08), two ways, as ``ProbeImage`` explains: the probe's requester asks
(``request_addition``) and an Inspector or above who is not the requester (P-12) approves or
declines (``approve_addition``, ``decline_addition``); or an Inspector adds the probe on
their own decision (``add``), which is itself the individual approval P-08 asks for.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

import attrs

from rfr.application.services.base import Need, Page, UseCase, list_ids
from rfr.domain.forms import ReviewOutcome
from rfr.domain.people import OPERATIONAL_ROLES, Role
from rfr.domain.probe_image import ProbeImage, UccRequest
from rfr.domain.search_terms import SearchGround

REVIEWERS = Need((Role.RFR_USER, Role.APPROVING_OFFICER, Role.OPERATIONAL_LEAD))
# U-01: the probe's requester (the domain checks it is them) asks for the addition.
REQUESTERS = Need((Role.RFR_USER,))
# P-08: an approving officer decides a request; the domain decides the rank (Inspector or
# above where the policy settings say so) and that they are not the requester (P-12).
DECIDERS = Need((Role.APPROVING_OFFICER,))
REMOVERS = Need(OPERATIONAL_ROLES)
UCC_READERS = Need(OPERATIONAL_ROLES)


@attrs.frozen
class UccEntryView:
    """A probe held in the unresolved crime cache (U-01..U-04).

    Attributes:
        probe_id: The probe held (an entry is keyed by its probe).
        case_reference: The case reference of the probe's Form 3.
        requester_id: The user id of whoever submitted the probe.
        added_at: When the probe entered the cache.
        approved_by: The user id of the approving officer who added it or approved its addition.
        grounds: The grounds (policy 8.3) that still apply, in name order.
        crime_tier: The Annex C crime tier (1, 2 or 3) of the offence, which sets the review
            period.
        review_due: When the entry must next be reviewed (U-03).
        review_overdue: Whether that date has passed (U-03).
        removed_at: When the entry was removed, or null.
        deletion_due: When the probe's data must be deleted by, once removed (U-04), or null.
    """

    probe_id: UUID
    case_reference: str
    requester_id: str
    added_at: datetime
    approved_by: str
    grounds: tuple[str, ...]
    crime_tier: int
    review_due: datetime
    review_overdue: bool  # U-03
    removed_at: datetime | None
    deletion_due: datetime | None

    @classmethod
    def of(cls, probe: ProbeImage, now: datetime) -> UccEntryView:
        entry = probe.ucc
        return cls(
            probe_id=probe.id,
            case_reference=probe.form.case_reference,
            requester_id=probe.requester_id,
            added_at=entry.added_at,
            approved_by=entry.approved_by,
            grounds=tuple(sorted(g.value for g in entry.grounds)),
            crime_tier=entry.tier,
            review_due=entry.review_due,
            review_overdue=probe.ucc_review_overdue(now),
            removed_at=entry.removed_at,
            deletion_due=entry.deletion_due,
        )


@attrs.frozen
class UccRequestView:
    """An RFR User's request to add a probe to the cache (U-01) and the decision on it (P-08, P-12).

    Attributes:
        probe_id: The probe asked for (the cache entry, once approved, has the same id).
        case_reference: The case reference of the probe's Form 3.
        requested_by: The RFR User who submitted the probe and asked.
        requested_at: When they asked.
        grounds: The Form 3 grounds (8.3) they say still apply.
        rationale: Why the probe should be searched again as new material arrives.
        status: pending, approved (the probe then entered the cache) or declined.
        decided_by: The approving officer who approved or declined it.
        decided_at: When they decided.
        decider_rank: Their rank (2 is Inspector), recorded with the decision (P-12).
        decision_rationale: Why they approved or declined it.
        in_ucc: Whether the probe is in the cache now.
    """

    probe_id: UUID
    case_reference: str
    requested_by: str
    requested_at: datetime
    grounds: tuple[str, ...]
    rationale: str
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decider_rank: int | None
    decision_rationale: str | None
    in_ucc: bool

    @classmethod
    def of(cls, probe: ProbeImage) -> UccRequestView:
        request: UccRequest = probe.ucc_request
        return cls(
            probe_id=probe.id,
            case_reference=probe.form.case_reference,
            requested_by=request.requested_by,
            requested_at=request.requested_at,
            grounds=tuple(sorted(g.value for g in request.grounds)),
            rationale=request.rationale,
            status=request.status.value,
            decided_by=request.decided_by,
            decided_at=request.decided_at,
            decider_rank=request.decider_rank,
            decision_rationale=request.decision_rationale,
            in_ucc=probe.ucc is not None and probe.ucc.removed_at is None,
        )


class UccEntries(UseCase):
    def add(
        self,
        acting_user: str,
        probe_id: UUID | str,
        grounds_still_applying: Iterable[SearchGround],
        rationale: str,
    ) -> UccEntryView:
        """U-01: no useful viable match in any search of the probe, a ground still applies."""
        grounds = tuple(grounds_still_applying)
        probe = self.load(probe_id, ProbeImage)
        searches = self.app.probe_searches.of(str(probe.id))
        self._act(
            acting_user,
            "add to unresolved crime cache",
            [probe],
            lambda a: probe.add_to_ucc(a.actor, a.at, searches, grounds, rationale, config=a.config),
        )
        return UccEntryView.of(probe, self.clock.now())

    def request_addition(
        self,
        acting_user: str,
        probe_id: UUID | str,
        grounds_still_applying: Iterable[SearchGround],
        rationale: str,
    ) -> UccRequestView:
        """U-01: the probe's requester asks for its addition; U-01 is checked now and on approval."""
        grounds = tuple(grounds_still_applying)
        probe = self.load(probe_id, ProbeImage)
        searches = self.app.probe_searches.of(str(probe.id))
        self._act(
            acting_user,
            "request addition to unresolved crime cache",
            [probe],
            lambda a: probe.request_ucc_addition(a.actor, a.at, searches, grounds, rationale),
        )
        return UccRequestView.of(probe)

    def approve_addition(self, acting_user: str, probe_id: UUID | str, rationale: str) -> UccRequestView:
        """P-08: an Inspector or above, not the requester (P-12); the probe enters the cache."""
        probe = self.load(probe_id, ProbeImage)
        searches = self.app.probe_searches.of(str(probe.id))
        self._act(
            acting_user,
            "approve addition to unresolved crime cache",
            [probe],
            lambda a: probe.approve_ucc_addition(a.actor, a.at, searches, rationale, config=a.config),
        )
        return UccRequestView.of(probe)

    def decline_addition(self, acting_user: str, probe_id: UUID | str, rationale: str) -> UccRequestView:
        """P-08: an Inspector or above, not the requester (P-12), declines with a rationale."""
        probe = self.load(probe_id, ProbeImage)
        self._act(
            acting_user,
            "decline addition to unresolved crime cache",
            [probe],
            lambda a: probe.decline_ucc_addition(a.actor, a.at, rationale, config=a.config),
        )
        return UccRequestView.of(probe)

    def review(
        self, acting_user: str, probe_id: UUID | str, outcome: ReviewOutcome, reason: str
    ) -> UccEntryView:
        """U-03: a periodic review sets the next date; STOP removes the entry (U-04)."""
        probe = self.load(probe_id, ProbeImage)
        self._act(
            acting_user,
            "review cache entry",
            [probe],
            lambda a: probe.review_ucc_entry(a.actor, a.at, outcome, reason, a.config),
        )
        return UccEntryView.of(probe, self.clock.now())

    def remove(self, acting_user: str, probe_id: UUID | str, reason: str) -> UccEntryView:
        """U-04: the purpose was resolved by other means; deletion follows within the configured days."""
        probe = self.load(probe_id, ProbeImage)
        self._act(
            acting_user,
            "remove from cache",
            [probe],
            lambda a: probe.remove_from_ucc(a.actor, a.at, reason, a.config),
        )
        return UccEntryView.of(probe, self.clock.now())

    # -- queries -----------------------------------------------------------------------------

    def get(self, acting_user: str, probe_id: UUID | str) -> UccEntryView | None:
        """The probe's entry (current or removed), or None if it was never in the cache."""
        self._read(acting_user, "read cache entry", UCC_READERS, target=f"ProbeImage {probe_id}")
        probe = self.load(probe_id, ProbeImage)
        return UccEntryView.of(probe, self.clock.now()) if probe.ucc is not None else None

    def addition_request(self, acting_user: str, probe_id: UUID | str) -> UccRequestView | None:
        """The probe's latest request for an addition, or None if none was ever made."""
        self._read(acting_user, "read cache addition request", UCC_READERS, target=f"ProbeImage {probe_id}")
        probe = self.load(probe_id, ProbeImage)
        return UccRequestView.of(probe) if probe.ucc_request is not None else None

    def addition_requests(
        self, acting_user: str, *, after: int = 0, limit: int = 50, include_decided: bool = False
    ) -> Page[UccRequestView]:
        """Requests in the order they were made, listed from the "requested" events: by default
        only those awaiting a decision, for the Inspectors who decide them. A probe asked for
        again after a decline is listed at each request, always with its latest one."""
        self._read(acting_user, "list cache addition requests", UCC_READERS)
        ids, next_after = list_ids(self.app, ProbeImage.UccAdditionRequested, after=after, limit=limit)
        views = []
        for probe_id in dict.fromkeys(ids):
            view = UccRequestView.of(self.load(probe_id, ProbeImage))
            if include_decided or view.status == "pending":
                views.append(view)
        return Page(tuple(views), next_after)

    def entries(
        self, acting_user: str, *, after: int = 0, limit: int = 50, include_removed: bool = False
    ) -> Page[UccEntryView]:
        """Entries in order of addition, listed from the "added" events.

        A probe added again after a removal is listed at each addition, always with its
        current entry; within one page it appears once.
        """
        self._read(acting_user, "list cache entries", UCC_READERS)
        now = self.clock.now()
        ids, next_after = list_ids(self.app, ProbeImage.AddedToUcc, after=after, limit=limit)
        views = []
        for probe_id in dict.fromkeys(ids):
            probe = self.load(probe_id, ProbeImage)
            view = UccEntryView.of(probe, now)
            if include_removed or view.removed_at is None:
                views.append(view)
        return Page(tuple(views), next_after)

    def overdue(self, acting_user: str) -> tuple[UccEntryView, ...]:
        """U-03: entries in the cache past their review date."""
        self._read(acting_user, "list overdue cache entries", UCC_READERS)
        now = self.clock.now()
        found: dict[UUID, UccEntryView] = {}
        after: int | None = 0
        while after is not None:
            ids, after = list_ids(self.app, ProbeImage.AddedToUcc, after=after, limit=200)
            for probe_id in ids:
                view = UccEntryView.of(self.load(probe_id, ProbeImage), now)
                if view.review_overdue:
                    found[probe_id] = view
        return tuple(found.values())
