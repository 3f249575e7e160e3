"""The Unresolved Crime Cache (U-01..U-04): additions with Inspector approval, reviews, removals,
and the potential matches queued when new library material arrives (U-02).

A probe enters the cache (U-01, with an Inspector's approval under P-08) in one of two ways:

- its requester, an RFR User, asks with ``POST /ucc/requests``; an approving officer of
  Inspector rank or above who is not the requester (P-12) approves it
  (``POST /ucc/requests/{probe_id}/approval``: the probe enters the cache) or declines it
  (``POST /ucc/requests/{probe_id}/decline``), each with a rationale;
- an Inspector adds it on their own decision with ``POST /ucc/entries``, which is itself the
  individual approval P-08 asks for; while a request for the probe awaits a decision, the
  Inspector decides that request instead.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import attrs
import msgspec
from litestar import Router, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, PathParameter, QueryParameter

from rfr.application.services.access import Principal
from rfr.application.services.ucc import (
    DECIDERS,
    REMOVERS,
    REQUESTERS,
    REVIEWERS,
    UCC_READERS,
    UccEntries,
    UccEntryView,
    UccRequestView,
)
from rfr.application.services.ucc_screening import UccQueueView, UccScreening
from rfr.domain.forms import ReviewOutcome
from rfr.domain.people import Role
from rfr.domain.search_terms import SearchGround
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.http.resources._workflow import (
    Choices,
    Cursor,
    PageSize,
    RationaleBody,
    Reason,
    ReasonBody,
    Statement,
)

ProbeId = Annotated[UUID, PathParameter(description="the probe's id (an entry is keyed by its probe)")]
Caller = NamedDependency[Principal]
# U-01 with P-08: an Inspector approves an addition; where the policy settings allow it, an RFR User.
ADDERS = (Role.APPROVING_OFFICER, Role.RFR_USER)


class AddBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """U-01: the grounds (8.3) that still apply, and why the probe should stay searchable.

    Attributes:
        probe_id: The probe to keep in the cache; its search found no viable match.
        grounds: The grounds of its Form 3 (policy 8.3) that still apply.
        rationale: Why the probe should be searched again as new library material arrives,
            in the approving officer's words (U-01).
    """

    probe_id: UUID
    grounds: Annotated[list[SearchGround], Choices]
    rationale: Statement


class UccReviewBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """U-03: ``continue`` sets the next review date; ``stop`` removes the entry (U-04).

    Attributes:
        outcome: ``stop`` removes the entry, and its probe's data is deleted in due course
            (U-04); any other outcome keeps it, to be reviewed again after the period its crime
            tier sets.
        reason: Why, in the reviewer's words; recorded (U-03).
    """

    outcome: ReviewOutcome
    reason: Reason


class MatchAdjudicationBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A person's judgement of a potential match the cache found in new library material (U-02).

    Attributes:
        viable: Whether the match is viable, in the adjudicator's judgement.
        rationale: The reasons for the judgement, e.g. the features compared.
        identity_known: Whether the person matched is known (U-01).
    """

    viable: bool
    rationale: Statement
    identity_known: bool | None = None


@attrs.frozen
class UccPage:
    """One page of cache entries; pass ``next_after`` as ``after`` for the next (null: last page).

    Attributes:
        items: The entries on this page, in the order they were added.
        next_after: The cursor of the next page (pass it as ``after``), or null on the last page.
    """

    items: list[UccEntryView]
    next_after: int | None


@attrs.frozen
class UccRequestPage:
    """One page of requests to add a probe to the cache.

    Attributes:
        items: The requests, in the order they were made.
        next_after: The cursor of the next page (``after``); null on the last page.
    """

    items: list[UccRequestView]
    next_after: int | None


def _ucc(ctx: HttpContext) -> UccEntries:
    return ctx.services.ucc


def _screening(ctx: HttpContext) -> UccScreening:
    return ctx.services.ucc_screening


Ucc = NamedDependency[UccEntries]


