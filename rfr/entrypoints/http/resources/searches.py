"""Search requests (S-01..S-07): open, approve, run library by library, adjudicate, report, close.

Searches run one library per call, in progressive order (S-02): ``POST .../runs`` with no
library runs the next one (lowest level first), or names one, which the domain refuses if it
would skip the order. Candidates are listed by rank or by score; the subject reference and
the thumbnail are given only to users within the candidate's library access (L-13).
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote
from uuid import UUID

import attrs
import msgspec
from litestar import Response, Router, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, PathParameter, QueryParameter

from rfr.application.services.access import Principal
from rfr.application.services.endorsements import ProbeEndorsements
from rfr.application.services.search_execution import (
    CANDIDATE_READERS,
    SEARCHERS,
    LibrarySearchResult,
    SearchExecution,
)
from rfr.application.services.searches import (
    APPROVERS,
    SEARCH_READERS,
    USERS,
    AdjudicationView,
    LibrarySelection,
    MatchReportView,
    SearchRequests,
    SearchView,
)
from rfr.domain.forms import Dissemination
from rfr.domain.images import ImageLevel
from rfr.domain.search_terms import Urgency
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.http.resources._match_report_page import (
    CONTENT_SECURITY_POLICY,
    MatchReportDocument,
    render,
)
from rfr.entrypoints.http.resources._workflow import (
    Cursor,
    PageSize,
    RationaleBody,
    ReasonBody,
    Statement,
    UrgencyBody,
    domain_value,
)

RequestId = Annotated[UUID, PathParameter(description="the search request's id")]
Caller = NamedDependency[Principal]
CandidateId = Annotated[str, msgspec.Meta(min_length=3, max_length=200, description="<library_id>#<rank>")]
JPEG = "image/jpeg"
HTML = "text/html"


class LibrarySelectionBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A library to search and why it is relevant (S-03); ``raised_level`` for this search (L-11).

    Attributes:
        library_id: The library's id; the requester must be within its access (L-13).
        relevance: Why the library is relevant to this search (S-03).
        raised_level: A level above the library's approved level for this search only (L-11),
            which then needs the approvals of that level.
    """

    library_id: UUID
    relevance: Statement
    raised_level: ImageLevel | None = None


class OpenSearchBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A search request for a probe ready for search, naming the libraries to search (S-01, S-03).

    Attributes:
        probe_id: The probe to search with: the requester's, with faces selected and templated.
        libraries: The libraries to search, each with its relevance; searched in progressive
            order, lowest level first (S-02).
        urgency: The request's own urgency; omitted: the urgency on the probe's Form 3, if any.
    """

    probe_id: UUID
    libraries: Annotated[list[LibrarySelectionBody], msgspec.Meta(min_length=1, max_length=50)]
    urgency: UrgencyBody | None = None


class RunBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Omit ``library_id`` to search the next library in progressive order (S-02).

    Attributes:
        library_id: The requested library to search now; refused if it would skip the
            progressive order (S-02). Omitted: the next one.
        top_k: How many nearest candidates to keep (default: the server's setting).
    """

    library_id: UUID | None = None
    top_k: Annotated[int, msgspec.Meta(ge=1, le=500)] | None = None


class AdjudicationBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """S-05: a person's judgement; only this makes a viable match.

    Attributes:
        candidate_id: The candidate judged.
        viable: Whether the candidate is a viable match, in the adjudicator's judgement.
        rationale: The reasons for the judgement, e.g. the features compared (S-05).
        identity_known: Whether the person matched is known; a viable match of an unknown
            person leaves the purpose unmet (U-01).
    """

    candidate_id: CandidateId
    viable: bool
    rationale: Statement
    identity_known: bool | None = None


class ReportBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The viable match to issue a match report for (S-06).

    Attributes:
        candidate_id: The candidate, adjudicated viable.
    """

    candidate_id: CandidateId


class DisseminationBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """S-07: who receives what, on which legal basis, and that they apply equivalent safeguards.

    Attributes:
        report_id: The match report shared.
        recipient: Who receives it (person and organisation).
        legal_basis: The legal basis for sharing it.
        safeguards_acknowledged: That the recipient applies safeguards equivalent to this
            policy's; required to be true (S-07).
        items: What is shared; templates never are.
    """

    report_id: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    recipient: Statement
    legal_basis: Statement
    safeguards_acknowledged: bool
    items: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=1, max_length=100)]], msgspec.Meta(max_length=20)
    ] = msgspec.field(default_factory=lambda: ["match_report"])


@attrs.frozen
class CandidateListing:
    """A potential match (S-04). ``subject`` and ``thumbnail_url`` only for users the library's
    approval allows (L-13); null otherwise.

    Attributes:
        candidate_id: The candidate's id, ``<library_id>#<rank>``.
        rank: Its rank within its library's search, 1 the most similar.
        score: Its similarity score, from 0 to 1 (0.5 at the algorithm's threshold).
        library_id: The library it was found in.
        algorithm_id: The algorithm that found it.
        image_id: The library image it is.
        adjudication: Its adjudication (S-05), or null while not adjudicated.
        subject: The reference of the person shown, as enrolled, for users within the
            library's access (L-13); else null.
        thumbnail_url: Where to fetch its thumbnail, for users within the library's access
            (L-13); else null.
    """

    candidate_id: str
    rank: int
    score: float
    library_id: str
    algorithm_id: str
    image_id: str
    adjudication: AdjudicationView | None
    subject: str | None
    thumbnail_url: str | None


@attrs.frozen
class CandidateList:
    """The potential matches of a search request, in the order asked for (S-04).

    Attributes:
        request_id: The search request.
        order: ``rank`` (by rank within each library, libraries in search order) or ``score``
            (highest first).
        candidates: The candidates, in that order.
    """

    request_id: str
    order: str
    candidates: tuple[CandidateListing, ...]


@attrs.frozen
class SearchPage:
    """One page of search requests; pass ``next_after`` as ``after`` for the next (null: last page).

    Attributes:
        items: The requests on this page, oldest first.
        next_after: The cursor of the next page (pass it as ``after``), or null on the last page.
    """

    items: list[SearchView]
    next_after: int | None


def _searches(ctx: HttpContext) -> SearchRequests:
    return ctx.services.searches


def _execution(ctx: HttpContext) -> SearchExecution:
    return ctx.services.search_execution


def _endorsements(ctx: HttpContext) -> ProbeEndorsements:
    return ctx.services.endorsements


Searches = NamedDependency[SearchRequests]
Execution = NamedDependency[SearchExecution]


@post("/searches", sync_to_thread=True, summary="Open a search request", **allow(*USERS.roles))
def open_search(
    principal: Caller,
    searches: Searches,
    data: Annotated[
        OpenSearchBody,
        Body(
            description="Each library must pass L-01, L-06, L-08 and L-13 for the requester now.",
            examples=[
                Example(
                    value={
                        "probe_id": "5f0c2a1e-8d4b-4f7a-9a61-3b2d1c0e9f88",
                        "libraries": [
                            {
                                "library_id": "0b0d5d52-4e2b-4c1f-9a5e-9a3c1e0f7a11",
                                "relevance": "The suspect was arrested in the area before",
                            }
                        ],
                    }
                )
            ],
        ),
    ],
) -> SearchView:
    selections = [
        LibrarySelection(str(lib.library_id), lib.relevance, lib.raised_level) for lib in data.libraries
    ]
    return searches.open(
        principal.user_id, data.probe_id, selections, urgency=domain_value(Urgency, data.urgency)
    )


@get("/searches", sync_to_thread=True, summary="List search requests", **allow(*SEARCH_READERS.roles))
def list_searches(
    principal: Caller,
    searches: Searches,
    after: Cursor = 0,
    limit: PageSize = 50,
) -> SearchPage:
    """Requests in opening order; those the caller may not see (L-13) are left out of the page."""
    page = searches.list(principal.user_id, after=after, limit=limit)
    return SearchPage(list(page.items), page.next_after)


Order = Annotated[
    Literal["rank", "score"],
    QueryParameter(description="candidates by rank (1 = most similar) or by score, descending (S-04)"),
]


@get(
    "/searches/{request_id:uuid}",
    sync_to_thread=True,
    summary="Read a search request",
    **allow(*SEARCH_READERS.roles),
)
def get_search(
    principal: Caller, searches: Searches, request_id: FromPath[RequestId], order: Order = "rank"
) -> SearchView:
    return searches.get(principal.user_id, request_id, order=order)


@post(
    "/searches/{request_id:uuid}/approval",
    sync_to_thread=True,
    status_code=200,
    summary="Approve (P-08, P-09)",
    **allow(*APPROVERS.roles),
)
def approve_search(
    principal: Caller,
    searches: Searches,
    request_id: FromPath[RequestId],
    data: Annotated[
        RationaleBody, Body(examples=[Example(value={"rationale": "Level 4 justified: risk to life"})])
    ],
) -> SearchView:
    """By an Inspector or above who is not the requester (P-12)."""
    return searches.approve(principal.user_id, request_id, data.rationale)


@post(
    "/searches/{request_id:uuid}/rejection",
    sync_to_thread=True,
    status_code=200,
    summary="Reject",
    **allow(*APPROVERS.roles),
)
def reject_search(
    principal: Caller,
    searches: Searches,
    request_id: FromPath[RequestId],
    data: Annotated[RationaleBody, Body(examples=[Example(value={"rationale": "Not proportionate"})])],
) -> SearchView:
    return searches.reject(principal.user_id, request_id, data.rationale)


@post(
    "/searches/{request_id:uuid}/runs",
    sync_to_thread=True,
    status_code=200,
    summary="Search one library (progressive order)",
    **allow(*SEARCHERS.roles),
)
def run_search(
    principal: Caller,
    execution: Execution,
    request_id: FromPath[RequestId],
    data: Annotated[
        RunBody | None,
        Body(
            description="Empty (or no body): the next library in progressive order.",
            examples=[
                Example(summary="the next library", value={}),
                Example(
                    summary="a named library", value={"library_id": "0b0d5d52-4e2b-4c1f-9a5e-9a3c1e0f7a11"}
                ),
            ],
        ),
    ] = None,
) -> LibrarySearchResult:
    """Every rule is checked again now (approvals, order S-02, L-13, P-10, T-02); a refusal is
    recorded. 409 when every library of the request has been searched."""
    body = data or RunBody()
    if body.library_id is not None:
        return execution.search_library(principal.user_id, request_id, str(body.library_id), top_k=body.top_k)
    result = execution.search_next(principal.user_id, request_id, top_k=body.top_k)
    if result is None:
        raise ClientException("every library of this request has been searched", status_code=409)
    return result


@get(
    "/searches/{request_id:uuid}/candidates",
    sync_to_thread=True,
    summary="Potential matches",
    **allow(*CANDIDATE_READERS.roles),
)
def list_candidates(
    principal: Caller,
    searches: Searches,
    execution: Execution,
    request_id: FromPath[RequestId],
    order: Order = "rank",
) -> CandidateList:
    view = searches.get(principal.user_id, request_id, order=order)
    entitled = {c.candidate_id: c for c in execution.candidates(principal.user_id, request_id)}
    listed = []
    for c in view.candidates:
        found = entitled.get(c.candidate_id)
        url = (
            f"/searches/{request_id}/candidates/{quote(c.candidate_id, safe='')}/thumbnail"
            if found is not None
            else None
        )
        listed.append(
            CandidateListing(
                c.candidate_id,
                c.rank,
                c.score,
                c.library_id,
                c.algorithm_id,
                c.image_id,
                c.adjudication,
                found.subject if found is not None else None,
                url,
            )
        )
    return CandidateList(str(request_id), order, tuple(listed))


@get(
    "/searches/{request_id:uuid}/candidates/{candidate_id:str}/thumbnail",
    sync_to_thread=True,
    media_type=JPEG,
    summary="Thumbnail of a candidate (L-13)",
    **allow(*CANDIDATE_READERS.roles),
)
def candidate_thumbnail(
    principal: Caller,
    execution: Execution,
    request_id: FromPath[RequestId],
    candidate_id: Annotated[str, PathParameter(description="<library_id>#<rank>, '#' sent as %23")],
) -> Response[bytes]:
    """JPEG of the candidate's face, for users within the library's access restrictions only
    (others: 403 naming L-13, recorded)."""
    jpeg = execution.candidate_thumbnail(principal.user_id, request_id, candidate_id)
    return Response(jpeg, media_type=JPEG, headers={"Cache-Control": "no-store"})


@post(
    "/searches/{request_id:uuid}/adjudications",
    sync_to_thread=True,
    status_code=200,
    summary="Adjudicate a potential match (S-05)",
    **allow(*USERS.roles),
)
def adjudicate(
    principal: Caller,
    searches: Searches,
    request_id: FromPath[RequestId],
    data: Annotated[
        AdjudicationBody,
        Body(
            examples=[
                Example(
                    value={
                        "candidate_id": "0b0d5d52-4e2b-4c1f-9a5e-9a3c1e0f7a11#1",
                        "viable": True,
                        "rationale": "Same ear shape, scar above the left eyebrow",
                        "identity_known": True,
                    }
                )
            ]
        ),
    ],
) -> SearchView:
    return searches.adjudicate(
        principal.user_id,
        request_id,
        data.candidate_id,
        data.viable,
        data.rationale,
        identity_known=data.identity_known,
    )


@post(
    "/searches/{request_id:uuid}/reports",
    sync_to_thread=True,
    summary="Issue a match report (S-06)",
    **allow(*USERS.roles),
)
def issue_report(
    principal: Caller,
    searches: Searches,
    request_id: FromPath[RequestId],
    data: Annotated[
        ReportBody, Body(examples=[Example(value={"candidate_id": "0b0d5d52-4e2b-4c1f-9a5e-9a3c1e0f7a11#1"})])
    ],
) -> MatchReportView:
    """Of a candidate adjudicated viable; carries the 8.27 caveat verbatim and the performance link."""
    return searches.issue_match_report(principal.user_id, request_id, data.candidate_id)


@get(
    "/searches/{request_id:uuid}/reports/{report_id:str}",
    sync_to_thread=True,
    summary="A match report (JSON)",
    **allow(*SEARCH_READERS.roles),
)
def get_report(
    principal: Caller,
    searches: Searches,
    endorsements: NamedDependency[ProbeEndorsements],
    request_id: FromPath[RequestId],
    report_id: Annotated[str, PathParameter(description="the match report's id")],
) -> MatchReportDocument:
    return _report(principal, searches, endorsements, request_id, report_id)


@get(
    "/searches/{request_id:uuid}/reports/{report_id:str}/printable",
    sync_to_thread=True,
    media_type=HTML,
    summary="A match report as a printable page",
    **allow(*SEARCH_READERS.roles),
)
def printable_report(
    principal: Caller,
    searches: Searches,
    endorsements: NamedDependency[ProbeEndorsements],
    request_id: FromPath[RequestId],
    report_id: Annotated[str, PathParameter(description="the match report's id")],
) -> Response[str]:
    """A self-contained HTML page (no script, nothing loaded) to print or save to the case."""
    document = _report(principal, searches, endorsements, request_id, report_id)
    return Response(
        render(document),
        media_type=f"{HTML}; charset=utf-8",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store"},
    )


@post(
    "/searches/{request_id:uuid}/disseminations",
    sync_to_thread=True,
    summary="Record a dissemination (S-07)",
    **allow(*USERS.roles),
)
def disseminate(
    principal: Caller,
    searches: Searches,
    request_id: FromPath[RequestId],
    data: Annotated[
        DisseminationBody,
        Body(
            examples=[
                Example(
                    value={
                        "report_id": "c7d0f0f4-2b7e-4f57-8a3e-2f5d9e6b1c20",
                        "recipient": "DC Smith, Burglary Squad",
                        "legal_basis": "Common law policing purpose; DPA 2018 s.35",
                        "safeguards_acknowledged": True,
                        "items": ["match_report"],
                    }
                )
            ]
        ),
    ],
) -> SearchView:
    """Templates are never disseminated (refused under S-07)."""
    dissemination = Dissemination(
        data.recipient, data.legal_basis, data.safeguards_acknowledged, tuple(data.items)
    )
    return searches.record_dissemination(principal.user_id, request_id, data.report_id, dissemination)


@post(
    "/searches/{request_id:uuid}/close",
    sync_to_thread=True,
    status_code=200,
    summary="Close",
    **allow(*USERS.roles),
)
def close_search(
    principal: Caller,
    searches: Searches,
    request_id: FromPath[RequestId],
    data: Annotated[ReasonBody, Body(examples=[Example(value={"reason": "Suspect charged"})])],
) -> SearchView:
    return searches.close(principal.user_id, request_id, data.reason)


def _report(
    principal: Principal,
    searches: SearchRequests,
    endorsements: ProbeEndorsements,
    request_id: UUID,
    report_id: Annotated[str, PathParameter(description="the match report's id")],
) -> MatchReportDocument:
    view = searches.get(principal.user_id, request_id)
    report = next((r for r in view.reports if r.report_id == report_id), None)
    if report is None:
        raise NotFoundException(f"no match report {report_id} in search request {request_id}")
    candidate = next(c for c in view.candidates if c.candidate_id == report.candidate_id)
    probe = endorsements.get(principal.user_id, view.probe_id)
    return MatchReportDocument.of(
        report,
        request_id=str(view.id),
        probe_id=view.probe_id,
        case_reference=probe.case_reference,
        requester_id=view.requester_id,
        candidate=candidate,
    )


ROUTES = [
    Router(
        path="/",
        route_handlers=[
            open_search,
            list_searches,
            get_search,
            approve_search,
            reject_search,
            run_search,
            list_candidates,
            candidate_thumbnail,
            adjudicate,
            issue_report,
            get_report,
            printable_report,
            disseminate,
            close_search,
        ],
        dependencies={
            "searches": use_case(_searches),
            "execution": use_case(_execution),
            "endorsements": use_case(_endorsements),
        },
        tags=["searches"],
    )
]
