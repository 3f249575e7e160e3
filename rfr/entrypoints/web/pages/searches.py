"""The analyst's search (S-01..S-07, U-01): open it naming each library and why it is relevant,
run it library by library in progressive order, adjudicate each candidate beside the probe's
face, issue and print the match report, record its sharing, and propose the probe for the UCC.

The same use cases as ``POST /searches``, ``/searches/{id}/runs`` and ``/adjudications``
(``SearchRequests``, ``SearchExecution``), which decide and record as over the API. What a
reader may see is what the API gives them: the request only to those it is visible to (L-13,
else 403), the candidates only of the libraries whose access admits them
(``SearchExecution.candidates``), and a candidate's image only through
``SearchExecution.candidate_thumbnail`` (L-13, else 403, recorded).

A search is opened from its probe's page (a search starts from a probe ready for it); the
navigation links the list of searches.

The adjudication view shows the probe's selected face (to its submitter, as over the API) and
each candidate's face side by side; ``static/adjudication.js`` adds the keys ``j``/``k`` (next,
previous candidate), ``v``/``n`` (viable, not viable: focus the rationale); every form works
without it.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

import attrs
from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.exceptions import ClientException, NotFoundException
from litestar.params import FromPath, PathParameter, QueryParameter
from litestar.response import Template

from rfr.application.services.access import Principal
from rfr.application.services.endorsements import ProbeEndorsements
from rfr.application.services.libraries import ReferenceLibraries
from rfr.application.services.probes import Probes
from rfr.application.services.search_execution import CANDIDATE_READERS, SEARCHERS, SearchExecution
from rfr.application.services.searches import (
    SEARCH_READERS,
    USERS,
    LibrarySelection,
    SearchRequests,
    SearchView,
)
from rfr.application.services.ucc import REQUESTERS, UccEntries
from rfr.domain.forms import Dissemination
from rfr.domain.search_terms import SearchGround
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.http.resources._match_report_page import MatchReportDocument
from rfr.entrypoints.web.forms import FormData, FormErrors, text
from rfr.entrypoints.web.layout import page, see_other
from rfr.entrypoints.web.navigation import NavLink
from rfr.entrypoints.web.pages.probes import GROUNDS
from rfr.entrypoints.web.security import SECURITY_HEADERS, WEB_PATH

RequestId = Annotated[UUID, PathParameter(description="the search request's id")]
CandidateId = Annotated[str, PathParameter(min_length=3, max_length=200)]
JPEG = "image/jpeg"


@attrs.frozen
class Work:
    """The use cases a search page calls: the API's own, from the request's context."""

    searches: SearchRequests
    execution: SearchExecution
    libraries: ReferenceLibraries
    probes: Probes
    endorsements: ProbeEndorsements
    ucc: UccEntries


def _work(ctx: HttpContext) -> Work:
    services = ctx.services
    return Work(
        services.searches,
        services.search_execution,
        services.libraries,
        services.probes,
        services.endorsements,
        services.ucc,
    )


def search_path(request_id: UUID | str) -> str:
    return f"{WEB_PATH}/searches/{request_id}"


def _libraries_of(libraries: ReferenceLibraries, user_id: str) -> list[Any]:
    found, after = [], 0
    while True:
        batch = libraries.list(user_id, after=after, limit=200)
        found += list(batch.items)
        if batch.next_after is None:
            return found
        after = batch.next_after


def _new_page(
    request: Request[Any, Any, Any],
    work: Work,
    principal: Principal,
    *,
    values: dict[str, Any],
    errors: dict[str, str],
    status: int = 200,
) -> Template:
    return page(
        request,
        "searches/new.html",
        title="Open a search",
        status=status,
        values=values,
        errors=errors,
        libraries=_libraries_of(work.libraries, principal.user_id),
    )


@get("/searches", summary="Your searches", sync_to_thread=True, **allow(*USERS.roles))
def searches_list(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    work: NamedDependency[Work],
    after: Annotated[int, QueryParameter(ge=0)] = 0,
) -> Template:
    """The search requests the user may see (L-13), newest last, as ``GET /searches`` lists them."""
    listed = work.searches.list(principal.user_id, after=after, limit=50)
    return page(
        request,
        "searches/index.html",
        title="Searches",
        searches=list(listed.items),
        next_after=listed.next_after,
        user=principal.user_id,
    )


@get("/searches/new", summary="Open a search", sync_to_thread=True, **allow(*USERS.roles))
def new_search(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    work: NamedDependency[Work],
    probe: Annotated[str, QueryParameter(max_length=100)] = "",
) -> Template:
    """The libraries to search, each with why it is relevant (S-03)."""
    return _new_page(request, work, principal, values={"probe_id": probe}, errors={})


@post("/searches", summary="Open a search", sync_to_thread=True, status_code=303, **allow(*USERS.roles))
def open_search(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    work: NamedDependency[Work],
    data: FormData,
) -> Response[Any]:
    """As ``POST /searches``: each library must pass L-01, L-06, L-08 and L-13 now (refusals
    recorded); a library is chosen by giving its relevance."""
    errors = FormErrors()
    probe_id = text(data.get("probe_id"), "probe_id", errors, label="the probe's id")
    probe = None
    if probe_id:
        try:
            probe = UUID(probe_id)
        except ValueError:
            errors.add("probe_id", "That is not a probe id.")
    selections = []
    for name, value in data.items():
        if name.startswith("relevance-") and value.strip():
            relevance = text(value, name, errors, label="why the library is relevant")
            selections.append(LibrarySelection(name.removeprefix("relevance-"), relevance))
    if not selections:
        errors.add("libraries", "Say why at least one library is relevant: only those are searched (S-03).")
    if errors or probe is None:
        return _new_page(request, work, principal, values=dict(data), errors=errors.by_field, status=400)
    view = work.searches.open(principal.user_id, probe, selections)
    return see_other(search_path(view.id))


def _search_page(
    request: Request[Any, Any, Any],
    principal: Principal,
    work: Work,
    request_id: UUID,
    *,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    user = principal.user_id
    view: SearchView = work.searches.get(user, request_id)
    # Only the candidates of libraries whose access admits the reader (L-13), as over the API.
    entitled = {c.candidate_id: c for c in work.execution.candidates(user, request_id)}
    requested = {lib.library_id: lib for lib in view.libraries}
    names = {lib.library_id: work.libraries.get(user, lib.library_id).name for lib in view.libraries}
    candidates = [
        {
            "view": c,
            "found": entitled[c.candidate_id],
            "library": requested.get(c.library_id),
            "library_name": names.get(c.library_id, c.library_id),
            "thumbnail": f"{search_path(request_id)}/candidates/{quote(c.candidate_id, safe='')}/thumbnail",
        }
        for c in view.candidates
        if c.candidate_id in entitled
    ]
    mine = view.requester_id == user
    probe_face = None
    if mine:
        probe_view = work.probes.get(user, view.probe_id)
        selected = [f for f in probe_view.faces if f.selected]
        if selected and not probe_view.purged:
            probe_face = f"{WEB_PATH}/probes/{view.probe_id}/faces/{selected[0].face_id}/thumbnail"
    next_library = work.execution.next_library(request_id)
    ucc_request = work.ucc.addition_request(user, view.probe_id) if mine else None
    return page(
        request,
        "searches/search.html",
        title="Search",
        status=status,
        search=view,
        candidates=candidates,
        probe_face=probe_face,
        next_library=next_library,
        names=names,
        in_order=sorted(view.libraries, key=lambda lib: (lib.searched_at is None, lib.level)),
        mine=mine,
        path=search_path(request_id),
        errors=errors or {},
        ucc_request=ucc_request,
        grounds=GROUNDS,
    )


@get("/searches/{request_id:uuid}", summary="A search", sync_to_thread=True, **allow(*SEARCH_READERS.roles))
def search(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    work: NamedDependency[Work],
    request_id: FromPath[RequestId],
) -> Template:
    """The libraries in progressive order, and the candidates the reader may see (L-13), each
    beside the probe's face with a form to adjudicate it (S-05)."""
    return _search_page(request, principal, work, request_id)