@post("/ucc/entries", sync_to_thread=True, summary="Add a probe to the UCC (U-01)", **allow(*ADDERS))
def add_entry(
    principal: Caller,
    ucc: Ucc,
    data: Annotated[
        AddBody,
        Body(
            examples=[
                Example(
                    value={
                        "probe_id": "5f0c2a1e-8d4b-4f7a-9a61-3b2d1c0e9f88",
                        "grounds": ["b_offence"],
                        "rationale": "Unidentified; offence under investigation",
                    }
                )
            ]
        ),
    ],
) -> UccEntryView:
    """An Inspector's own addition, itself the approval P-08 asks for: only when no search of the
    probe found a viable match of a known person and a ground still applies (U-01), by an
    Inspector or above who did not submit the probe (P-08, P-12). An RFR User asks instead
    (``POST /ucc/requests``)."""
    return ucc.add(principal.user_id, data.probe_id, data.grounds, data.rationale)


UCC_REQUEST_EXAMPLE = {
    "probe_id": "5f0c2a1e-8d4b-4f7a-9a61-3b2d1c0e9f88",
    "grounds": ["b_offence"],
    "rationale": "Burglar still unidentified; new custody images arrive weekly",
}


@post(
    "/ucc/requests",
    sync_to_thread=True,
    summary="Ask for a probe to be added to the UCC (U-01)",
    **allow(*REQUESTERS.roles),
)
def request_addition(
    principal: Caller,
    ucc: Ucc,
    data: Annotated[AddBody, Body(examples=[Example(value=UCC_REQUEST_EXAMPLE)])],
) -> UccRequestView:
    """By the RFR User who submitted the probe. U-01 is checked now (no viable match of a known
    person in any search of the probe, a Form 3 ground still applies) and again on approval."""
    return ucc.request_addition(principal.user_id, data.probe_id, data.grounds, data.rationale)


@get(
    "/ucc/requests",
    sync_to_thread=True,
    summary="Requests to add probes to the UCC",
    **allow(*UCC_READERS.roles),
)
def list_requests(
    principal: Caller,
    ucc: Ucc,
    after: Cursor = 0,
    limit: PageSize = 50,
    include_decided: Annotated[
        bool, QueryParameter(description="list approved and declined requests too")
    ] = False,
) -> UccRequestPage:
    """Those awaiting an Inspector's decision, unless ``include_decided``."""
    page = ucc.addition_requests(principal.user_id, after=after, limit=limit, include_decided=include_decided)
    return UccRequestPage(list(page.items), page.next_after)


@get(
    "/ucc/requests/{probe_id:uuid}",
    sync_to_thread=True,
    summary="A probe's request to enter the UCC",
    **allow(*UCC_READERS.roles),
)
def get_request(principal: Caller, ucc: Ucc, probe_id: FromPath[ProbeId]) -> UccRequestView:
    """The probe's latest request and the decision on it, if any."""
    request = ucc.addition_request(principal.user_id, probe_id)
    if request is None:
        raise NotFoundException(f"no addition to the cache was ever asked for probe {probe_id}")
    return request


@post(
    "/ucc/requests/{probe_id:uuid}/approval",
    sync_to_thread=True,
    status_code=200,
    summary="Approve a request to add a probe to the UCC (P-08)",
    **allow(*DECIDERS.roles),
)
def approve_request(
    principal: Caller,
    ucc: Ucc,
    probe_id: FromPath[ProbeId],
    data: Annotated[
        RationaleBody,
        Body(examples=[Example(value={"rationale": "Serious offence, offender at large; proportionate"})]),
    ],
) -> UccRequestView:
    """By an approving officer of Inspector rank or above (P-08) who is not the requester (P-12).
    U-01 is checked again; the probe then enters the cache (``GET /ucc/entries/{probe_id}``)."""
    return ucc.approve_addition(principal.user_id, probe_id, data.rationale)


@post(
    "/ucc/requests/{probe_id:uuid}/decline",
    sync_to_thread=True,
    status_code=200,
    summary="Decline a request to add a probe to the UCC (P-08)",
    **allow(*DECIDERS.roles),
)
def decline_request(
    principal: Caller,
    ucc: Ucc,
    probe_id: FromPath[ProbeId],
    data: Annotated[
        RationaleBody,
        Body(examples=[Example(value={"rationale": "Low-value theft; continued retention not justified"})]),
    ],
) -> UccRequestView:
    """By an approving officer of Inspector rank or above (P-08) who is not the requester (P-12),
    with a rationale. The requester may ask again later."""
    return ucc.decline_addition(principal.user_id, probe_id, data.rationale)


