"""The approval of one reference library for searching (policy 5.5-5.10, 7.1(b)(ii); L-rules)."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import attrs
from eventsourcing.domain import Aggregate

from rfr.domain.calendar import require_aware
from rfr.domain.codec import from_data, to_data
from rfr.domain.decisions import Decision, combine
from rfr.domain.forms import ApprovalRecord, LibraryApplication, LibraryKind, ReviewOutcome
from rfr.domain.governed import GovernedAggregate
from rfr.domain.images import ImageLevel
from rfr.domain.overdue_flags import FLAG_MESSAGES
from rfr.domain.people import GOVERNANCE_ROLES, OPERATIONAL_ROLES, Actor, Rank, Role, rank_of
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.refused_attempt import enforce_new
from rfr.domain.retention import deletion_deadline
from rfr.domain.rules_access import authorised, stated
from rfr.domain.rules_library import (
    DECIDER_ROLES,
    application_complete,
    approval_record_complete,
    approving_authority,
    decided_by_other,
    review_date_within_limit,
    superintendent_or_above,
    urgent_temporary_authority,
)
from rfr.domain.search_terms import SearchPurpose, Urgency

OPERATIONAL_LEAD = "operational_lead"


class ApprovalStatus(enum.StrEnum):
    APPLIED = "applied"
    APPROVED = "approved"
    REJECTED = "rejected"
    STOPPED = "stopped"
    EXPIRED = "expired"


@attrs.frozen
class Flag:
    """Something the Operational Lead must see (L-06, L-09, L-10)."""

    rule_id: str
    message: str


@attrs.frozen
class ReviewRecord:
    at: datetime
    reviewer_id: str
    outcome: ReviewOutcome
    rationale: str
    next_review_due: datetime | None


class LibraryApproval(GovernedAggregate):
    """Applied (Form 1/2) -> Approved / Rejected -> reviews, variations -> Stopped / Expired.

    Urgent approvals: ``approve(..., urgency=...)`` is a verbal approval usable at once with a
    written rationale due (L-09); ``approve_urgently_as_inspector`` is the L-10 route for a
    temporary library, flagged until a Superintendent or above ratifies, varies or stops it.
    """

    class Applied(GovernedAggregate.Event, Aggregate.Created):
        application: dict[str, Any]

        def apply(self, agg: LibraryApproval) -> None:
            agg.application = from_data(LibraryApplication, self.application)
            agg.kind = agg.application.kind
            agg.applicant_id = self.acting.user_id
            agg.applied_at = self.timestamp
            agg.status = ApprovalStatus.APPLIED
            agg.record = None
            agg.approved_at = None
            agg.approver_id = None
            agg.urgency = None
            agg.written_rationale_due = None
            agg.awaiting_superintendent = False
            agg.stopped_under_l10 = False
            agg.ended_at = None
            agg.deletion_due = None
            agg.reviews = []

    class Approved(GovernedAggregate.Event):
        record: dict[str, Any]
        approver_rank: int | None
        urgency: dict[str, Any] | None
        written_rationale_due: datetime | None
        awaiting_superintendent: bool
        notified: list[str]

        def apply(self, agg: LibraryApproval) -> None:
            agg.status = ApprovalStatus.APPROVED
            agg.record = from_data(ApprovalRecord, self.record)
            agg.approved_at = self.timestamp
            agg.approver_id = self.acting.user_id
            agg.urgency = from_data(Urgency | None, self.urgency)
            agg.written_rationale_due = self.written_rationale_due
            agg.awaiting_superintendent = self.awaiting_superintendent

    class Rejected(GovernedAggregate.Event):
        approver_rank: int | None

        def apply(self, agg: LibraryApproval) -> None:
            agg.status = ApprovalStatus.REJECTED
            agg.ended_at = self.timestamp

    class WrittenRationaleRecorded(GovernedAggregate.Event):
        def apply(self, agg: LibraryApproval) -> None:
            agg.record = attrs.evolve(agg.record, rationale=self.reason)
            agg.written_rationale_due = None

    class UrgentApprovalRatified(GovernedAggregate.Event):
        ratifier_rank: int | None
        notified: list[str]

        def apply(self, agg: LibraryApproval) -> None:
            agg.awaiting_superintendent = False

    class Varied(GovernedAggregate.Event):
        record: dict[str, Any]
        notified: list[str]

        def apply(self, agg: LibraryApproval) -> None:
            agg.record = from_data(ApprovalRecord, self.record)
            agg.awaiting_superintendent = False

    class Reviewed(GovernedAggregate.Event):
        outcome: str
        next_review_due: datetime | None
        record: dict[str, Any] | None
        notified: list[str]

        def apply(self, agg: LibraryApproval) -> None:
            outcome = ReviewOutcome(self.outcome)
            agg.reviews.append(
                ReviewRecord(self.timestamp, self.acting.user_id, outcome, self.reason, self.next_review_due)
            )
            if self.record is not None:
                agg.record = from_data(ApprovalRecord, self.record)
            elif self.next_review_due is not None:
                agg.record = attrs.evolve(agg.record, review_due=self.next_review_due)

    class Stopped(GovernedAggregate.Event):
        deletion_due: datetime
        notified: list[str]

        def apply(self, agg: LibraryApproval) -> None:
            agg.status = ApprovalStatus.STOPPED
            agg.ended_at = self.timestamp
            agg.deletion_due = self.deletion_due
            # Stopping an Inspector's urgent approval is the Superintendent's L-10 decision.
            agg.stopped_under_l10 = agg.awaiting_superintendent
            agg.awaiting_superintendent = False

    class Expired(GovernedAggregate.Event):
        deletion_due: datetime

        def apply(self, agg: LibraryApproval) -> None:
            agg.status = ApprovalStatus.EXPIRED
            agg.ended_at = self.timestamp
            agg.deletion_due = self.deletion_due

    class FlaggedOverdue(GovernedAggregate.Event):
        """A flag raised to the Operational Lead by the worker (L-06, L-09, L-10); ``due`` is
        when it fell due (see ``rfr.domain.overdue_flags``)."""

        rule_id: str
        due: datetime
        notified: list[str]

        def apply(self, agg: LibraryApproval) -> None:
            agg.flags_raised = (*agg.flags_raised, (self.rule_id, self.due))

    # (rule id, due) of every flag recorded. A class default without an annotation (eventsourcing
    # would take an annotation for a constructor argument), so approvals recorded before flags
    # were recorded read as having none.
    flags_raised = ()

    # -- commands ---------------------------------------------------------------------------

    @classmethod
    def apply_for(cls, actor: Actor, at: datetime, application: LibraryApplication) -> LibraryApproval:
        """Submit a Form 1 or Form 2. An incomplete form is refused (L-04) into a RefusedAttempt."""
        decision = combine(authorised(actor, *OPERATIONAL_ROLES), application_complete(application))
        enforce_new(f"apply for {application.kind.value} library", "LibraryApproval", actor, at, decision)
        return cls._create(
            cls.Applied,
            id=uuid4(),
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason=f"{application.kind.form} submitted for {application.library_name}",
            application=to_data(application),
        )

    def approve(
        self,
        actor: Actor,
        at: datetime,
        record: ApprovalRecord,
        config: PolicyConfig,
        *,
        urgency: Urgency | None = None,
    ) -> None:
        """L-02/L-03 approval with its L-05 record. With ``urgency`` it is verbal (L-09)."""
        verbal = urgency is not None
        decision = combine(
            self._awaiting_decision(),
            approving_authority(actor, self.kind),
            decided_by_other(actor, self.applicant_id),
            approval_record_complete(record, self.kind, at, first=True, verbal=verbal, config=config),
            Decision.check(
                not verbal or urgency.stated, "L-09", "a verbal approval must record why it is urgent"
            ),
        )
        self._enforce("approve", actor, at, decision)
        due = at + timedelta(days=config.urgent_written_rationale_due_days) if verbal else None
        self._approved(actor, at, record, urgency, due, awaiting_superintendent=False)

    def approve_urgently_as_inspector(
        self, actor: Actor, at: datetime, record: ApprovalRecord, urgency: Urgency, config: PolicyConfig
    ) -> None:
        """L-10: an Inspector approves a temporary library in urgency; a Superintendent must then decide."""
        decision = combine(
            self._awaiting_decision(),
            urgent_temporary_authority(actor, self.kind),
            decided_by_other(actor, self.applicant_id),
            approval_record_complete(record, self.kind, at, first=True, verbal=False, config=config),
            Decision.check(urgency.stated, "L-10", "the urgency must be recorded"),
        )
        self._enforce("approve urgently (Inspector)", actor, at, decision)
        self._approved(
            actor, at, record, urgency, None, awaiting_superintendent=not actor.at_least(Rank.SUPERINTENDENT)
        )

    def reject(self, actor: Actor, at: datetime, rationale: str) -> None:
        decision = combine(
            self._awaiting_decision(),
            approving_authority(actor, self.kind),
            decided_by_other(actor, self.applicant_id),
            stated(rationale, "P-12", "the rationale for rejecting"),
        )
        self._enforce("reject", actor, at, decision)
        self._record(self.Rejected, actor, at, rationale, approver_rank=rank_of(actor))

    def record_written_rationale(self, actor: Actor, at: datetime, rationale: str) -> None:
        """L-09: the officer who approved verbally records the rationale in writing."""
        decision = combine(
            authorised(actor, *DECIDER_ROLES),
            Decision.check(
                self.written_rationale_due is not None, "L-09", "no written rationale is outstanding"
            ),
            Decision.check(
                actor.user_id == self.approver_id,
                "L-09",
                "the officer who approved verbally records the rationale",
            ),
            stated(rationale, "L-09", "the written rationale"),
        )
        self._enforce("record written rationale", actor, at, decision)
        self._record(self.WrittenRationaleRecorded, actor, at, rationale)

    def ratify(self, actor: Actor, at: datetime, rationale: str) -> None:
        """L-10: a Superintendent or above continues an Inspector's urgent approval."""
        decision = combine(
            Decision.check(self.awaiting_superintendent, "L-10", "no urgent approval awaits ratification"),
            self._superintendent_decides(actor),
            stated(rationale, "L-10", "the rationale for continuing"),
        )
        self._enforce("ratify urgent approval", actor, at, decision)
        self._record(
            self.UrgentApprovalRatified,
            actor,
            at,
            rationale,
            ratifier_rank=rank_of(actor),
            notified=[OPERATIONAL_LEAD],
        )

    def vary(
        self, actor: Actor, at: datetime, record: ApprovalRecord, rationale: str, config: PolicyConfig
    ) -> None:
        """Change the approval's terms; the way a further purpose is approved (L-08) or L-10 varied."""
        decision = combine(
            self._in_force_now(at),
            self._decider(actor),
            approval_record_complete(record, self.kind, at, first=False, verbal=False, config=config),
            stated(rationale, "L-07", "the rationale for the variation"),
        )
        self._enforce("vary", actor, at, decision)
        self._record(self.Varied, actor, at, rationale, record=to_data(record), notified=[OPERATIONAL_LEAD])

    def stop(self, actor: Actor, at: datetime, reason: str, config: PolicyConfig) -> None:
        """Stop the approval: unsearchable at once, data deleted within 31 days (L-12)."""
        decision = combine(
            self._in_force_now(at), self._decider(actor), stated(reason, "L-12", "the reason for stopping")
        )
        self._enforce("stop", actor, at, decision)
        self._stopped(actor, at, reason, config)

    def review(
        self,
        actor: Actor,
        at: datetime,
        outcome: ReviewOutcome,
        rationale: str,
        config: PolicyConfig,
        *,
        next_review_due: datetime | None = None,
        varied_record: ApprovalRecord | None = None,
    ) -> None:
        """L-07: a review with its outcome, reported to the Operational Lead; sets the next L-06 date."""
        checks = [
            self._in_force_now(at),
            combine(authorised(actor, *GOVERNANCE_ROLES), self._reviewer(actor)),
            stated(rationale, "L-07", "the review rationale"),
        ]
        if outcome is ReviewOutcome.VARY:
            checks.append(
                Decision.check(varied_record is not None, "L-07", "a variation needs the varied record")
            )
            if varied_record is not None:
                checks.append(
                    approval_record_complete(
                        varied_record, self.kind, at, first=False, verbal=False, config=config
                    )
                )
        elif outcome is ReviewOutcome.CONTINUE:
            checks.append(
                Decision.check(
                    next_review_due is not None, "L-06", "a continued approval needs a review date"
                )
            )
            if next_review_due is not None:
                checks.append(
                    review_date_within_limit(self.kind, next_review_due, at, first=False, config=config)
                )
        self._enforce("review", actor, at, combine(*checks))
        if outcome is ReviewOutcome.STOP:
            self._record(
                self.Reviewed,
                actor,
                at,
                rationale,
                outcome=outcome.value,
                next_review_due=None,
                record=None,
                notified=[OPERATIONAL_LEAD],
            )
            self._stopped(actor, at, rationale, config)
            return
        due = varied_record.review_due if varied_record is not None else next_review_due
        self._record(
            self.Reviewed,
            actor,
            at,
            rationale,
            outcome=outcome.value,
            next_review_due=due,
            record=to_data(varied_record) if varied_record is not None else None,
            notified=[OPERATIONAL_LEAD],
        )

    def expire(self, actor: Actor, at: datetime, config: PolicyConfig) -> None:
        """The approval's end date has passed: unsearchable, data deleted within 31 days (L-12)."""
        decision = combine(
            authorised(actor, Role.ADMINISTRATOR, *GOVERNANCE_ROLES),
            Decision.check(
                self.status is ApprovalStatus.APPROVED, "L-12", "only an approval in force can expire"
            ),
            Decision.check(
                self.record is not None
                and self.record.expires_at is not None
                and at >= self.record.expires_at,
                "L-12",
                "the approval has not reached its end date",
            ),
        )
        self._enforce("expire", actor, at, decision)
        self._record(
            self.Expired,
            actor,
            at,
            "approval period ended",
            deletion_due=deletion_deadline(at, config),
        )

    def raise_due_flags(self, actor: Actor, at: datetime) -> tuple[str, ...]:
        """Records each flag due at ``at`` and not yet recorded; returns their rule ids."""
        raised = []
        for rule_id, due in self.flags_to_raise(at):
            self._record(
                self.FlaggedOverdue,
                actor,
                at,
                FLAG_MESSAGES[rule_id],
                rule_id=rule_id,
                due=due,
                notified=[OPERATIONAL_LEAD],
            )
            raised.append(rule_id)
        return tuple(raised)

    # -- queries ----------------------------------------------------------------------------

    def flags_to_raise(self, t: datetime) -> tuple[tuple[str, datetime], ...]:
        """(rule id, due) of the flags due at ``t`` and not recorded yet (``rfr.domain.overdue_flags``)."""
        due: list[tuple[str, datetime]] = []
        if self.review_overdue(t):
            due.append(("L-06", self.review_due))
        if self.in_force_at(t) and self.written_rationale_due is not None and t > self.written_rationale_due:
            due.append(("L-09", self.written_rationale_due))
        if self.in_force_at(t) and self.awaiting_superintendent:
            due.append(("L-10", self.approved_at))
        return tuple(f for f in due if f not in self.flags_raised)

    @property
    def approved_level(self) -> ImageLevel | None:
        """L-11: the level the approver gave; searches may raise it, never lower it."""
        return self.record.image_level if self.record is not None else None

    @property
    def review_due(self) -> datetime | None:
        return self.record.review_due if self.record is not None else None

    def in_force_at(self, t: datetime) -> bool:
        """L-01, L-12: approved, and neither stopped nor expired at ``t``."""
        if self.status not in (ApprovalStatus.APPROVED, ApprovalStatus.STOPPED, ApprovalStatus.EXPIRED):
            return False
        if self.approved_at is None or t < self.approved_at:
            return False
        if self.ended_at is not None and t >= self.ended_at:
            return False
        return self.record.expires_at is None or t < self.record.expires_at

    def review_overdue(self, t: datetime) -> bool:
        return self.in_force_at(t) and self.review_due is not None and t > self.review_due

    def blocks_search(self, t: datetime, config: PolicyConfig) -> bool:
        """Not in force (L-01), or overdue past the configured grace (L-06)."""
        if not self.in_force_at(t):
            return True
        grace = timedelta(days=config.overdue_review_grace_days)
        return config.overdue_review_blocks_search and t > self.review_due + grace

    def permits(self, purpose: SearchPurpose) -> bool:
        """L-08: the purpose is within the approved scope."""
        return self.record is not None and purpose in self.record.purposes

    def ended_by(self, t: datetime) -> str | None:
        """How an approval that was once in force had ended by ``t`` ("was stopped", "expired"); else None."""
        if self.ended_at is not None and t >= self.ended_at and self.status is not ApprovalStatus.REJECTED:
            return "was stopped" if self.status is ApprovalStatus.STOPPED else "expired"
        expires_at = self.record.expires_at if self.record is not None else None
        if self.status is ApprovalStatus.APPROVED and expires_at is not None and t >= expires_at:
            return "expired"
        return None

    def flags(self, t: datetime, config: PolicyConfig) -> tuple[Flag, ...]:
        """What the Operational Lead must be shown about this approval at ``t``."""
        found = []
        if self.review_overdue(t):
            blocked = " and blocks new searches" if self.blocks_search(t, config) else ""
            found.append(Flag("L-06", f"review was due {self.review_due.isoformat()}{blocked}"))
        if self.in_force_at(t) and self.written_rationale_due is not None:
            late = " (overdue)" if t > self.written_rationale_due else ""
            found.append(Flag("L-09", f"written rationale of the verbal approval outstanding{late}"))
        if self.in_force_at(t) and self.awaiting_superintendent:
            found.append(Flag("L-10", "urgent Inspector approval awaits a Superintendent's decision"))
        return tuple(found)

    # -- helpers ----------------------------------------------------------------------------

    def _approved(
        self,
        actor: Actor,
        at: datetime,
        record: ApprovalRecord,
        urgency: Urgency | None,
        due: datetime | None,
        *,
        awaiting_superintendent: bool,
    ) -> None:
        # Form 2 approvals go to the Operational Lead (L-03); Form 1 decisions are theirs to track too.
        self._record(
            self.Approved,
            actor,
            at,
            record.rationale or (urgency.rationale if urgency else ""),
            record=to_data(record),
            approver_rank=rank_of(actor),
            urgency=to_data(urgency) if urgency else None,
            written_rationale_due=due,
            awaiting_superintendent=awaiting_superintendent,
            notified=[OPERATIONAL_LEAD],
        )

    def _stopped(self, actor: Actor, at: datetime, reason: str, config: PolicyConfig) -> None:
        self._record(
            self.Stopped,
            actor,
            at,
            reason,
            deletion_due=deletion_deadline(at, config),
            notified=[OPERATIONAL_LEAD],
        )

    def _awaiting_decision(self) -> Decision:
        rule = "L-02" if self.kind is LibraryKind.SUBSTANTIVE else "L-03"
        return Decision.check(
            self.status is ApprovalStatus.APPLIED, rule, f"the application is already {self.status.value}"
        )

    def _in_force_now(self, at: datetime) -> Decision:
        return Decision.check(self.in_force_at(at), "L-12", "the approval is not in force")

    def _superintendent_decides(self, actor: Actor) -> Decision:
        return combine(
            authorised(actor, *DECIDER_ROLES),
            Decision.check(
                superintendent_or_above(actor),
                "L-10",
                "only an officer of Superintendent rank or above decides on an urgent approval",
            ),
        )

    def _decider(self, actor: Actor) -> Decision:
        if self.awaiting_superintendent:
            return self._superintendent_decides(actor)
        return approving_authority(actor, self.kind)

    def _reviewer(self, actor: Actor) -> Decision:
        """Reviews fall to the approving authority or the Operational Lead (5.5(b)(iv))."""
        if actor.has(Role.OPERATIONAL_LEAD):
            return Decision.allow("L-07")
        return self._decider(actor)