@post(
    "/searches/{request_id:uuid}/runs",
    summary="Search the next library",
    sync_to_thread=True,
    status_code=303,
    **allow(*SEARCHERS.roles),
)
def run_next(
    principal: NamedDependency[Principal],
    work: NamedDependency[Work],
    request_id: FromPath[RequestId],
    data: FormData,
) -> Response[Any]:
    """As ``POST /searches/{id}/runs`` with no library: the next one in progressive order (S-02),
    every rule checked again now; 409 when every library has been searched."""
    del data
    if work.execution.search_next(principal.user_id, request_id) is None:
        raise ClientException("every library of this request has been searched", status_code=409)
    return see_other(f"{search_path(request_id)}#candidates")


@get(
    "/searches/{request_id:uuid}/candidates/{candidate_id:str}/thumbnail",
    summary="A candidate's face (L-13)",
    sync_to_thread=True,
    media_type=JPEG,
    **allow(*CANDIDATE_READERS.roles),
)
def candidate_face(
    principal: NamedDependency[Principal],
    work: NamedDependency[Work],
    request_id: FromPath[RequestId],
    candidate_id: FromPath[CandidateId],
) -> Response[bytes]:
    """As the API's candidate thumbnail: for users within the library's access only (L-13)."""
    jpeg = work.execution.candidate_thumbnail(principal.user_id, request_id, candidate_id)
    return Response(jpeg, media_type=JPEG, headers=SECURITY_HEADERS)


