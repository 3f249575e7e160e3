"""Search requests from opening to close (S-01..S-07, P-08, P-09, P-12), and their read model.

Libraries are searched by ``SearchExecution`` (search_execution.py), which runs the
biometric search and hands its potential matches to the request: the request checks every
rule again at that moment (L-01, L-06, L-08, L-13, S-02, T-01, T-02, R-01) before the
candidates are recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

import attrs

from rfr.application.services.base import Act, Need, Page, UseCase, list_ids
from rfr.domain.codec import to_data
from rfr.domain.forms import Dissemination
from rfr.domain.images import ImageLevel
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.people import OPERATIONAL_ROLES, Role
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.search_request import LibraryChoice, RequestStatus, SearchRequest
from rfr.domain.search_terms import Urgency

# Who each route admits. The domain decides rank (P-08, P-09, P-12) and access (L-13) itself, so
# a refusal names the rule the policy names.
USERS = Need((Role.RFR_USER,))
APPROVERS = Need((Role.APPROVING_OFFICER,))
SEARCH_READERS = Need(OPERATIONAL_ROLES)


@attrs.frozen
class LibrarySelection:
    """A library to search, why it is relevant (S-03), and a raised level for this search (L-11)."""

    library_id: str
    relevance: str
    raised_level: ImageLevel | None = None


@attrs.frozen
class RequestedLibraryView:
    """A library a search request asked for (S-03), and whether it has been searched.

    Attributes:
        library_id: The library's id.
        approval_id: The id of the library's approval.
        kind: ``substantive`` or ``temporary``.
        approved_level: The most intrusive Image Matrix level its approval allows (1-5).
        level: The level this request searches it at: the approved level or a raised one (L-11).
        relevance: Why the requester says the library is relevant (S-03).
        searched_at: When it was searched for this request, or null (not yet).
        algorithm_id: The algorithm it was searched with, or null (not yet).
    """

    library_id: str
    approval_id: str
    kind: str
    approved_level: int
    level: int
    relevance: str
    searched_at: datetime | None
    algorithm_id: str | None


@attrs.frozen
class AdjudicationView:
    """A person's judgement of a potential match (S-05).

    Attributes:
        viable: Whether the adjudicator judged it a viable match.
        rationale: The adjudicator's reasons.
        identity_known: Whether the person matched is known (null: not said); a viable match
            of an unknown person leaves the purpose unmet (U-01, 6.1(b)).
        by: The user id of the adjudicator.
        at: When the adjudication was recorded.
    """

    viable: bool
    rationale: str
    identity_known: bool | None
    by: str
    at: datetime


@attrs.frozen
class CandidateView:
    """A potential match found by a search (S-04).

    Attributes:
        candidate_id: The candidate's id, ``<library_id>#<rank>``.
        rank: Its rank within its library's search, 1 the most similar.
        score: Its similarity score, from 0 to 1 (0.5 at the algorithm's threshold); comparable
            only between candidates of the same algorithm.
        library_id: The library it was found in.
        algorithm_id: The algorithm that found it.
        image_id: The library image it is.
        template_id: The template of that image that matched.
        adjudication: Its adjudication (S-05), or null while not adjudicated.
    """

    candidate_id: str
    rank: int
    score: float
    library_id: str
    algorithm_id: str
    image_id: str
    template_id: str
    adjudication: AdjudicationView | None


@attrs.frozen
class MatchReportView:
    """A match report issued for a viable match (S-06).

    Attributes:
        report_id: The report's id.
        candidate_id: The candidate it reports, ``<library_id>#<rank>``.
        caveat: The policy's caveat, word for word: a match is intelligence, not identification.
        performance_statement: The statement of the algorithm's performance the report carries.
        performance_document_url: Where the full performance document is published.
        issued_at: When the report was issued.
    """

    report_id: str
    candidate_id: str
    caveat: str
    performance_statement: str
    performance_document_url: str
    issued_at: datetime


@attrs.frozen
class DisseminationView:
    """A record of sharing a match report outside the system (S-07).

    Attributes:
        report_id: The match report shared.
        recipient: Who received it.
        legal_basis: The legal basis of the sharing.
        safeguards_acknowledged: Whether the recipient applies equivalent safeguards, as stated.
        items: What was shared, e.g. ``match_report``; never templates.
        by: The user id of whoever shared it.
        at: When the sharing was recorded.
    """

    report_id: str
    recipient: str
    legal_basis: str
    safeguards_acknowledged: bool
    items: tuple[str, ...]
    by: str
    at: datetime


@attrs.frozen
class SearchApprovalView:
    """The approval of a search request by an Inspector or above (P-08, P-09).

    Attributes:
        by: The user id of the approving officer.
        rank: The officer's rank when approving (1 sergeant to 5 chief superintendent), or null.
        rationale: The officer's reasons.
        at: When the approval was recorded.
    """

    by: str
    rank: int | None
    rationale: str
    at: datetime


@attrs.frozen
class SearchView:
    """A search request (S-01..S-07): its libraries, approval, candidates and what came of them.

    Attributes:
        id: The request's id.
        probe_id: The probe searched.
        requester_id: The user id of the requester.
        status: ``open``, ``rejected`` or ``closed``.
        purposes: The search purposes of the probe's Form 3 (policy 8.2), in name order.
        probe_level: The probe's Image Matrix level (1-5).
        collection_id: The collection the probe belongs to, or null; a collection needs
            approval (P-09).
        urgency: The request's urgency, its own or its probe's Form 3's (``basis``, ``rationale``,
            ``search_all``), or null.
        required_approvals: The rules under which an Inspector must approve the request before
            searching: ``P-08`` (a level 4 or 5 library) and ``P-09`` (a collection).
        approval: The approval given, or null.
        awaiting: The rules whose approval or endorsement the request still waits for
            (the probe's missing endorsements included); empty when it may be searched.
        awaiting_approval: Whether ``awaiting`` names anything.
        libraries: The libraries requested, in the order chosen.
        candidates: The potential matches found so far, by rank within each library.
        unadjudicated: How many candidates are not adjudicated yet.
        has_viable_match: Whether any candidate was adjudicated a viable match.
        reports: The match reports issued (S-06).
        disseminations: The records of sharing match reports (S-07).
        last_searched_at: When a library was last searched for it, or null.
        refusals: How many commands on the request were refused and recorded (A-01).
    """

    id: UUID
    probe_id: str
    requester_id: str
    status: str
    purposes: tuple[str, ...]
    probe_level: int
    collection_id: str | None
    urgency: dict[str, Any] | None
    required_approvals: tuple[str, ...]
    approval: SearchApprovalView | None
    awaiting: tuple[str, ...]
    awaiting_approval: bool
    libraries: tuple[RequestedLibraryView, ...]
    candidates: tuple[CandidateView, ...]
    unadjudicated: int
    has_viable_match: bool
    reports: tuple[MatchReportView, ...]
    disseminations: tuple[DisseminationView, ...]
    last_searched_at: datetime | None
    refusals: int

    @classmethod
    def of(
        cls,
        request: SearchRequest,
        order: Literal["rank", "score"] = "rank",
        *,
        missing_endorsements: Collection[str] = (),
    ) -> SearchView:
        """``missing_endorsements``: the rules (P-04, P-06, ...) under which the probe still awaits
        an Inspector's endorsement; the request waits for those as for its own approval."""
        candidates = tuple(
            CandidateView(
                c.candidate_id,
                c.rank,
                c.score,
                c.library_id,
                c.algorithm_id,
                c.image_id,
                c.template_id,
                _adjudication(request, c.candidate_id),
            )
            for c in request.candidates(order)
        )
        approval = request.approval
        awaiting = tuple(
            sorted({*missing_endorsements, *(request.required_approvals if approval is None else ())})
        )
        return cls(
            id=request.id,
            probe_id=request.probe_id,
            requester_id=request.requester_id,
            status=request.status.value,
            purposes=tuple(sorted(p.value for p in request.purposes)),
            probe_level=int(request.probe_level),
            collection_id=request.collection_id,
            urgency=to_data(request.urgency) if request.urgency is not None else None,
            required_approvals=tuple(sorted(request.required_approvals)),
            approval=SearchApprovalView(*approval) if approval is not None else None,
            awaiting=awaiting,
            awaiting_approval=bool(awaiting),
            libraries=tuple(
                RequestedLibraryView(
                    lib.library_id,
                    lib.approval_id,
                    lib.kind.value,
                    int(lib.approved_level),
                    int(lib.level),
                    lib.relevance,
                    request.searches[lib.library_id][1] if lib.library_id in request.searches else None,
                    request.searches[lib.library_id][0] if lib.library_id in request.searches else None,
                )
                for lib in request.libraries.values()
            ),
            candidates=candidates,
            unadjudicated=sum(1 for c in candidates if c.adjudication is None),
            has_viable_match=request.has_viable_match,
            reports=tuple(
                MatchReportView(
                    r.report_id,
                    r.candidate_id,
                    r.caveat,
                    r.performance_statement,
                    r.performance_document_url,
                    r.issued_at,
                )
                for r in request.reports.values()
            ),
            disseminations=tuple(
                DisseminationView(
                    d.report_id,
                    d.dissemination.recipient,
                    d.dissemination.legal_basis,
                    d.dissemination.safeguards_acknowledged,
                    tuple(d.dissemination.items),
                    d.by,
                    d.at,
                )
                for d in request.disseminations
            ),
            last_searched_at=request.last_searched_at,
            refusals=len(request.refusals),
        )


def _adjudication(request: SearchRequest, candidate_id: str) -> AdjudicationView | None:
    a = request.adjudications.get(candidate_id)
    if a is None:
        return None
    return AdjudicationView(a.viable, a.rationale, a.identity_known, a.by, a.at)


class SearchRequests(UseCase):
    def open(
        self,
        acting_user: str,
        probe_id: UUID | str,
        libraries: Sequence[LibrarySelection],
        *,
        urgency: Urgency | None = None,
    ) -> SearchView:
        """S-01/S-03: each library must pass L-01, L-06, L-08 and L-13 for the acting user now."""
        probe = self.load(probe_id, ProbeImage)
        choices = []
        for selection in libraries:
            library = self.load(selection.library_id, ReferenceLibrary)
            approval = self.load(library.approval_id, LibraryApproval)
            choices.append(LibraryChoice(library, approval, selection.relevance, selection.raised_level))
        request = self._act(
            acting_user,
            "open search request",
            [],
            lambda a: a.new(SearchRequest.open(a.actor, a.at, probe, choices, a.config, urgency=urgency)),
            target_name=f"SearchRequest for probe {probe.id}",
        )
        return self._view(request)

    def approve(self, acting_user: str, request_id: UUID | str, rationale: str) -> SearchView:
        """P-08 (level 4-5 libraries) and P-09 (collections): an Inspector, not the requester (P-12)."""
        return self._on(
            acting_user,
            "approve search",
            request_id,
            lambda r, a: r.approve(a.actor, a.at, rationale, self._approvals(r)),
        )

    def reject(self, acting_user: str, request_id: UUID | str, rationale: str) -> SearchView:
        return self._on(
            acting_user,
            "reject search",
            request_id,
            lambda r, a: r.reject(a.actor, a.at, rationale, self._approvals(r)),
        )

    def adjudicate(
        self,
        acting_user: str,
        request_id: UUID | str,
        candidate_id: str,
        viable: bool,
        rationale: str,
        *,
        identity_known: bool | None = None,
    ) -> SearchView:
        """S-05: only a person's adjudication makes a viable match."""
        return self._on(
            acting_user,
            "adjudicate",
            request_id,
            lambda r, a: r.adjudicate(
                a.actor,
                a.at,
                candidate_id,
                viable,
                rationale,
                approvals=self._approvals(r),
                identity_known=identity_known,
            ),
        )

    def issue_match_report(
        self, acting_user: str, request_id: UUID | str, candidate_id: str, *, report_id: str | None = None
    ) -> MatchReportView:
        """S-06: the report of a viable match, with the 8.27 caveat and the performance link."""
        rid = report_id or str(uuid4())
        request = self._on_fresh(
            acting_user,
            "issue match report",
            request_id,
            lambda r, a: r.issue_match_report(a.actor, a.at, candidate_id, rid, self._approvals(r)),
        )
        return next(r for r in self._view(request).reports if r.report_id == rid)

    def record_dissemination(
        self, acting_user: str, request_id: UUID | str, report_id: str, dissemination: Dissemination
    ) -> SearchView:
        """S-07: who received what, under which legal basis, with equivalent safeguards."""
        return self._on(
            acting_user,
            "record dissemination",
            request_id,
            lambda r, a: r.record_dissemination(a.actor, a.at, report_id, dissemination, self._approvals(r)),
        )

    def close(self, acting_user: str, request_id: UUID | str, reason: str) -> SearchView:
        return self._on(
            acting_user,
            "close",
            request_id,
            lambda r, a: r.close(a.actor, a.at, reason, self._approvals(r)),
        )

    # -- queries -----------------------------------------------------------------------------

    def get(
        self, acting_user: str, request_id: UUID | str, *, order: Literal["rank", "score"] = "rank"
    ) -> SearchView:
        """The requester, approving officers, the Operational Lead and the SRO see a request; any
        other RFR User only when every library of the request allows them (L-13)."""
        request = self.load(request_id, SearchRequest)
        self._read(
            acting_user,
            "read search request",
            SEARCH_READERS,
            target=f"SearchRequest {request.id}",
            decide=lambda actor: request.visible_to(actor, self._approvals(request)),
        )
        return self._view(request, order)

    def list(self, acting_user: str, *, after: int = 0, limit: int = 50) -> Page[SearchView]:
        """Requests in opening order; requests the user may not see are left out of the page."""
        actor = self._read(acting_user, "list search requests", SEARCH_READERS)
        ids, next_after = list_ids(self.app, SearchRequest.Opened, after=after, limit=limit)
        requests = (self.load(i, SearchRequest) for i in ids)
        return Page(
            tuple(self._view(r) for r in requests if r.visible_to(actor, self._approvals(r)).allowed),
            next_after,
        )

    # -- helpers -----------------------------------------------------------------------------

    def _view(self, request: SearchRequest, order: Literal["rank", "score"] = "rank") -> SearchView:
        probe = self.load(request.probe_id, ProbeImage)
        missing = probe.missing_endorsements(self.config()) if request.status is RequestStatus.OPEN else ()
        return SearchView.of(request, order, missing_endorsements=[k.value for k in missing])

    def _approvals(self, request: SearchRequest) -> dict[str, LibraryApproval]:
        """The approval each library of the request was opened under: its access restrictions (L-13)."""
        return {
            lib.library_id: self.load(lib.approval_id, LibraryApproval) for lib in request.libraries.values()
        }

    def _on(
        self,
        acting_user: str,
        command: str,
        request_id: UUID | str,
        change: Callable[[SearchRequest, Act], None],
    ) -> SearchView:
        return self._view(self._on_fresh(acting_user, command, request_id, change))

    def _on_fresh(
        self,
        acting_user: str,
        command: str,
        request_id: UUID | str,
        change: Callable[[SearchRequest, Act], None],
    ) -> SearchRequest:
        """Runs ``change`` on the request as now stored, again on a fresh load if another writer
        saved the request first (``_retrying``): commands on different parts of one request (two
        candidates, two reports) both land; the domain decides the later one on the new state.
        Each attempt loads the request and its approvals anew; the request saved is returned."""

        def attempt() -> SearchRequest:
            request = self.load(request_id, SearchRequest)
            self._act(acting_user, command, [request], lambda a: change(request, a))
            return request

        return self._retrying(attempt)
