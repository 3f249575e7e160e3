"""Library approvals (L-01..L-12): Form 1/2 applications, decisions, urgency, reviews, variation, stop."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import attrs
import msgspec
from litestar import Router, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, PathParameter, QueryParameter

from rfr.application.services.access import Principal
from rfr.application.services.library_approvals import (
    APPLICANTS,
    APPROVAL_READERS,
    DECIDERS,
    EXPIRERS,
    RATIFIER,
    REVIEWERS,
    URGENT_APPROVER,
    ApprovalView,
    LibraryApprovals,
)
from rfr.domain.forms import ApprovalRecord, LibraryApplication, LibraryKind, ReviewOutcome
from rfr.domain.images import ImageLevel
from rfr.domain.library_approval import ApprovalStatus
from rfr.domain.search_terms import SearchPurpose, Urgency
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.http.resources._workflow import (
    AwareDateTime,
    Choices,
    Cursor,
    Names,
    PageSize,
    RationaleBody,
    ReasonBody,
    Statement,
    UrgencyBody,
    domain_value,
    plausible,
)


class ApplicationBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Form 1 (``substantive``) or Form 2 (``temporary``): every part of policy 5.7(a)-(e) (L-04).

    Attributes:
        kind: ``substantive`` (Form 1, a standing library) or ``temporary`` (Form 2, for one
            investigation or operation).
        library_name: The name of the reference library applied for.
        legal_basis: The legal basis for holding and searching the images (5.7(a)).
        how_obtained_and_privacy_expectations: How the images were obtained and what privacy
            the people shown could expect (5.7(b)).
        composition_quality_and_suitability: What the library holds, the images' quality and
            their suitability for facial recognition (5.7(c)).
        elevated_privacy_or_human_rights: Any elevated privacy or human-rights concern the
            library raises, and how it is addressed (5.7(d)).
        necessity_and_proportionality: Why searching the library is necessary and proportionate
            (5.7(e)).
        monitoring_and_assurance: How the library's use will be monitored and assured.
    """

    kind: LibraryKind
    library_name: Statement
    legal_basis: Statement
    how_obtained_and_privacy_expectations: Statement
    composition_quality_and_suitability: Statement
    elevated_privacy_or_human_rights: Statement
    necessity_and_proportionality: Statement
    monitoring_and_assurance: Statement


class AccessBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Who may search and list the library (L-13); open access must be said with ``all_rfr_users``.

    Attributes:
        teams: The teams whose members may search and list it.
        users: The user ids of people who may search and list it, beside the teams.
        all_rfr_users: Every RFR user may search and list it; open access is said this way,
            never implied by empty lists.
    """

    teams: Names = msgspec.field(default_factory=list)
    users: Names = msgspec.field(default_factory=list)
    all_rfr_users: bool = False


class ApprovalRecordBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What an approval records (policy 5.7(f), L-05).

    Attributes:
        rationale: Why the library is approved, in the approver's words (L-05).
        access: Who may search and list the library (L-13).
        image_level: The most intrusive level of the Annex A Image Matrix the library may be
            searched with (1 least intrusive, 5 most).
        conditions: The conditions of the approval, e.g. who searches and how it is logged.
        purposes: The search purposes (policy 8.2 (a)-(d)) the library may be searched for.
        review_due: When the approval must next be reviewed (L-06).
        expires_at: When the approval ends of itself, or null (a temporary library should
            have one).
    """

    rationale: Statement
    access: AccessBody
    image_level: ImageLevel
    conditions: Statement
    purposes: Annotated[list[SearchPurpose], Choices]
    review_due: AwareDateTime
    expires_at: AwareDateTime | None = None


class ApproveBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The decision's record; with ``urgency`` it is a verbal approval whose rationale follows (L-09).

    Attributes:
        record: What the approval records.
        urgency: For a verbal approval in urgency (L-09): its basis and rationale; the written
            rationale is then due later (POST .../written-rationale).
    """

    record: ApprovalRecordBody
    urgency: UrgencyBody | None = None


class UrgentApproveBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """L-10: an Inspector approves a temporary library in urgency, pending a Superintendent.

    Attributes:
        record: What the approval records.
        urgency: The urgency (policy 3.1) that justifies an Inspector's approval.
    """

    record: ApprovalRecordBody
    urgency: UrgencyBody


class ReviewBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """L-07: the review's outcome; ``varied_record`` with ``vary``; ``next_review_due`` sets L-06's date.

    Attributes:
        outcome: ``continue``, ``vary`` (give ``varied_record``) or ``stop`` (the approval
            ends and its library can no longer be searched).
        rationale: Why, in the reviewer's words (L-07).
        next_review_due: When the approval must be reviewed next (L-06); required with
            ``continue`` (a varied record carries its own ``review_due``).
        varied_record: The approval's new record, with ``vary`` only.
    """

    outcome: ReviewOutcome
    rationale: Statement
    next_review_due: AwareDateTime | None = None
    varied_record: ApprovalRecordBody | None = None


class VaryBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A variation of an approval in force, outside a review.

    Attributes:
        record: The approval's new record, replacing the current one.
        rationale: Why it is varied, in the approver's words.
    """

    record: ApprovalRecordBody
    rationale: Statement


@attrs.frozen
class ApprovalPage:
    """One page of approvals; pass ``next_after`` as ``after`` for the next (null: last page).

    Attributes:
        items: The approvals on this page, in order of application.
        next_after: The cursor of the next page (pass it as ``after``), or null on the last page.
    """

    items: list[ApprovalView]
    next_after: int | None


APPLICATION_EXAMPLE = {
    "kind": "substantive",
    "library_name": "Custody images 2020-2025",
    "legal_basis": "Common law policing purposes; PACE s.64A",
    "how_obtained_and_privacy_expectations": "Taken on arrest under PACE; subjects are told",
    "composition_quality_and_suitability": "Frontal custody images, ICAO-like quality",
    "elevated_privacy_or_human_rights": "None beyond the custody setting",
    "necessity_and_proportionality": "Needed to identify suspects of recordable offences",
    "monitoring_and_assurance": "Quarterly review by the Operational Lead",
}
RECORD_EXAMPLE = {
    "rationale": "Necessary and proportionate for identifying suspects",
    "access": {"teams": ["fr-team"], "users": [], "all_rfr_users": False},
    "image_level": 2,
    "conditions": "FR team only; searches logged",
    "purposes": ["a_identify"],
    "review_due": "2026-12-31T17:00:00Z",
    "expires_at": None,
}

Application = Annotated[
    ApplicationBody,
    Body(
        title="Form 1/2 application",
        description="Every part is required; an empty part is refused under L-04 and the refusal recorded.",
        examples=[Example(summary="Form 1 for a custody library", value=APPLICATION_EXAMPLE)],
    ),
]
Approve = Annotated[
    ApproveBody,
    Body(
        title="Approval",
        examples=[
            Example(summary="approval", value={"record": RECORD_EXAMPLE}),
            Example(
                summary="verbal approval in urgency (L-09)",
                value={
                    "record": RECORD_EXAMPLE,
                    "urgency": {"basis": "risk_to_life_or_harm", "rationale": "Missing child at risk"},
                },
            ),
        ],
    ),
]
UrgentApprove = Annotated[
    UrgentApproveBody,
    Body(
        title="Urgent approval by an Inspector (L-10)",
        examples=[
            Example(
                value={
                    "record": RECORD_EXAMPLE,
                    "urgency": {"basis": "opportunity_lost", "rationale": "Suspect leaving the country"},
                }
            )
        ],
    ),
]
Rationale = Annotated[
    RationaleBody, Body(examples=[Example(value={"rationale": "Reasons recorded in full here"})])
]
StopReason = Annotated[ReasonBody, Body(examples=[Example(value={"reason": "Purpose achieved"})])]
Review = Annotated[
    ReviewBody,
    Body(
        examples=[
            Example(
                summary="continue",
                value={
                    "outcome": "continue",
                    "rationale": "Still necessary",
                    "next_review_due": "2027-06-30T17:00:00Z",
                },
            )
        ]
    ),
]
Vary = Annotated[
    VaryBody, Body(examples=[Example(value={"record": RECORD_EXAMPLE, "rationale": "Add purpose (b)"})])
]
ApprovalId = Annotated[UUID, PathParameter(description="the approval's id")]


