"""A search request (Form 3 search of one probe against chosen libraries) to its close (S-rules).

The caller passes the ProbeImage, ReferenceLibrary and LibraryApproval aggregates a command
needs; the request checks the rules against them at that moment and records only ids,
levels and rule facts. Candidates arrive as plain data from the biometric engine.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

import attrs
from eventsourcing.domain import Aggregate

from rfr.domain.adjudication import Adjudication, identity_recorded, may_adjudicate
from rfr.domain.calendar import require_aware
from rfr.domain.codec import from_data, to_data
from rfr.domain.decisions import Decision, combine
from rfr.domain.forms import Dissemination, LibraryKind
from rfr.domain.governed import GovernedAggregate
from rfr.domain.images import ImageLevel, effective_level
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.match_report import (
    DISSEMINATION_CAVEAT,
    PERFORMANCE_DOCUMENT_URL,
    PERFORMANCE_STATEMENT,
    MatchReport,
)
from rfr.domain.people import Actor, Role, rank_of
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import LibraryHoldings, ReferenceLibrary
from rfr.domain.refused_attempt import enforce_new
from rfr.domain.rules_access import authorised, different_person, inspector_or_above, stated
from rfr.domain.rules_search import (
    Candidate,
    candidates_valid,
    dissemination_allowed,
    library_searchable,
    progressive_order,
    within_access,
)
from rfr.domain.search_terms import SearchPurpose, Urgency

# Who oversees searches and so reads every request (the requester reads their own).
OVERSIGHT_ROLES = (Role.APPROVING_OFFICER, Role.OPERATIONAL_LEAD, Role.SRO)


class RequestStatus(enum.StrEnum):
    OPEN = "open"
    REJECTED = "rejected"
    CLOSED = "closed"


@attrs.frozen
class LibraryChoice:
    """A library the requester wants searched, why it is relevant (S-03), and any raised level (L-11)."""

    library: ReferenceLibrary
    approval: LibraryApproval
    relevance: str
    raised_level: ImageLevel | None = None


@attrs.frozen
class RequestedLibrary:
    library_id: str
    approval_id: str
    kind: LibraryKind
    approved_level: ImageLevel
    level: ImageLevel
    relevance: str


@attrs.frozen
class DisseminationRecord:
    report_id: str
    dissemination: Dissemination
    by: str
    at: datetime


class SearchRequest(GovernedAggregate):
    class Opened(GovernedAggregate.Event, Aggregate.Created):
        probe_id: str
        probe_requester_id: str
        purposes: list[str]
        probe_level: int
        collection_id: str | None
        libraries: list[dict[str, Any]]
        urgency: dict[str, Any] | None
        required_approvals: list[str]

        def apply(self, agg: SearchRequest) -> None:
            agg.probe_id = self.probe_id
            agg.requester_id = self.acting.user_id
            agg.probe_requester_id = self.probe_requester_id
            agg.purposes = frozenset(SearchPurpose(p) for p in self.purposes)
            agg.probe_level = ImageLevel(self.probe_level)
            agg.collection_id = self.collection_id
            agg.libraries = {
                lib.library_id: lib for lib in (from_data(RequestedLibrary, d) for d in self.libraries)
            }
            agg.urgency = from_data(Urgency | None, self.urgency)
            agg.required_approvals = frozenset(self.required_approvals)
            agg.approval = None
            agg.status = RequestStatus.OPEN
            agg.searches = {}
            agg.candidate_list = {}
            agg.adjudications = {}
            agg.reports = {}
            agg.disseminations = []
            agg.last_searched_at = None

    class Approved(GovernedAggregate.Event):
        approver_rank: int | None
        covers: list[str]

        def apply(self, agg: SearchRequest) -> None:
            agg.approval = (self.acting.user_id, self.approver_rank, self.reason, self.timestamp)

    class Rejected(GovernedAggregate.Event):
        approver_rank: int | None

        def apply(self, agg: SearchRequest) -> None:
            agg.status = RequestStatus.REJECTED

    class LibrarySearched(GovernedAggregate.Event):
        library_id: str
        approval_id: str
        level: int
        algorithm_id: str
        probe_template_ids: list[str]
        candidates: list[dict[str, Any]]

        def apply(self, agg: SearchRequest) -> None:
            found = [from_data(Candidate, c) for c in self.candidates]
            agg.searches[self.library_id] = (self.algorithm_id, self.timestamp)
            for candidate in found:
                agg.candidate_list[candidate.candidate_id] = candidate
            agg.last_searched_at = self.timestamp

    class CandidateAdjudicated(GovernedAggregate.Event):
        candidate_id: str
        viable: bool
        identity_known: bool | None

        def apply(self, agg: SearchRequest) -> None:
            agg.adjudications[self.candidate_id] = Adjudication(
                self.candidate_id,
                self.viable,
                self.reason,
                self.identity_known,
                self.acting.user_id,
                self.timestamp,
            )

    class MatchReportIssued(GovernedAggregate.Event):
        report_id: str
        candidate_id: str
        caveat: str
        performance_statement: str
        performance_document_url: str

        def apply(self, agg: SearchRequest) -> None:
            agg.reports[self.report_id] = MatchReport(
                self.report_id,
                self.candidate_id,
                self.caveat,
                self.performance_statement,
                self.performance_document_url,
                self.timestamp,
            )

    class Disseminated(GovernedAggregate.Event):
        report_id: str
        dissemination: dict[str, Any]

        def apply(self, agg: SearchRequest) -> None:
            agg.disseminations.append(
                DisseminationRecord(
                    self.report_id,
                    from_data(Dissemination, self.dissemination),
                    self.acting.user_id,
                    self.timestamp,
                )
            )

    class Closed(GovernedAggregate.Event):
        def apply(self, agg: SearchRequest) -> None:
            agg.status = RequestStatus.CLOSED

    # -- commands ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        actor: Actor,
        at: datetime,
        probe: ProbeImage,
        choices: Sequence[LibraryChoice],
        config: PolicyConfig,
        *,
        urgency: Urgency | None = None,
        request_id: UUID | None = None,
    ) -> SearchRequest:
        """Open a request: each library passes L-01, L-06, L-08, L-13 now (S-01), with a reason (S-03).

        ``urgency`` is the request's own; without one, the Urgency recorded on the probe's Form 3
        applies, "search all" included (S-02): the form is where the policy records it.
        """
        urgency = urgency if urgency is not None else probe.form.urgency
        purposes = probe.form.purposes
        ids = [str(c.library.id) for c in choices]
        checks = [
            authorised(actor, Role.RFR_USER),
            Decision.check(probe.purged_at is None, "R-05", "the probe has been deleted"),
            probe.age_safeguards(),
            Decision.check(bool(choices), "S-01", "choose at least one library"),
            Decision.check(len(set(ids)) == len(ids), "S-03", "each library is chosen once"),
            Decision.check(
                urgency is None or urgency.stated, "S-02", "an urgent 'search all' must record its rationale"
            ),
        ]
        for choice in choices:
            name = choice.library.name
            checks += [
                stated(choice.relevance, "S-03", f"why {name} is relevant"),
                Decision.check(
                    str(choice.approval.id) == choice.library.approval_id, "L-01", f"{name}: not its approval"
                ),
                library_searchable(choice.approval, actor, purposes, at, config),
                Decision.check(
                    choice.raised_level is None or choice.raised_level >= choice.approval.approved_level,
                    "L-11",
                    f"{name}: a library's level is never lowered below its approved level",
                ),
            ]
        enforce_new("open search request", "SearchRequest", actor, at, combine(*checks))
        libraries = [
            RequestedLibrary(
                str(c.library.id),
                str(c.approval.id),
                c.library.kind,
                c.approval.approved_level,
                effective_level(c.approval.approved_level, c.raised_level),
                c.relevance,
            )
            for c in choices
        ]
        required = []
        if any(lib.level in config.inspector_approval_levels for lib in libraries):
            required.append("P-08")
        if probe.form.collection_id:
            required.append("P-09")
        return cls._create(
            cls.Opened,
            id=request_id or uuid4(),
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason="; ".join(f"{lib.library_id}: {lib.relevance}" for lib in libraries),
            probe_id=str(probe.id),
            probe_requester_id=probe.requester_id,
            purposes=sorted(p.value for p in purposes),
            probe_level=int(probe.level),
            collection_id=probe.form.collection_id,
            libraries=[to_data(lib) for lib in libraries],
            urgency=to_data(urgency) if urgency is not None else None,
            required_approvals=required,
        )

    def approve(
        self, actor: Actor, at: datetime, rationale: str, approvals: Mapping[str, LibraryApproval]
    ) -> None:
        """P-08 (level 4/5 libraries), P-09 (collections): Inspector or above, not the requester (P-12).

        The officer authorises a search of each library, so must be within its access (L-13).
        """
        required = sorted(self.required_approvals)
        self._enforce(
            "approve search",
            actor,
            at,
            combine(
                self._open(),
                authorised(actor, Role.APPROVING_OFFICER),
                Decision.check(bool(required), "P-08", "this request needs no individual approval"),
                Decision.check(self.approval is None, "P-12", "already approved"),
                *(inspector_or_above(actor, rule, f"approval under {rule}") for rule in required),
                different_person(actor, self.requester_id, "a search approval"),
                different_person(actor, self.probe_requester_id, "a search approval"),
                stated(rationale, "P-12", "the approval rationale"),
                self._within_access_of_all(actor, approvals),
            ),
        )
        self._record(
            self.Approved,
            actor,
            at,
            rationale,
            approver_rank=rank_of(actor),
            covers=required,
        )

    def reject(
        self, actor: Actor, at: datetime, rationale: str, approvals: Mapping[str, LibraryApproval]
    ) -> None:
        self._enforce(
            "reject search",
            actor,
            at,
            combine(
                self._open(),
                Decision.check(not self.searches, "P-12", "the search has already run"),
                inspector_or_above(actor, "P-12", "a rejection"),
                different_person(actor, self.requester_id, "a search rejection"),
                stated(rationale, "P-12", "the rejection rationale"),
                self._within_access_of_all(actor, approvals),
            ),
        )
        self._record(self.Rejected, actor, at, rationale, approver_rank=rank_of(actor))

    def search_library(
        self,
        actor: Actor,
        at: datetime,
        *,
        probe: ProbeImage,
        library: ReferenceLibrary,
        holdings: LibraryHoldings,
        approval: LibraryApproval,
        algorithm_id: str,
        candidates: Sequence[Candidate],
        config: PolicyConfig,
    ) -> None:
        """Record one library's search and its potential matches, if every rule allows it now.

        ``holdings``: what the library holds of these candidates and algorithm, now.
        """
        library_id = str(library.id)
        requested = self.libraries.get(library_id)
        checks = [
            self._open(),
            authorised(actor, Role.RFR_USER),
            Decision.check(requested is not None, "S-03", "the library is not part of this request"),
            Decision.check(library_id not in self.searches, "S-04", "the library was already searched"),
            Decision.check(str(probe.id) == self.probe_id, "S-01", "not this request's probe"),
            Decision.check(str(approval.id) == library.approval_id, "L-01", "not the library's approval"),
            library_searchable(approval, actor, self.purposes, at, config),
            probe.ready_for_search(algorithm_id, config),
            Decision.check(holdings.library_id == library_id, "S-04", "facts of another library"),
            Decision.check(
                algorithm_id in holdings.searchable_with,
                "T-02",
                f"the library is not (fully) templated with {algorithm_id}",
            ),
            *(
                Decision.refuse(rule, f"the search needs an Inspector's approval under {rule}")
                for rule in sorted(self.required_approvals)
                if self.approval is None
            ),
        ]
        if requested is not None:
            checks += [
                progressive_order(
                    requested.level,
                    [(lib.library_id, lib.level) for lib in self.libraries.values()],
                    self.searches.keys(),
                    self._libraries_with_viable_match(),
                    self.urgency,
                ),
                candidates_valid(candidates, library_id, algorithm_id, holdings.searchable_templates),
            ]
        self._enforce(f"search library {library_id}", actor, at, combine(*checks))
        self._record(
            self.LibrarySearched,
            actor,
            at,
            requested.relevance,
            library_id=library_id,
            approval_id=str(approval.id),
            level=int(requested.level),
            algorithm_id=algorithm_id,
            probe_template_ids=list(probe.template_ids(algorithm_id)),
            candidates=[to_data(c) for c in sorted(candidates, key=lambda c: c.rank)],
        )

    def adjudicate(
        self,
        actor: Actor,
        at: datetime,
        candidate_id: str,
        viable: bool,
        rationale: str,
        *,
        approvals: Mapping[str, LibraryApproval],
        identity_known: bool | None = None,
    ) -> None:
        """S-05: the human decision on one potential match; only this makes a viable match.

        Adjudicating shows the candidate's image, so the person must be within its library's
        access restrictions (L-13).
        """
        self._enforce(
            "adjudicate",
            actor,
            at,
            combine(
                self._open(),
                may_adjudicate(
                    actor,
                    candidate_id,
                    rationale,
                    known=self.candidate_list.keys(),
                    decided=self.adjudications.keys(),
                    within_access=self._within_access_of_candidate(actor, candidate_id, approvals),
                ),
            ),
        )
        self._record(
            self.CandidateAdjudicated,
            actor,
            at,
            rationale,
            candidate_id=candidate_id,
            viable=viable,
            identity_known=identity_recorded(viable, identity_known),
        )

    def issue_match_report(
        self,
        actor: Actor,
        at: datetime,
        candidate_id: str,
        report_id: str,
        approvals: Mapping[str, LibraryApproval],
    ) -> None:
        """S-06: a viable match's report, with the 8.27 caveat verbatim and the performance link.

        The report names the matched image, so its library's access restrictions apply (L-13).
        """
        adjudication = self.adjudications.get(candidate_id)
        self._enforce(
            "issue match report",
            actor,
            at,
            combine(
                authorised(actor, Role.RFR_USER),
                self._within_access_of_candidate(actor, candidate_id, approvals),
                Decision.check(self.status is not RequestStatus.REJECTED, "S-06", "the request was rejected"),
                Decision.check(
                    adjudication is not None and adjudication.viable,
                    "S-06",
                    "only a viable match is reported",
                ),
                Decision.check(report_id not in self.reports, "S-06", "that report id is taken"),
                stated(report_id, "S-06", "the report id"),
            ),
        )
        self._record(
            self.MatchReportIssued,
            actor,
            at,
            f"viable match {candidate_id}",
            report_id=report_id,
            candidate_id=candidate_id,
            caveat=DISSEMINATION_CAVEAT,
            performance_statement=PERFORMANCE_STATEMENT,
            performance_document_url=PERFORMANCE_DOCUMENT_URL,
        )

    def record_dissemination(
        self,
        actor: Actor,
        at: datetime,
        report_id: str,
        dissemination: Dissemination,
        approvals: Mapping[str, LibraryApproval],
    ) -> None:
        """S-07: who received what, under which legal basis, bound to equivalent safeguards.

        Only someone within the matched library's access restrictions passes its report on (L-13).
        """
        report = self.reports.get(report_id)
        self._enforce(
            "record dissemination",
            actor,
            at,
            combine(
                authorised(actor, Role.RFR_USER),
                self._within_access_of_candidate(
                    actor, report.candidate_id if report is not None else "", approvals
                ),
                Decision.check(report_id in self.reports, "S-07", "only a match report is disseminated"),
                dissemination_allowed(dissemination),
            ),
        )
        self._record(
            self.Disseminated,
            actor,
            at,
            dissemination.legal_basis,
            report_id=report_id,
            dissemination=to_data(dissemination),
        )

    def close(
        self, actor: Actor, at: datetime, reason: str, approvals: Mapping[str, LibraryApproval]
    ) -> None:
        self._enforce(
            "close",
            actor,
            at,
            combine(
                self._open(),
                authorised(actor, Role.RFR_USER),
                stated(reason, "S-01", "the reason"),
                self._within_access_of_all(actor, approvals),
            ),
        )
        self._record(self.Closed, actor, at, reason)

    # -- queries ----------------------------------------------------------------------------

    @property
    def searched_library_ids(self) -> tuple[str, ...]:
        return tuple(self.searches)

    @property
    def searched(self) -> bool:
        """Whether any library was searched (``probe_image.ProbeSearch``)."""
        return bool(self.searches)

    @property
    def viable_matches(self) -> tuple[Adjudication, ...]:
        return tuple(a for a in self.adjudications.values() if a.viable)

    @property
    def has_viable_match(self) -> bool:
        return bool(self.viable_matches)

    @property
    def has_viable_match_of_known_person(self) -> bool:
        """U-01: a viable match of an unknown person still leaves the purpose unmet (6.1(b))."""
        return any(a.identity_known is not False for a in self.viable_matches)

    def candidates(self, order: Literal["rank", "score"] = "rank") -> tuple[Candidate, ...]:
        """S-04: by rank (1 first, per library in search order) or by score descending."""
        found = list(self.candidate_list.values())
        if order == "score":
            return tuple(sorted(found, key=lambda c: (-c.score, c.rank)))
        library_order = {lib: i for i, lib in enumerate(self.searches)}
        return tuple(sorted(found, key=lambda c: (c.rank, library_order[c.library_id])))

    def _libraries_with_viable_match(self) -> set[str]:
        return {self.candidate_list[a.match_id].library_id for a in self.viable_matches}

    def visible_to(self, actor: Actor, approvals: Mapping[str, LibraryApproval]) -> Decision:
        """Who reads the request: its requester and the governance roles that oversee searches;
        any other reader only within the access restrictions of every library of it (L-13)."""
        if actor.user_id == self.requester_id or any(actor.has(r) for r in OVERSIGHT_ROLES):
            return Decision.allow("A-05")
        return self._within_access_of_all(actor, approvals)

    def _within_access_of_all(self, actor: Actor, approvals: Mapping[str, LibraryApproval]) -> Decision:
        """L-13 for every library of the request; ``approvals`` maps each library id to its approval."""
        return combine(*(within_access(approvals.get(lib), actor) for lib in self.libraries))

    def _within_access_of_candidate(
        self, actor: Actor, candidate_id: str, approvals: Mapping[str, LibraryApproval]
    ) -> Decision:
        candidate = self.candidate_list.get(candidate_id)
        if candidate is None:
            return Decision.allow()  # no such candidate: the command's own check refuses it
        return within_access(approvals.get(candidate.library_id), actor)

    def _open(self) -> Decision:
        return Decision.check(
            self.status is RequestStatus.OPEN, "S-01", f"the request is {self.status.value}"
        )