@post(
    "/searches/{request_id:uuid}/adjudications",
    summary="Adjudicate a candidate (S-05)",
    sync_to_thread=True,
    status_code=303,
    **allow(*USERS.roles),
)
def adjudicate(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    work: NamedDependency[Work],
    request_id: FromPath[RequestId],
    data: FormData,
) -> Response[Any]:
    """As ``POST /searches/{id}/adjudications``: viable or not, with the rationale (S-05)."""
    errors = FormErrors()
    candidate_id = text(data.get("candidate_id"), "candidate_id", errors, label="the candidate")
    decision = data.get("viable", "")
    if decision not in {"yes", "no"}:
        errors.add(f"viable-{candidate_id}", "Choose viable or not viable.")
    rationale = text(
        data.get("rationale"), f"rationale-{candidate_id}", errors, label="the reasons for your judgement"
    )
    if errors:
        return _search_page(request, principal, work, request_id, errors=errors.by_field, status=400)
    work.searches.adjudicate(
        principal.user_id,
        request_id,
        candidate_id,
        decision == "yes",
        rationale,
        identity_known={"yes": True, "no": False}.get(data.get("identity_known", "")),
    )
    return see_other(f"{search_path(request_id)}#candidate-{quote(candidate_id, safe='')}")


@post(
    "/searches/{request_id:uuid}/reports",
    summary="Issue a match report (S-06)",
    sync_to_thread=True,
    status_code=303,
    **allow(*USERS.roles),
)
def issue_report(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    work: NamedDependency[Work],
    request_id: FromPath[RequestId],
    data: FormData,
) -> Response[Any]:
    """As ``POST /searches/{id}/reports``: of a candidate adjudicated viable, with the caveat."""
    errors = FormErrors()
    candidate_id = text(data.get("candidate_id"), "candidate_id", errors, label="the candidate")
    if errors:
        return _search_page(request, principal, work, request_id, errors=errors.by_field, status=400)
    report = work.searches.issue_match_report(principal.user_id, request_id, candidate_id)
    return see_other(f"{search_path(request_id)}/reports/{report.report_id}")


