"""Builders for the governance domain tests: fixed times, actors, forms and aggregates in known states."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from rfr.domain.decisions import PolicyRefusal
from rfr.domain.enrolment_batch import EnrolmentBatch
from rfr.domain.forms import AccessRestriction, ApprovalRecord, Form3, LibraryApplication, LibraryKind
from rfr.domain.images import ImageLevel, MopiGroup, PerceivedAgeBand
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.people import Actor, Rank, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.probe_image import FaceRegion, ProbeImage
from rfr.domain.reference_library import LibraryHoldings, LibraryImage, ReferenceLibrary
from rfr.domain.rules_probe import EndorsementKind
from rfr.domain.rules_search import Candidate
from rfr.domain.search_request import LibraryChoice, SearchRequest
from rfr.domain.search_terms import PreRfrChecks, PreRfrOption, SearchGround, SearchPurpose

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
ALG = "dlib-resnet-v1+cnn-mmod-v1+5pt"
CONFIG = PolicyConfig()

ANALYST = Actor("analyst", {Role.RFR_USER}, teams={"team-a"})
ANALYST_2 = Actor("analyst-2", {Role.RFR_USER}, teams={"team-a"})
OUTSIDER = Actor("outsider", {Role.RFR_USER}, teams={"team-z"})
SERGEANT = Actor("sergeant", {Role.APPROVING_OFFICER, Role.RFR_USER}, Rank.SERGEANT, {"team-a"})
INSPECTOR = Actor("inspector", {Role.APPROVING_OFFICER}, Rank.INSPECTOR, {"team-a"})
SUPERINTENDENT = Actor("supt", {Role.APPROVING_OFFICER}, Rank.SUPERINTENDENT)
SRO = Actor("sro", {Role.SRO}, Rank.CHIEF_SUPERINTENDENT)
ADMIN = Actor("admin", {Role.ADMINISTRATOR})
OP_LEAD = Actor("op-lead", {Role.OPERATIONAL_LEAD})


def at(days: float = 0) -> datetime:
    return T0 + timedelta(days=days)


def application(kind: LibraryKind = LibraryKind.TEMPORARY, **overrides: str) -> LibraryApplication:
    parts = {
        "library_name": "Op Example appeal images",
        "legal_basis": "common law policing purpose; held under DPA 2018 Part 3",
        "how_obtained_and_privacy_expectations": "supplied by the public after an appeal",
        "composition_quality_and_suitability": "about 400 stills, mostly frontal, adequate resolution",
        "elevated_privacy_or_human_rights": "none identified beyond Article 8",
        "necessity_and_proportionality": "only practical way to identify those present",
        "monitoring_and_assurance": "audit review monthly by the FR team",
    }
    parts.update(overrides)
    return LibraryApplication(kind=kind, **parts)


def record(
    when: datetime = T0,
    *,
    level: ImageLevel = ImageLevel.NON_COMPLIANT_POLICE,
    purposes: frozenset[SearchPurpose] = frozenset(SearchPurpose),
    review_days: int = 30,
    access: AccessRestriction | None = None,
    rationale: str = "needed for the investigation",
    expires_at: datetime | None = None,
) -> ApprovalRecord:
    return ApprovalRecord(
        rationale=rationale,
        access=access or AccessRestriction(teams={"team-a"}),
        image_level=level,
        conditions="search by team A only",
        purposes=purposes,
        review_due=when + timedelta(days=review_days),
        expires_at=expires_at,
    )


def approved(kind: LibraryKind = LibraryKind.TEMPORARY, when: datetime = T0, **record_kw) -> LibraryApproval:
    approval = LibraryApproval.apply_for(ANALYST, when, application(kind))
    approver = SRO if kind is LibraryKind.SUBSTANTIVE else SUPERINTENDENT
    approval.approve(approver, when, record(when, **record_kw), CONFIG)
    return approval


def library_images(n: int = 3, prefix: str = "img") -> list[LibraryImage]:
    return [
        LibraryImage(
            f"{prefix}-{i}",
            f"sha256:{prefix}{i}",
            date(2022, 1, 1),
            PerceivedAgeBand.ADULT,
            MopiGroup.GROUP_2,
        )
        for i in range(n)
    ]


def searchable_library(
    kind: LibraryKind = LibraryKind.TEMPORARY, when: datetime = T0, name: str = "lib", **record_kw
) -> tuple[LibraryApproval, ReferenceLibrary]:
    approval = approved(kind, when, **record_kw)
    library = ReferenceLibrary.create(ADMIN, when, name, approval)
    enrolled_into(library, approval, library_images(prefix=name), when)
    _APPROVALS[str(library.id)] = approval
    return approval, library


def enrolled_into(
    library: ReferenceLibrary,
    approval: LibraryApproval,
    images: list[LibraryImage],
    when: datetime = T0,
    *,
    templated: bool = True,
) -> EnrolmentBatch:
    """A batch of ``images`` enrolled into ``library`` (templated ``tpl-<image id>`` by ALG)."""
    batch = library.enrol(ADMIN, when, images, approval, CONFIG)
    if templated:
        batch.record_templates(ADMIN, when, ALG, {i: f"tpl-{i}" for i in batch.images})
    _BATCHES.setdefault(str(library.id), []).append(batch)
    return batch


def batch_of(library: ReferenceLibrary) -> EnrolmentBatch:
    """The first batch enrolled into ``library`` here (the images ``searchable_library`` made)."""
    return _BATCHES[str(library.id)][0]


# The enrolment batches of every library built here, by library id.
_BATCHES: dict[str, list[EnrolmentBatch]] = {}


# The approval of every library built here, by library id: what the application loads to let a
# search request's commands decide L-13.
_APPROVALS: dict[str, LibraryApproval] = {}


def approvals_of(request: SearchRequest) -> dict[str, LibraryApproval]:
    """The approvals of a request's libraries, as the application hands them to its commands (L-13)."""
    return {lib: _APPROVALS[lib] for lib in request.libraries if lib in _APPROVALS}


