"""The approving officers' and the SRO's queue (issue 12 item 3): what awaits their decision, each
item with the facts needed to decide and the decision form.

In priority order:

1. Probe endorsements (P-04 under 16, P-06 vulnerability, P-08 a high image level). No query lists
   the probes awaiting an endorsement without reading every probe, and facts that cross
   aggregates are read from projections (ADR 0013), of which none holds them yet: the officer
   opens a probe by the id they were given (as the API's ``GET /probes/{id}/governance``), sees
   what it needs, what it has and why, and endorses each missing kind with a rationale
   (``POST /probes/{id}/endorsements``'s use case).
2. Library approvals awaiting a decision (Form 1 for the SRO, Form 2 for a Superintendent) and
   urgent approvals awaiting ratification: the page of approvals the service lists
   (``LibraryApprovals.list``, one page at a time in application order), those undecided shown;
   each opens on the whole application with the forms to approve with the L-05 record, reject,
   ratify (L-10) or record the written rationale (L-09).
3. Search requests awaiting an Inspector's approval (P-08 a level 4-5 library, P-09 a
   collection): the page of requests the service lists (``SearchRequests.list``, those the
   officer may see, L-13), each opening on its facts with the forms to approve or reject.
4. Requests to add a probe to the unresolved crime cache (U-01, P-08): the page of requests
   awaiting a decision the service lists (``UccEntries.addition_requests``), each opening on the
   request and the probe's tier and level, with the forms to approve or decline.

Every page declares its roles as the API's routes do, and the use cases decide and record as
they do for the API: a Sergeant, the requester (P-12) or the SRO endorsing is refused exactly
as over the API.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Request, Router, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from rfr.application.services.access import Principal
from rfr.application.services.endorsements import ENDORSEMENT_READERS, ProbeEndorsements
from rfr.application.services.library_approvals import (
    APPROVAL_READERS,
    DECIDERS,
    RATIFIER,
    ApprovalView,
    LibraryApprovals,
)
from rfr.application.services.searches import APPROVERS, SEARCH_READERS, SearchRequests, SearchView
from rfr.application.services.ucc import DECIDERS as UCC_DECIDERS
from rfr.application.services.ucc import REVIEWERS as UCC_REVIEWERS
from rfr.application.services.ucc import UCC_READERS, UccEntries
from rfr.domain.forms import AccessRestriction, ApprovalRecord, ReviewOutcome
from rfr.domain.images import ImageLevel
from rfr.domain.people import Role
from rfr.domain.rules_probe import EndorsementKind
from rfr.domain.search_terms import SearchPurpose
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.web.forms import FormData, FormErrors, text, typed_id
from rfr.entrypoints.web.layout import page, see_other
from rfr.entrypoints.web.navigation import NavLink
from rfr.entrypoints.web.security import WEB_PATH

# Who has a queue: approving officers (Inspectors and above) and the SRO. Both read probes'
# governance and library approvals (ENDORSEMENT_READERS, APPROVAL_READERS).
QUEUE_ROLES = (Role.APPROVING_OFFICER, Role.SRO)
assert set(QUEUE_ROLES) <= set(ENDORSEMENT_READERS.roles) & set(APPROVAL_READERS.roles) & set(
    SEARCH_READERS.roles
) & set(UCC_READERS.roles)
QUEUE = allow(*QUEUE_ROLES)
# As the API's POST /probes/{id}/endorsements.
ENDORSE = allow(Role.APPROVING_OFFICER)
Query = Annotated[str, QueryParameter(max_length=200)]
Cursor = Annotated[int, QueryParameter(ge=0)]

KIND_NAMES = {
    EndorsementKind.UNDER_16.value: "P-04: the person shown is perceived to be under 16",
    EndorsementKind.VULNERABILITY.value: "P-06: a vulnerability may affect the algorithm's accuracy",
    EndorsementKind.HIGH_IMAGE_LEVEL.value: "P-08: the probe's image level is high",
}
QUEUE_PATH = f"{WEB_PATH}/queues"
ENDORSEMENT_PATH = f"{WEB_PATH}/queues/endorsement"
APPROVAL_PATH = f"{WEB_PATH}/queues/approval"
SEARCH_PATH = f"{WEB_PATH}/queues/search"
# As the API's POST /searches/{id}/approval and /rejection.
APPROVE_SEARCH = allow(*APPROVERS.roles)
SEARCH_DECISIONS = {"approve": "Approved", "reject": "Rejected"}
UCC_PATH = f"{WEB_PATH}/queues/ucc"
# As the API's POST /ucc/requests/{probe_id}/approval and /decline.
DECIDE_UCC = allow(*UCC_DECIDERS.roles)
UCC_DECISIONS = {"approve": "Approved: the probe enters the cache", "decline": "Declined"}
UCC_ENTRY_PATH = f"{WEB_PATH}/queues/ucc-entry"
# As the API's POST /ucc/entries/{probe_id}/reviews (U-03).
REVIEW_UCC = allow(*UCC_REVIEWERS.roles)
UCC_REVIEW_OUTCOMES = {
    ReviewOutcome.CONTINUE.value: "Continue: keep it, to be reviewed again after its tier's period",
    ReviewOutcome.STOP.value: "Stop: remove it from the cache; its data is then deleted (U-04)",
}
# As the API's approval, rejection, ratification and written rationale of a library approval,
# which admit the same roles; the ranks (SRO for Form 1, Superintendent for Form 2 and to ratify)
# are the domain's to decide.
assert set(DECIDERS.roles) == set(RATIFIER.roles)
DECIDE = allow(*DECIDERS.roles)
DECISIONS = {
    "approve": "Approve",
    "reject": "Reject",
    "ratify": "Ratify the urgent approval",
    "written_rationale": "Record the written rationale",
    "review": "Reviewed",
}
# A review's outcomes on this page; a variation needs the whole new record (the API's ``vary``).
REVIEW_OUTCOMES = {ReviewOutcome.CONTINUE.value: "Continue", ReviewOutcome.STOP.value: "Stop"}
PURPOSE_NAMES = {
    SearchPurpose.IDENTIFY.value: "(a) identify a person",
    SearchPurpose.PLACE_AT_LOCATION.value: "(b) place a person at a location",
    SearchPurpose.ASSOCIATION.value: "(c) show an association",
    SearchPurpose.CONFIRM_CONDUCT.value: "(d) confirm conduct",
}


def _endorsements(ctx: HttpContext) -> ProbeEndorsements:
    return ctx.services.endorsements


def _approvals(ctx: HttpContext) -> LibraryApprovals:
    return ctx.services.library_approvals


def _searches(ctx: HttpContext) -> SearchRequests:
    return ctx.services.searches


def _ucc(ctx: HttpContext) -> UccEntries:
    return ctx.services.ucc


def awaits_decision(view: ApprovalView) -> bool:
    """Applied and undecided, an urgent approval awaiting ratification (L-10) or its written
    rationale (L-09), or an approval in force whose review is overdue (L-06)."""
    return (
        view.status == "applied"
        or view.awaiting_superintendent
        or view.written_rationale_due is not None
        or view.review_overdue
    )


@get("/queues", summary="Your queue", sync_to_thread=True, **QUEUE)
def queue(
    request: Request[Any, Any, Any],
    *,
    principal: NamedDependency[Principal],
    approvals: NamedDependency[LibraryApprovals],
    searches: NamedDependency[SearchRequests],
    ucc: NamedDependency[UccEntries],
    endorsements: NamedDependency[ProbeEndorsements],
    probes_after: Cursor = 0,
    after: Cursor = 0,
    searches_after: Cursor = 0,
    ucc_after: Cursor = 0,
    entries_after: Cursor = 0,
) -> Template:
    """Probes awaiting an endorsement, library approvals awaiting a decision, search requests
    awaiting approval, UCC additions and reviews due (from the services' paged lists)."""
    probes = endorsements.awaiting(principal.user_id, after=probes_after, limit=50)
    listed = approvals.list(principal.user_id, after=after, limit=50)
    waiting = [v for v in listed.items if awaits_decision(v)]
    requests = searches.list(principal.user_id, after=searches_after, limit=50)
    open_requests = [r for r in requests.items if r.status == "open"]
    additions = ucc.addition_requests(principal.user_id, after=ucc_after, limit=50)
    entries = ucc.entries(principal.user_id, after=entries_after, limit=50)
    return page(
        request,
        "queues/index.html",
        title="Your queue",
        errors={},
        values={},
        probes=list(probes.items),
        probes_after=probes_after,
        probes_next_after=probes.next_after,
        approvals=waiting,
        after=after,
        next_after=listed.next_after,
        search_requests=[r for r in open_requests if _approvals_awaited(r)],
        searches_after=searches_after,
        searches_next_after=requests.next_after,
        additions=list(additions.items),
        ucc_after=ucc_after,
        ucc_next_after=additions.next_after,
        reviews_due=[e for e in entries.items if e.review_overdue],
        entries_after=entries_after,
        entries_next_after=entries.next_after,
        can_endorse=Role.APPROVING_OFFICER.value in principal.roles,
        approvals_skipped=False,
    )


def _approvals_awaited(view: SearchView) -> set[str]:
    """The rules under which the request itself still waits for an Inspector's approval."""
    return set(view.required_approvals) if view.approval is None else set()


def _endorsements_awaited(view: SearchView) -> list[str]:
    """What else the request waits for: its probe's missing endorsements (P-04, P-06, P-08). A
    missing P-08 endorsement is not told apart from a P-08 approval the request awaits too."""
    return sorted(set(view.awaiting) - _approvals_awaited(view))


def _probe_id(value: str, errors: FormErrors) -> UUID | None:
    return typed_id(value, "probe", errors, label="probe")


def _endorsement_page(
    request: Request[Any, Any, Any],
    principal: Principal,
    endorsements: ProbeEndorsements,
    probe_id: UUID,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    done: str = "",
) -> Template:
    view = endorsements.get(principal.user_id, probe_id)
    return page(
        request,
        "queues/endorsement.html",
        title=f"Endorsements of probe {probe_id}",
        status=status,
        probe=view,
        kind_names=KIND_NAMES,
        errors=errors or {},
        values=values or {},
        done=done if done in KIND_NAMES else "",
        can_endorse=Role.APPROVING_OFFICER.value in principal.roles,
        is_requester=view.requester_id == principal.user_id,
    )


@get("/queues/endorsement", summary="A probe's endorsements", sync_to_thread=True, **QUEUE)
def endorsement(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    endorsements: NamedDependency[ProbeEndorsements],
    *,
    probe: Query = "",
    done: Query = "",
) -> Template:
    """The facts an Inspector needs to endorse a probe, what it needs and has, and the forms."""
    errors = FormErrors()
    probe_id = _probe_id(probe, errors)
    if errors or probe_id is None:
        return _queue_with_errors(request, principal, errors, {"probe": probe})
    return _endorsement_page(request, principal, endorsements, probe_id, done=done)


@post("/queues/endorsement", summary="Endorse a probe", sync_to_thread=True, **ENDORSE)
def endorse(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    endorsements: NamedDependency[ProbeEndorsements],
    data: FormData,
) -> Template | Redirect:
    """As ``POST /probes/{id}/endorsements``: by an Inspector or above, not the requester (P-12)."""
    errors = FormErrors()
    probe_id = _probe_id(data.get("probe", ""), errors)
    kind_value = (data.get("kind") or "").strip()
    try:
        kind = EndorsementKind(kind_value)
    except ValueError:
        kind = None
        errors.add(f"rationale-{kind_value or 'none'}", "Choose the endorsement: P-04, P-06 or P-08.")
    rationale = text(
        data.get("rationale"), f"rationale-{kind_value}", errors, label="why you endorse the search"
    )
    if probe_id is None:
        return _queue_with_errors(request, principal, errors, {"probe": data.get("probe", "")})
    if errors or kind is None:
        return _endorsement_page(
            request,
            principal,
            endorsements,
            probe_id,
            status=400,
            errors=errors.by_field,
            values={f"rationale-{kind_value}": data.get("rationale", "")},
        )
    endorsements.endorse(principal.user_id, probe_id, kind, rationale)
    return see_other(f"{ENDORSEMENT_PATH}?{urlencode({'probe': str(probe_id), 'done': kind.value})}")


def _approval_id(value: str, errors: FormErrors) -> UUID | None:
    return typed_id(value, "approval", errors, label="approval")


def _approval_page(
    request: Request[Any, Any, Any],
    principal: Principal,
    approvals: LibraryApprovals,
    approval_id: UUID,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    done: str = "",
) -> Template:
    view = approvals.get(principal.user_id, approval_id)
    return page(
        request,
        "queues/approval.html",
        title=f"Library approval {approval_id}",
        status=status,
        approval=view,
        errors=errors or {},
        values=values or {},
        done=DECISIONS.get(done, ""),
        purposes=PURPOSE_NAMES,
        review_outcomes=REVIEW_OUTCOMES,
        levels=[int(level) for level in ImageLevel],
        is_applicant=view.applicant_id == principal.user_id,
    )


def _names(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").replace("\n", ",").split(",") if part.strip()]


def _day(value: str | None, field: str, errors: FormErrors, *, required: bool) -> datetime | None:
    cleaned = (value or "").strip()
    if not cleaned:
        if required:
            errors.add(field, "Enter a date.")
        return None
    try:
        day = datetime.strptime(cleaned, "%Y-%m-%d").date()
    except ValueError:
        errors.add(field, "Enter a date such as 2027-03-31.")
        return None
    if day.year > 2999:
        errors.add(field, "Enter a date before the year 3000.")
        return None
    return datetime.combine(day, time(23, 59), tzinfo=UTC)


def _record(data: dict[str, str], errors: FormErrors) -> ApprovalRecord | None:
    """The L-05 record as the approve form states it; the domain judges its completeness."""
    rationale = text(data.get("rationale"), "approve-rationale", errors, label="why you approve")
    conditions = text(data.get("conditions"), "conditions", errors, label="the conditions")
    try:
        level = ImageLevel(int(data.get("image_level") or ""))
    except ValueError:
        level = None
        errors.add("image_level", "Choose the most intrusive image level approved.")
    purposes = [p for p in SearchPurpose if data.get(f"purpose-{p.value}")]
    if not purposes:
        errors.add(f"purpose-{SearchPurpose.IDENTIFY.value}", "Choose at least one purpose.")
    teams, users = _names(data.get("teams")), _names(data.get("users"))
    everyone = bool(data.get("all_rfr_users"))
    if not (teams or users or everyone):
        errors.add("teams", "Say who may search the library: teams, users, or every RFR user (L-13).")
    review_due = _day(data.get("review_due"), "review_due", errors, required=True)
    expires_at = _day(data.get("expires_at"), "expires_at", errors, required=False)
    if errors or level is None or review_due is None:
        return None
    return ApprovalRecord(
        rationale=rationale,
        access=AccessRestriction(teams=teams, users=users, all_rfr_users=everyone),
        image_level=level,
        conditions=conditions,
        purposes=purposes,
        review_due=review_due,
        expires_at=expires_at,
    )


@get("/queues/approval", summary="A library approval awaiting a decision", sync_to_thread=True, **QUEUE)
def approval(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    approvals: NamedDependency[LibraryApprovals],
    *,
    approval: Query = "",
    done: Query = "",
) -> Template:
    """The application (Form 1/2) and the approval's state, with the decisions it awaits."""
    errors = FormErrors()
    approval_id = _approval_id(approval, errors)
    if errors or approval_id is None:
        return _queue_with_errors(request, principal, errors, {"approval": approval})
    return _approval_page(request, principal, approvals, approval_id, done=done)


@post("/queues/approval", summary="Decide on a library approval", sync_to_thread=True, **DECIDE)
def decide_approval(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    approvals: NamedDependency[LibraryApprovals],
    data: FormData,
) -> Template | Redirect:
    """As the API's ``/library-approvals/{id}/approval``, ``/rejection``, ``/ratification`` and
    ``/written-rationale``: the same use cases decide (L-02, L-03, L-05, L-09, L-10, P-12)."""
    errors = FormErrors()
    approval_id = _approval_id(data.get("approval", ""), errors)
    decision = (data.get("decision") or "").strip()
    if approval_id is None:
        return _queue_with_errors(request, principal, errors, {"approval": data.get("approval", "")})
    if decision not in DECISIONS:
        errors.add("decision", "Choose a decision.")
    record = _record(data, errors) if decision == "approve" else None
    rationale = ""
    if decision in ("reject", "ratify", "written_rationale", "review"):
        rationale = text(data.get("rationale"), f"{decision}-rationale", errors, label="your reasons")
    outcome, next_review = None, None
    if decision == "review":
        if data.get("outcome") in REVIEW_OUTCOMES:
            outcome = ReviewOutcome(data["outcome"])
        else:
            errors.add("outcome-continue", "Choose to continue or stop the approval.")
        next_review = _day(data.get("next_review_due"), "next_review_due", errors, required=False)
    if errors:
        values = {k: v for k, v in data.items() if k != "csrf_token"}
        if decision != "approve":
            values[f"{decision}-rationale"] = data.get("rationale", "")
        else:
            values["approve-rationale"] = data.get("rationale", "")
        return _approval_page(
            request, principal, approvals, approval_id, status=400, errors=errors.by_field, values=values
        )
    if record is not None:
        approvals.approve(principal.user_id, approval_id, record)
    elif decision == "reject":
        approvals.reject(principal.user_id, approval_id, rationale)
    elif decision == "ratify":
        approvals.ratify(principal.user_id, approval_id, rationale)
    elif decision == "review" and outcome is not None:
        approvals.review(principal.user_id, approval_id, outcome, rationale, next_review_due=next_review)
    else:
        approvals.record_written_rationale(principal.user_id, approval_id, rationale)
    return see_other(f"{APPROVAL_PATH}?{urlencode({'approval': str(approval_id), 'done': decision})}")


def _queue_with_errors(
    request: Request[Any, Any, Any], principal: Principal, errors: FormErrors, values: dict[str, str]
) -> Template:
    return page(
        request,
        "queues/index.html",
        title="Your queue",
        status=400,
        errors=errors.by_field,
        values=values,
        probes=[],
        probes_after=0,
        probes_next_after=None,
        approvals=[],
        after=0,
        next_after=None,
        search_requests=[],
        searches_after=0,
        searches_next_after=None,
        additions=[],
        ucc_after=0,
        ucc_next_after=None,
        reviews_due=[],
        entries_after=0,
        entries_next_after=None,
        can_endorse=Role.APPROVING_OFFICER.value in principal.roles,
        approvals_skipped=True,
    )


def _request_id(value: str, errors: FormErrors) -> UUID | None:
    return typed_id(value, "search", errors, label="search request")


def _search_page(
    request: Request[Any, Any, Any],
    principal: Principal,
    searches: SearchRequests,
    request_id: UUID,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    done: str = "",
) -> Template:
    view = searches.get(principal.user_id, request_id)
    return page(
        request,
        "queues/search.html",
        title=f"Search request {request_id}",
        status=status,
        search=view,
        errors=errors or {},
        values=values or {},
        done=SEARCH_DECISIONS.get(done, ""),
        endorsements_awaited=_endorsements_awaited(view),
        can_approve=Role.APPROVING_OFFICER.value in principal.roles,
        is_requester=view.requester_id == principal.user_id,
    )


@get("/queues/search", summary="A search request awaiting approval", sync_to_thread=True, **QUEUE)
def search_request(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    searches: NamedDependency[SearchRequests],
    *,
    search: Query = "",
    done: Query = "",
) -> Template:
    """The request's probe level, libraries and their levels, what it awaits, and the decision."""
    errors = FormErrors()
    found = _request_id(search, errors)
    if errors or found is None:
        return _queue_with_errors(request, principal, errors, {"search": search})
    return _search_page(request, principal, searches, found, done=done)


@post("/queues/search", summary="Approve or reject a search request", sync_to_thread=True, **APPROVE_SEARCH)
def decide_search(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    searches: NamedDependency[SearchRequests],
    data: FormData,
) -> Template | Redirect:
    """As ``POST /searches/{id}/approval`` and ``/rejection``: an Inspector or above who is not
    the requester (P-08, P-09, P-12)."""
    errors = FormErrors()
    found = _request_id(data.get("search", ""), errors)
    if found is None:
        return _queue_with_errors(request, principal, errors, {"search": data.get("search", "")})
    decision = (data.get("decision") or "").strip()
    if decision not in SEARCH_DECISIONS:
        errors.add("search-approve-rationale", "Choose to approve or reject.")
        decision = "approve"
    field = f"search-{decision}-rationale"
    rationale = text(data.get("rationale"), field, errors, label="your reasons")
    if errors:
        values = {field: data.get("rationale", "")}
        return _search_page(
            request, principal, searches, found, status=400, errors=errors.by_field, values=values
        )
    if decision == "approve":
        searches.approve(principal.user_id, found, rationale)
    else:
        searches.reject(principal.user_id, found, rationale)
    return see_other(f"{SEARCH_PATH}?{urlencode({'search': str(found), 'done': decision})}")


def _ucc_page(
    request: Request[Any, Any, Any],
    principal: Principal,
    ucc: UccEntries,
    endorsements: ProbeEndorsements,
    probe_id: UUID,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    done: str = "",
) -> Template:
    asked = ucc.addition_request(principal.user_id, probe_id)
    if asked is None:
        raise NotFoundException(f"no addition to the cache was ever asked for probe {probe_id}")
    return page(
        request,
        "queues/ucc.html",
        title=f"Adding probe {probe_id} to the cache",
        status=status,
        asked=asked,
        probe=endorsements.get(principal.user_id, probe_id),
        errors=errors or {},
        values=values or {},
        done=UCC_DECISIONS.get(done, ""),
        can_decide=Role.APPROVING_OFFICER.value in principal.roles,
        is_requester=asked.requested_by == principal.user_id,
    )


@get("/queues/ucc", summary="A request to add a probe to the cache", sync_to_thread=True, **QUEUE)
def ucc_request(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    ucc: NamedDependency[UccEntries],
    endorsements: NamedDependency[ProbeEndorsements],
    *,
    probe: Query = "",
    done: Query = "",
) -> Template:
    """The request (U-01: grounds, rationale), the probe's tier and level, and the decision."""
    errors = FormErrors()
    probe_id = _probe_id(probe, errors)
    if errors or probe_id is None:
        return _queue_with_errors(request, principal, errors, {"probe": probe})
    return _ucc_page(request, principal, ucc, endorsements, probe_id, done=done)


@post(
    "/queues/ucc", summary="Decide a request to add a probe to the cache", sync_to_thread=True, **DECIDE_UCC
)
def decide_ucc(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    ucc: NamedDependency[UccEntries],
    endorsements: NamedDependency[ProbeEndorsements],
    data: FormData,
) -> Template | Redirect:
    """As ``POST /ucc/requests/{probe_id}/approval`` and ``/decline``: an Inspector or above who
    is not the requester (P-08, P-12); U-01 is checked again on approval."""
    errors = FormErrors()
    probe_id = _probe_id(data.get("probe", ""), errors)
    if probe_id is None:
        return _queue_with_errors(request, principal, errors, {"probe": data.get("probe", "")})
    decision = (data.get("decision") or "").strip()
    if decision not in UCC_DECISIONS:
        errors.add("ucc-approve-rationale", "Choose to approve or decline.")
        decision = "approve"
    field = f"ucc-{decision}-rationale"
    rationale = text(data.get("rationale"), field, errors, label="your reasons")
    if errors:
        values = {field: data.get("rationale", "")}
        return _ucc_page(
            request, principal, ucc, endorsements, probe_id, status=400, errors=errors.by_field, values=values
        )
    if decision == "approve":
        ucc.approve_addition(principal.user_id, probe_id, rationale)
    else:
        ucc.decline_addition(principal.user_id, probe_id, rationale)
    return see_other(f"{UCC_PATH}?{urlencode({'probe': str(probe_id), 'done': decision})}")


def _ucc_entry_page(
    request: Request[Any, Any, Any],
    principal: Principal,
    ucc: UccEntries,
    probe_id: UUID,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    done: str = "",
) -> Template:
    entry = ucc.get(principal.user_id, probe_id)
    if entry is None:
        raise NotFoundException(f"probe {probe_id} was never in the cache")
    return page(
        request,
        "queues/ucc_entry.html",
        title=f"Cache entry of probe {probe_id}",
        status=status,
        entry=entry,
        outcomes=UCC_REVIEW_OUTCOMES,
        errors=errors or {},
        values=values or {},
        done=UCC_REVIEW_OUTCOMES.get(done, "").partition(":")[0],
        can_review=bool({r.value for r in UCC_REVIEWERS.roles} & set(principal.roles)),
    )


@get("/queues/ucc-entry", summary="A cache entry and its review", sync_to_thread=True, **QUEUE)
def ucc_entry(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    ucc: NamedDependency[UccEntries],
    *,
    probe: Query = "",
    done: Query = "",
) -> Template:
    """The entry (U-01..U-04): when added, by whom approved, its tier and review date, the review."""
    errors = FormErrors()
    probe_id = _probe_id(probe, errors)
    if errors or probe_id is None:
        return _queue_with_errors(request, principal, errors, {"probe": probe})
    return _ucc_entry_page(request, principal, ucc, probe_id, done=done)


@post("/queues/ucc-entry", summary="Review a cache entry", sync_to_thread=True, **REVIEW_UCC)
def review_ucc_entry(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    ucc: NamedDependency[UccEntries],
    data: FormData,
) -> Template | Redirect:
    """As ``POST /ucc/entries/{probe_id}/reviews`` (U-03): stop removes the entry (U-04)."""
    errors = FormErrors()
    probe_id = _probe_id(data.get("probe", ""), errors)
    if probe_id is None:
        return _queue_with_errors(request, principal, errors, {"probe": data.get("probe", "")})
    outcome = None
    if data.get("outcome") in UCC_REVIEW_OUTCOMES:
        outcome = ReviewOutcome(data["outcome"])
    else:
        errors.add("ucc-outcome-continue", "Choose to continue or stop.")
    reason = text(data.get("reason"), "ucc-review-reason", errors, label="why")
    if errors or outcome is None:
        values = {"outcome": data.get("outcome", ""), "ucc-review-reason": data.get("reason", "")}
        return _ucc_entry_page(
            request, principal, ucc, probe_id, status=400, errors=errors.by_field, values=values
        )
    ucc.review(principal.user_id, probe_id, outcome, reason)
    return see_other(f"{UCC_ENTRY_PATH}?{urlencode({'probe': str(probe_id), 'done': outcome.value})}")


ROUTES = [
    Router(
        path="/",
        route_handlers=[
            queue,
            endorsement,
            endorse,
            approval,
            decide_approval,
            search_request,
            decide_search,
            ucc_request,
            decide_ucc,
            ucc_entry,
            review_ucc_entry,
        ],
        dependencies={
            "endorsements": use_case(_endorsements),
            "approvals": use_case(_approvals),
            "searches": use_case(_searches),
            "ucc": use_case(_ucc),
        },
    )
]
NAV = [NavLink(queue, "Your queue", order=20)]