def _report_page(
    request: Request[Any, Any, Any],
    principal: Principal,
    work: Work,
    request_id: UUID,
    report_id: str,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Template:
    user = principal.user_id
    view = work.searches.get(user, request_id)
    report = next((r for r in view.reports if r.report_id == report_id), None)
    if report is None:
        raise NotFoundException(f"no match report {report_id} in search request {request_id}")
    candidate = next(c for c in view.candidates if c.candidate_id == report.candidate_id)
    probe = work.endorsements.get(user, view.probe_id)
    document = MatchReportDocument.of(
        report,
        request_id=str(view.id),
        probe_id=view.probe_id,
        case_reference=probe.case_reference,
        requester_id=view.requester_id,
        candidate=candidate,
    )
    library = work.libraries.get(user, candidate.library_id)
    return page(
        request,
        "searches/report.html",
        title="Match report",
        status=status,
        document=document,
        library_name=library.name,
        disseminations=[d for d in view.disseminations if d.report_id == report_id],
        mine=view.requester_id == user,
        path=search_path(request_id),
        values=values or {},
        errors=errors or {},
    )


@post(
    "/searches/{request_id:uuid}/ucc-request",
    summary="Propose the probe for the UCC (U-01)",
    sync_to_thread=True,
    status_code=303,
    **allow(*REQUESTERS.roles),
)
def propose_for_ucc(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    work: NamedDependency[Work],
    request_id: FromPath[RequestId],
    data: FormData,
) -> Response[Any]:
    """As ``POST /ucc/requests`` for this search's probe: U-01 checked now (no viable match of a
    known person, a ground still applies) and again when an Inspector decides (P-08, P-12)."""
    errors = FormErrors()
    rationale = text(
        data.get("ucc_rationale"), "ucc_rationale", errors, label="why it should be searched again"
    )
    chosen = [g for g in SearchGround if data.get(f"ucc_ground_{g.value}") == "yes"]
    if not chosen:
        errors.add("ucc_grounds", "Choose the grounds that still apply (U-01).")
    if errors:
        return _search_page(request, principal, work, request_id, errors=errors.by_field, status=400)
    view = work.searches.get(principal.user_id, request_id)
    work.ucc.request_addition(principal.user_id, view.probe_id, chosen, rationale)
    return see_other(f"{search_path(request_id)}#ucc")


ReportId = Annotated[str, PathParameter(min_length=1, max_length=100)]


@get(
    "/searches/{request_id:uuid}/reports/{report_id:str}",
    summary="A match report, to print",
    sync_to_thread=True,
    **allow(*SEARCH_READERS.roles),
)
def match_report(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    work: NamedDependency[Work],
    request_id: FromPath[RequestId],
    report_id: FromPath[ReportId],
) -> Template:
    """The report (S-06) as the API's printable page gives it, with its disseminations (S-07);
    printed, only the report itself is on paper (``static/print.css``)."""
    return _report_page(request, principal, work, request_id, report_id)


@post(
    "/searches/{request_id:uuid}/disseminations",
    summary="Record a dissemination (S-07)",
    sync_to_thread=True,
    status_code=303,
    **allow(*USERS.roles),
)
def disseminate(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    work: NamedDependency[Work],
    request_id: FromPath[RequestId],
    data: FormData,
) -> Response[Any]:
    """As ``POST /searches/{id}/disseminations``: the match report shared, with whom, on which
    legal basis, and that they apply equivalent safeguards (S-07); templates are never shared."""
    errors = FormErrors()
    report_id = text(data.get("report_id"), "report_id", errors, label="the report")
    recipient = text(data.get("recipient"), "recipient", errors, label="who receives it")
    legal_basis = text(data.get("legal_basis"), "legal_basis", errors, label="the legal basis")
    if errors:
        if not report_id:
            return _search_page(request, principal, work, request_id, errors=errors.by_field, status=400)
        return _report_page(
            request,
            principal,
            work,
            request_id,
            report_id,
            values=dict(data),
            errors=errors.by_field,
            status=400,
        )
    shared = Dissemination(
        recipient, legal_basis, data.get("safeguards_acknowledged") == "yes", ("match_report",)
    )
    work.searches.record_dissemination(principal.user_id, request_id, report_id, shared)
    return see_other(f"{search_path(request_id)}/reports/{quote(report_id, safe='')}#disseminations")


ROUTES = [
    Router(
        path="/",
        route_handlers=[
            searches_list,
            new_search,
            open_search,
            search,
            run_next,
            candidate_face,
            adjudicate,
            issue_report,
            match_report,
            disseminate,
            propose_for_ucc,
        ],
        dependencies={"work": use_case(_work)},
    )
]
NAV = [NavLink(searches_list, "Searches", order=25)]
