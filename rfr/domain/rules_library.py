"""Rules on library applications and approvals (L-02..L-13). Pure functions."""

from __future__ import annotations

from datetime import datetime, timedelta

from rfr.domain.calendar import add_months
from rfr.domain.decisions import Decision, combine
from rfr.domain.forms import ApprovalRecord, LibraryApplication, LibraryKind
from rfr.domain.people import Actor, Rank, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.rules_access import authorised, different_person


def application_complete(application: LibraryApplication) -> Decision:
    """L-04: every part of policy 5.7(a)-(e) is stated; a missing part is a refusal, not a warning."""
    missing = application.missing_parts()
    return Decision.check(
        not missing, "L-04", f"{application.kind.form} is missing: {', '.join(missing)}" if missing else ""
    )


def superintendent_or_above(actor: Actor) -> bool:
    """An approving officer (or the SRO) of Superintendent rank or above (L-03, L-10)."""
    return (actor.has(Role.APPROVING_OFFICER) or actor.has(Role.SRO)) and actor.at_least(Rank.SUPERINTENDENT)


# Who decides on a library approval at all; which of them may decide what is L-02/L-03/L-10.
DECIDER_ROLES = (Role.SRO, Role.APPROVING_OFFICER)


def approving_authority(actor: Actor, kind: LibraryKind) -> Decision:
    """L-02: the SRO approves substantive libraries. L-03: Superintendent or above approves temporary."""
    if kind is LibraryKind.SUBSTANTIVE:
        return combine(
            authorised(actor, *DECIDER_ROLES),
            Decision.check(actor.has(Role.SRO), "L-02", "a substantive library is approved only by the SRO"),
        )
    return combine(
        authorised(actor, *DECIDER_ROLES),
        Decision.check(
            superintendent_or_above(actor),
            "L-03",
            "a temporary library is approved only by an approving officer of Superintendent rank or above",
        ),
    )


def urgent_temporary_authority(actor: Actor, kind: LibraryKind) -> Decision:
    """L-10: in urgency an Inspector (or above) may approve a temporary library."""
    return combine(
        authorised(actor, Role.APPROVING_OFFICER),
        Decision.check(
            kind is LibraryKind.TEMPORARY, "L-10", "only a temporary library may be approved this way"
        ),
        Decision.check(
            actor.at_least(Rank.INSPECTOR), "L-10", "urgent approval needs Inspector rank or above"
        ),
    )


def latest_review_due(
    kind: LibraryKind, from_time: datetime, *, first: bool, config: PolicyConfig
) -> datetime:
    """L-06: substantive at most 12 months; temporary first within 31 days, then at most 6 months."""
    if kind is LibraryKind.SUBSTANTIVE:
        return add_months(from_time, config.substantive_review_max_months)
    if first:
        return from_time + timedelta(days=config.temporary_first_review_max_days)
    return add_months(from_time, config.temporary_later_review_max_months)


def review_date_within_limit(
    kind: LibraryKind, review_due: datetime, at: datetime, *, first: bool, config: PolicyConfig
) -> Decision:
    latest = latest_review_due(kind, at, first=first, config=config)
    return combine(
        Decision.check(review_due > at, "L-06", "the review date must be in the future"),
        Decision.check(
            review_due <= latest,
            "L-06",
            f"a {kind.value} library must be reviewed by {latest.isoformat()} at the latest",
        ),
    )


def approval_record_complete(
    record: ApprovalRecord,
    kind: LibraryKind,
    at: datetime,
    *,
    first: bool,
    verbal: bool,
    config: PolicyConfig,
) -> Decision:
    """L-05 contents, with the L-06 review limit. A verbal approval may follow with its rationale (L-09)."""
    missing = record.missing_parts(rationale_required=not verbal)
    return combine(
        Decision.check(
            not missing, "L-05", f"the approval is missing: {', '.join(missing)}" if missing else ""
        ),
        review_date_within_limit(kind, record.review_due, at, first=first, config=config),
    )


def decided_by_other(actor: Actor, applicant_id: str) -> Decision:
    return different_person(actor, applicant_id, "a library approval")