@get("/ucc/entries", sync_to_thread=True, summary="List UCC entries", **allow(*UCC_READERS.roles))
def list_entries(
    principal: Caller,
    ucc: Ucc,
    after: Cursor = 0,
    limit: PageSize = 50,
    include_removed: Annotated[bool, QueryParameter(description="list removed entries too")] = False,
) -> UccPage:
    page = ucc.entries(principal.user_id, after=after, limit=limit, include_removed=include_removed)
    return UccPage(list(page.items), page.next_after)


@get(
    "/ucc/entries/overdue",
    sync_to_thread=True,
    summary="Entries overdue for review (U-03)",
    **allow(*UCC_READERS.roles),
)
def overdue_entries(principal: Caller, ucc: Ucc) -> list[UccEntryView]:
    return list(ucc.overdue(principal.user_id))


@get(
    "/ucc/entries/{probe_id:uuid}",
    sync_to_thread=True,
    summary="A UCC entry",
    **allow(*UCC_READERS.roles),
)
def get_entry(principal: Caller, ucc: Ucc, probe_id: FromPath[ProbeId]) -> UccEntryView:
    entry = ucc.get(principal.user_id, probe_id)
    if entry is None:
        raise NotFoundException(f"probe {probe_id} was never in the cache")
    return entry


@post(
    "/ucc/entries/{probe_id:uuid}/reviews",
    sync_to_thread=True,
    status_code=200,
    summary="Review an entry (U-03)",
    **allow(*REVIEWERS.roles),
)
def review_entry(
    principal: Caller,
    ucc: Ucc,
    probe_id: FromPath[ProbeId],
    data: Annotated[
        UccReviewBody,
        Body(
            examples=[Example(value={"outcome": "continue", "reason": "Offence still under investigation"})]
        ),
    ],
) -> UccEntryView:
    return ucc.review(principal.user_id, probe_id, data.outcome, data.reason)


@post(
    "/ucc/entries/{probe_id:uuid}/removal",
    sync_to_thread=True,
    status_code=200,
    summary="Remove an entry (U-04)",
    **allow(*REMOVERS.roles),
)
def remove_entry(
    principal: Caller,
    ucc: Ucc,
    probe_id: FromPath[ProbeId],
    data: Annotated[
        ReasonBody, Body(examples=[Example(value={"reason": "Suspect identified by a witness"})])
    ],
) -> UccEntryView:
    """The purpose was resolved by other means; the probe is deleted within the configured days."""
    return ucc.remove(principal.user_id, probe_id, data.reason)


@get(
    "/ucc/entries/{probe_id:uuid}/matches",
    sync_to_thread=True,
    summary="Matches queued by new material (U-02)",
    **allow(*UCC_READERS.roles),
)
def queued_matches(
    principal: Caller, screening: NamedDependency[UccScreening], probe_id: FromPath[ProbeId]
) -> UccQueueView:
    """Highest score first; only matches in libraries the caller may access (L-13)."""
    return screening.queue_of(principal.user_id, str(probe_id))


@post(
    "/ucc/entries/{probe_id:uuid}/matches/{match_id:str}/adjudication",
    sync_to_thread=True,
    status_code=200,
    summary="Adjudicate a queued match (S-05)",
    **allow(Role.RFR_USER),
)
def adjudicate_match(
    principal: Caller,
    screening: NamedDependency[UccScreening],
    probe_id: FromPath[ProbeId],
    match_id: Annotated[str, PathParameter(description="a queued match's id")],
    data: Annotated[
        MatchAdjudicationBody,
        Body(examples=[Example(value={"viable": False, "rationale": "Different nose and jaw line"})]),
    ],
) -> UccQueueView:
    return screening.adjudicate(
        principal.user_id,
        str(probe_id),
        match_id,
        data.viable,
        data.rationale,
        identity_known=data.identity_known,
    )


ROUTES = [
    Router(
        path="/",
        route_handlers=[
            add_entry,
            request_addition,
            list_requests,
            get_request,
            approve_request,
            decline_request,
            list_entries,
            overdue_entries,
            get_entry,
            review_entry,
            remove_entry,
            queued_matches,
            adjudicate_match,
        ],
        dependencies={"ucc": use_case(_ucc), "screening": use_case(_screening)},
        tags=["unresolved crime cache"],
    )
]