def form3(**overrides) -> Form3:
    fields = {
        "case_reference": "CASE-1",
        "purposes": {SearchPurpose.IDENTIFY},
        "grounds": {SearchGround.OFFENCE},
        "offence_code": "burglary",
        "image_level": ImageLevel.PUBLIC_WOULD_EXPECT,
        "necessity_and_proportionality": "suspect unidentified after CCTV trawl",
        "image_source": "shop CCTV",
        "source_sensitivity": "none",
        "most_current_image_confirmed": True,
        "perceived_age": PerceivedAgeBand.ADULT,
        "pre_rfr_checks": PreRfrChecks({PreRfrOption.LOCAL_ENQUIRIES}, "nobody recognised the suspect"),
    }
    fields.update(overrides)
    return Form3(**fields)


def ready_probe(when: datetime = T0, **form_overrides) -> ProbeImage:
    """A probe with one selected, assessed and templated face and every endorsement it needs."""
    probe = ProbeImage.submit(ANALYST, when, form3(**form_overrides), "sha256:probe")
    probe.record_faces_detected(ANALYST, when, "cnn-mmod-v1", [FaceRegion("f1", 10, 10, 90, 90, 0.99)])
    probe.select_faces(ANALYST, when, ["f1"], "the suspect")
    probe.record_quality(ANALYST, when, "f1", {"inter_eye_px": 40.0}, [])
    probe.record_templates(ANALYST, when, ALG, {"f1": "probe-tpl-1"})
    for kind in sorted(probe.required_endorsements(CONFIG)):
        if kind is EndorsementKind.VULNERABILITY:
            probe.record_technical_advice(ANALYST, when, "FRT: expect lower similarity scores")
        probe.endorse(INSPECTOR, when, kind, "necessary and proportionate", CONFIG)
    return probe


def refused(rule_id: str, command: Callable[[], Any], aggregate: Any = None) -> PolicyRefusal:
    """Run ``command`` expecting a refusal naming ``rule_id``.

    With ``aggregate``, also prove A-01: exactly one ``Refused`` event was added, it names the
    rule, and nothing else in the aggregate's state changed.
    """
    before = copy.deepcopy(dict(aggregate.state())) if aggregate is not None else None
    pending = len(aggregate.pending_events) if aggregate is not None else 0
    with pytest.raises(PolicyRefusal) as caught:
        command()
    assert rule_id in caught.value.rule_ids, caught.value
    if aggregate is not None:
        assert dict(aggregate.state()) == before
        added = aggregate.pending_events[pending:]
        assert [type(e).__name__ for e in added] == ["Refused"]
        assert rule_id in added[0].rule_ids
        assert aggregate.refusals[-1].rule_ids == caught.value.rule_ids
    return caught.value


def open_request(probe: ProbeImage, *libraries: tuple[LibraryApproval, ReferenceLibrary], when=T0, **kw):
    choices = [LibraryChoice(lib, appr, f"{lib.name} may hold the subject") for appr, lib in libraries]
    return SearchRequest.open(ANALYST, when, probe, choices, CONFIG, **kw)


def candidates_for(library: ReferenceLibrary, n: int = 2, algorithm_id: str = ALG) -> list[Candidate]:
    ids = batch_of(library).searchable_image_ids(T0)[:n]
    return [
        Candidate(rank, 0.9 - rank / 10, str(library.id), algorithm_id, image_id, f"tpl-{image_id}")
        for rank, image_id in enumerate(ids, start=1)
    ]


def holdings(library: ReferenceLibrary, at=T0, algorithm_id: str = ALG) -> LibraryHoldings:
    """What the library images projection would tell a decision about ``library`` at ``at``."""
    batches = _BATCHES.get(str(library.id), [])
    searchable = [(batch, batch.searchable_image_ids(at)) for batch in batches]
    complete = any(ids for _, ids in searchable) and all(
        i in batch.templates.get(algorithm_id, {}) for batch, ids in searchable for i in ids
    )
    return LibraryHoldings(
        str(library.id),
        frozenset({algorithm_id} if complete else ()),
        frozenset(t for batch in batches for t in batch.template_ids(algorithm_id, at)),
    )


def search(request: SearchRequest, probe: ProbeImage, pair, when=T0, candidates=None, actor: Actor = ANALYST):
    approval, library = pair
    request.search_library(
        actor,
        when,
        probe=probe,
        library=library,
        holdings=holdings(library, when),
        approval=approval,
        algorithm_id=ALG,
        candidates=candidates_for(library) if candidates is None else candidates,
        config=CONFIG,
    )