def _record(body: ApprovalRecordBody | None, field: str) -> ApprovalRecord | None:
    if body is not None:
        plausible(f"{field}.review_due", body.review_due)
        plausible(f"{field}.expires_at", body.expires_at)
    return domain_value(ApprovalRecord, body)


def _approvals(ctx: HttpContext) -> LibraryApprovals:
    return ctx.services.library_approvals


Approvals = NamedDependency[LibraryApprovals]
Caller = NamedDependency[Principal]


@post("/library-approvals", sync_to_thread=True, summary="Apply (Form 1/2)", **allow(*APPLICANTS.roles))
def apply_for_approval(principal: Caller, approvals: Approvals, data: Application) -> ApprovalView:
    """Apply for a substantive (Form 1) or temporary (Form 2) library (L-04)."""
    return approvals.apply(principal.user_id, domain_value(LibraryApplication, data))


@get("/library-approvals", sync_to_thread=True, summary="List approvals", **allow(*APPROVAL_READERS.roles))
def list_approvals(
    principal: Caller,
    approvals: Approvals,
    after: Cursor = 0,
    limit: PageSize = 50,
    status: Annotated[
        ApprovalStatus | None, QueryParameter(description="only approvals with this status")
    ] = None,
) -> ApprovalPage:
    """Approvals in order of application, with their flags (L-06, L-09, L-10) as of now."""
    page = approvals.list(
        principal.user_id, after=after, limit=limit, status=status.value if status else None
    )
    return ApprovalPage(list(page.items), page.next_after)


@get(
    "/library-approvals/flagged", sync_to_thread=True, summary="Flagged approvals", **allow(*REVIEWERS.roles)
)
def flagged_approvals(principal: Caller, approvals: Approvals) -> list[ApprovalView]:
    """Every approval with an L-06 (review overdue), L-09 or L-10 flag: the Operational Lead's worklist."""
    return list(approvals.flagged(principal.user_id))


@get(
    "/library-approvals/{approval_id:uuid}",
    sync_to_thread=True,
    summary="Read",
    **allow(*APPROVAL_READERS.roles),
)
def get_approval(principal: Caller, approvals: Approvals, approval_id: FromPath[ApprovalId]) -> ApprovalView:
    return approvals.get(principal.user_id, approval_id)


@post(
    "/library-approvals/{approval_id:uuid}/approval",
    sync_to_thread=True,
    status_code=200,
    summary="Approve",
    **allow(*DECIDERS.roles),
)
def approve(
    principal: Caller, approvals: Approvals, approval_id: FromPath[ApprovalId], data: Approve
) -> ApprovalView:
    """L-02/L-03 with the L-05 record, by someone other than the applicant (P-12)."""
    return approvals.approve(
        principal.user_id,
        approval_id,
        _record(data.record, "record"),
        urgency=domain_value(Urgency, data.urgency),
    )


@post(
    "/library-approvals/{approval_id:uuid}/urgent-approval",
    sync_to_thread=True,
    status_code=200,
    summary="Approve urgently (Inspector, L-10)",
    **allow(*URGENT_APPROVER.roles),
)
def approve_urgently(
    principal: Caller, approvals: Approvals, approval_id: FromPath[ApprovalId], data: UrgentApprove
) -> ApprovalView:
    """L-10: flagged until a Superintendent or above ratifies, varies or stops it."""
    return approvals.approve_urgently(
        principal.user_id,
        approval_id,
        _record(data.record, "record"),
        domain_value(Urgency, data.urgency),
    )


