"""Library approvals from Form 1/2 to expiry (L-01..L-12), and the views the Operational Lead watches."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import attrs

from rfr.application.services.base import Act, Need, Page, UseCase, list_ids
from rfr.domain.codec import to_data
from rfr.domain.forms import ApprovalRecord, LibraryApplication, ReviewOutcome
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.people import GOVERNANCE_ROLES, OPERATIONAL_ROLES, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.search_terms import Urgency

# The domain decides the rank each kind needs (L-02, L-03, L-10); these stop the wrong people early.
APPLICANTS = Need(OPERATIONAL_ROLES)
DECIDERS = Need((Role.SRO, Role.APPROVING_OFFICER))
# Ranks (L-10: Inspector to approve urgently, Superintendent to ratify) are the domain's to decide.
URGENT_APPROVER = Need((Role.APPROVING_OFFICER,))
RATIFIER = Need((Role.SRO, Role.APPROVING_OFFICER))
REVIEWERS = Need(GOVERNANCE_ROLES)
# Expiry is bookkeeping once the end date passes; whoever watches the approvals may record it.
EXPIRERS = Need((Role.ADMINISTRATOR, *GOVERNANCE_ROLES))
APPROVAL_READERS = Need(OPERATIONAL_ROLES)


@attrs.frozen
class FlagView:
    """Something the Operational Lead must see about an approval (L-06, L-09, L-10).

    Attributes:
        rule_id: The rule the flag is raised under: ``L-06``, ``L-09`` or ``L-10``.
        message: What needs attention, e.g. when the overdue review was due.
    """

    rule_id: str
    message: str


@attrs.frozen
class ReviewView:
    """One review of an approval (L-07).

    Attributes:
        at: When the review was recorded.
        reviewer_id: The user id of the reviewer.
        outcome: ``continue``, ``vary`` or ``stop``.
        rationale: The reviewer's reasons.
        next_review_due: When the next review is due, or null if the approval stopped.
    """

    at: datetime
    reviewer_id: str
    outcome: str
    rationale: str
    next_review_due: datetime | None


@attrs.frozen
class ApprovalView:
    """An approval as an API client needs it; ``flags`` are L-06, L-09 and L-10 at read time.

    Attributes:
        id: The approval's id.
        kind: ``substantive`` or ``temporary``.
        form: The form applied with: ``Form 1`` (substantive) or ``Form 2`` (temporary).
        library_name: The name of the library applied for.
        status: ``applied``, ``approved``, ``rejected``, ``stopped`` or ``expired``.
        application: Every part of the Form 1/2 application, as submitted.
        applicant_id: The user id of the applicant.
        applied_at: When the application was made.
        approver_id: The user id of whoever approved it, or null.
        approved_at: When it was approved, or null.
        approved_level: The most intrusive Image Matrix level approved (1-5), or null.
        purposes: The search purposes approved (policy 8.2), in name order.
        access_teams: The teams that may search and list the library (L-13).
        access_users: The user ids that may search and list the library (L-13).
        access_all_rfr_users: Whether every RFR user may search and list it.
        conditions: The conditions of the approval, or null before approval.
        rationale: The approver's rationale, or null before approval.
        review_due: When the next review is due (L-06), or null before approval.
        expires_at: When the approval ends of itself, or null.
        in_force: Whether the approval is in force now: approved, and neither stopped nor
            expired (L-01, L-12).
        review_overdue: Whether the review date has passed while in force (L-06).
        blocks_search: Whether the library may not be searched now: not in force, or its
            review overdue past the configured grace (L-01, L-06).
        urgent: Whether it was approved in urgency (L-09, L-10).
        written_rationale_due: When the written rationale of a verbal urgent approval is due,
            while outstanding (L-09); else null.
        awaiting_superintendent: Whether an Inspector's urgent approval awaits a
            Superintendent's decision (L-10).
        ended_at: When it stopped or expired, or null.
        deletion_due: When the library's data must be deleted by, once the approval ended
            (policy retention), or null.
        reviews: Every review, oldest first.
        flags: What the Operational Lead must see now (L-06, L-09, L-10).
        refusals: How many commands on this approval were refused and recorded (A-01).
    """

    id: UUID
    kind: str
    form: str
    library_name: str
    status: str
    application: dict[str, Any]
    applicant_id: str
    applied_at: datetime
    approver_id: str | None
    approved_at: datetime | None
    approved_level: int | None
    purposes: tuple[str, ...]
    access_teams: tuple[str, ...]
    access_users: tuple[str, ...]
    access_all_rfr_users: bool
    conditions: str | None
    rationale: str | None
    review_due: datetime | None
    expires_at: datetime | None
    in_force: bool
    review_overdue: bool
    blocks_search: bool
    urgent: bool
    written_rationale_due: datetime | None
    awaiting_superintendent: bool
    ended_at: datetime | None
    deletion_due: datetime | None
    reviews: tuple[ReviewView, ...]
    flags: tuple[FlagView, ...]
    refusals: int

    @classmethod
    def of(cls, approval: LibraryApproval, now: datetime, config: PolicyConfig) -> ApprovalView:
        record = approval.record
        return cls(
            id=approval.id,
            kind=approval.kind.value,
            form=approval.kind.form,
            library_name=approval.application.library_name,
            status=approval.status.value,
            application=to_data(approval.application),
            applicant_id=approval.applicant_id,
            applied_at=approval.applied_at,
            approver_id=approval.approver_id,
            approved_at=approval.approved_at,
            approved_level=int(record.image_level) if record else None,
            purposes=tuple(sorted(p.value for p in record.purposes)) if record else (),
            access_teams=tuple(sorted(record.access.teams)) if record else (),
            access_users=tuple(sorted(record.access.users)) if record else (),
            access_all_rfr_users=record.access.all_rfr_users if record else False,
            conditions=record.conditions if record else None,
            rationale=record.rationale if record else None,
            review_due=approval.review_due,
            expires_at=record.expires_at if record else None,
            in_force=approval.in_force_at(now),
            review_overdue=approval.review_overdue(now),
            blocks_search=approval.blocks_search(now, config),
            urgent=approval.urgency is not None,
            written_rationale_due=approval.written_rationale_due,
            awaiting_superintendent=approval.awaiting_superintendent,
            ended_at=approval.ended_at,
            deletion_due=approval.deletion_due,
            reviews=tuple(
                ReviewView(r.at, r.reviewer_id, r.outcome.value, r.rationale, r.next_review_due)
                for r in approval.reviews
            ),
            flags=tuple(FlagView(f.rule_id, f.message) for f in approval.flags(now, config)),
            refusals=len(approval.refusals),
        )


class LibraryApprovals(UseCase):
    def apply(self, acting_user: str, application: LibraryApplication) -> ApprovalView:
        """Form 1 (substantive) or Form 2 (temporary); an incomplete form is refused (L-04)."""
        approval = self._act(
            acting_user,
            f"apply for {application.kind.value} library",
            [],
            lambda a: a.new(LibraryApproval.apply_for(a.actor, a.at, application)),
            target_name="LibraryApproval",
        )
        return self._view(approval)

    def approve(
        self,
        acting_user: str,
        approval_id: UUID | str,
        record: ApprovalRecord,
        *,
        urgency: Urgency | None = None,
    ) -> ApprovalView:
        """L-02/L-03 with the L-05 record; with ``urgency`` a verbal approval (L-09)."""
        return self._on(
            acting_user,
            "approve",
            approval_id,
            lambda ap, a: ap.approve(a.actor, a.at, record, a.config, urgency=urgency),
        )

    def approve_urgently(
        self, acting_user: str, approval_id: UUID | str, record: ApprovalRecord, urgency: Urgency
    ) -> ApprovalView:
        """L-10: an Inspector approves a temporary library in urgency, pending a Superintendent."""
        return self._on(
            acting_user,
            "approve urgently (Inspector)",
            approval_id,
            lambda ap, a: ap.approve_urgently_as_inspector(a.actor, a.at, record, urgency, a.config),
        )

    def reject(self, acting_user: str, approval_id: UUID | str, rationale: str) -> ApprovalView:
        return self._on(acting_user, "reject", approval_id, lambda ap, a: ap.reject(a.actor, a.at, rationale))

    def record_written_rationale(
        self, acting_user: str, approval_id: UUID | str, rationale: str
    ) -> ApprovalView:
        """L-09: the officer who approved verbally puts the rationale in writing."""
        return self._on(
            acting_user,
            "record written rationale",
            approval_id,
            lambda ap, a: ap.record_written_rationale(a.actor, a.at, rationale),
        )

    def ratify(self, acting_user: str, approval_id: UUID | str, rationale: str) -> ApprovalView:
        """L-10: a Superintendent or above continues an Inspector's urgent approval."""
        return self._on(
            acting_user,
            "ratify urgent approval",
            approval_id,
            lambda ap, a: ap.ratify(a.actor, a.at, rationale),
        )

    def review(
        self,
        acting_user: str,
        approval_id: UUID | str,
        outcome: ReviewOutcome,
        rationale: str,
        *,
        next_review_due: datetime | None = None,
        varied_record: ApprovalRecord | None = None,
    ) -> ApprovalView:
        """L-07 review by the approving authority or the Operational Lead; sets the next L-06 date."""
        return self._on(
            acting_user,
            "review",
            approval_id,
            lambda ap, a: ap.review(
                a.actor,
                a.at,
                outcome,
                rationale,
                a.config,
                next_review_due=next_review_due,
                varied_record=varied_record,
            ),
        )

    def vary(
        self, acting_user: str, approval_id: UUID | str, record: ApprovalRecord, rationale: str
    ) -> ApprovalView:
        """New terms (a further purpose, L-08; an L-10 variation)."""
        return self._on(
            acting_user,
            "vary",
            approval_id,
            lambda ap, a: ap.vary(a.actor, a.at, record, rationale, a.config),
        )

    def stop(self, acting_user: str, approval_id: UUID | str, reason: str) -> ApprovalView:
        """L-12: unsearchable at once, data deleted within the configured days."""
        return self._on(
            acting_user, "stop", approval_id, lambda ap, a: ap.stop(a.actor, a.at, reason, a.config)
        )

    def expire(self, acting_user: str, approval_id: UUID | str) -> ApprovalView:
        """L-12: the approval reached its end date."""
        return self._on(acting_user, "expire", approval_id, lambda ap, a: ap.expire(a.actor, a.at, a.config))

    # -- queries -----------------------------------------------------------------------------

    def get(self, acting_user: str, approval_id: UUID | str) -> ApprovalView:
        self._read(
            acting_user, "read library approval", APPROVAL_READERS, target=f"LibraryApproval {approval_id}"
        )
        return self._view(self.load(approval_id, LibraryApproval))

    def list(
        self, acting_user: str, *, after: int = 0, limit: int = 50, status: str | None = None
    ) -> Page[ApprovalView]:
        """Approvals in application order; ``status`` filters within the page (pages may be short)."""
        self._read(acting_user, "list library approvals", APPROVAL_READERS)
        now, config = self.clock.now(), self.config()
        ids, next_after = list_ids(self.app, LibraryApproval.Applied, after=after, limit=limit)
        views = (ApprovalView.of(self.load(i, LibraryApproval), now, config) for i in ids)
        return Page(tuple(v for v in views if status is None or v.status == status), next_after)

    def flagged(self, acting_user: str) -> tuple[ApprovalView, ...]:
        """Every approval with an L-06, L-09 or L-10 flag now: the Operational Lead's worklist."""
        self._read(acting_user, "list flagged library approvals", REVIEWERS)
        now, config = self.clock.now(), self.config()
        found: list[ApprovalView] = []
        after: int | None = 0
        while after is not None:
            ids, after = list_ids(self.app, LibraryApproval.Applied, after=after, limit=200)
            views = (ApprovalView.of(self.load(i, LibraryApproval), now, config) for i in ids)
            found.extend(v for v in views if v.flags)
        return tuple(found)

    # -- helpers -----------------------------------------------------------------------------

    def _on(
        self,
        acting_user: str,
        command: str,
        approval_id: UUID | str,
        change: Callable[[LibraryApproval, Act], None],
    ) -> ApprovalView:
        approval = self.load(approval_id, LibraryApproval)
        self._act(acting_user, command, [approval], lambda a: change(approval, a))
        return self._view(approval)

    def _view(self, approval: LibraryApproval) -> ApprovalView:
        return ApprovalView.of(approval, self.clock.now(), self.config())