@post(
    "/library-approvals/{approval_id:uuid}/rejection",
    sync_to_thread=True,
    status_code=200,
    summary="Reject",
    **allow(*DECIDERS.roles),
)
def reject(
    principal: Caller, approvals: Approvals, approval_id: FromPath[ApprovalId], data: Rationale
) -> ApprovalView:
    return approvals.reject(principal.user_id, approval_id, data.rationale)


@post(
    "/library-approvals/{approval_id:uuid}/written-rationale",
    sync_to_thread=True,
    status_code=200,
    summary="Record the written rationale of a verbal approval (L-09)",
    **allow(*DECIDERS.roles),
)
def written_rationale(
    principal: Caller, approvals: Approvals, approval_id: FromPath[ApprovalId], data: Rationale
) -> ApprovalView:
    return approvals.record_written_rationale(principal.user_id, approval_id, data.rationale)


@post(
    "/library-approvals/{approval_id:uuid}/ratification",
    sync_to_thread=True,
    status_code=200,
    summary="Ratify an urgent approval (Superintendent, L-10)",
    **allow(*RATIFIER.roles),
)
def ratify(
    principal: Caller, approvals: Approvals, approval_id: FromPath[ApprovalId], data: Rationale
) -> ApprovalView:
    return approvals.ratify(principal.user_id, approval_id, data.rationale)


@post(
    "/library-approvals/{approval_id:uuid}/reviews",
    sync_to_thread=True,
    status_code=200,
    summary="Review (L-07)",
    **allow(*REVIEWERS.roles),
)
def review(
    principal: Caller, approvals: Approvals, approval_id: FromPath[ApprovalId], data: Review
) -> ApprovalView:
    """By the approving authority or the Operational Lead; sets the next review date (L-06)."""
    return approvals.review(
        principal.user_id,
        approval_id,
        data.outcome,
        data.rationale,
        next_review_due=plausible("next_review_due", data.next_review_due),
        varied_record=_record(data.varied_record, "varied_record"),
    )


@post(
    "/library-approvals/{approval_id:uuid}/variation",
    sync_to_thread=True,
    status_code=200,
    summary="Vary the terms",
    **allow(*DECIDERS.roles),
)
def vary(
    principal: Caller, approvals: Approvals, approval_id: FromPath[ApprovalId], data: Vary
) -> ApprovalView:
    """New terms, e.g. a further purpose (L-08)."""
    return approvals.vary(principal.user_id, approval_id, _record(data.record, "record"), data.rationale)


@post(
    "/library-approvals/{approval_id:uuid}/stop",
    sync_to_thread=True,
    status_code=200,
    summary="Stop",
    **allow(*DECIDERS.roles),
)
def stop(
    principal: Caller, approvals: Approvals, approval_id: FromPath[ApprovalId], data: StopReason
) -> ApprovalView:
    """L-12: unsearchable at once; its data deleted within the configured days."""
    return approvals.stop(principal.user_id, approval_id, data.reason)


@post(
    "/library-approvals/{approval_id:uuid}/expiry",
    sync_to_thread=True,
    status_code=200,
    summary="Record expiry",
    **allow(*EXPIRERS.roles),
)
def expire(principal: Caller, approvals: Approvals, approval_id: FromPath[ApprovalId]) -> ApprovalView:
    """L-12: the approval reached its end date (refused before it)."""
    return approvals.expire(principal.user_id, approval_id)


ROUTES = [
    Router(
        path="/",
        route_handlers=[
            apply_for_approval,
            list_approvals,
            flagged_approvals,
            get_approval,
            approve,
            approve_urgently,
            reject,
            written_rationale,
            ratify,
            review,
            vary,
            stop,
            expire,
        ],
        dependencies={"approvals": use_case(_approvals)},
        tags=["library approvals"],
    )
]
