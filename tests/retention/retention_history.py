"""Histories for the retention tests, built through the services on a fake clock.

A ``History`` wraps the biometric service tests' ``World`` (real engine, encrypted store and
usearch indexes over real photos) and adds the governance services over the same store and
clock, so approvals, libraries, probes, searches, adjudications and the cache are the same
commands a user would run, legal holds (R-04) included: the SRO places and lifts them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs
import domain_builders
from service_builders import World, item

from rfr.application.services.biometric_support import Biometrics, library_image_records
from rfr.application.services.enrolment import EnrolmentReport
from rfr.application.services.legal_holds import HoldKind, HoldSubject, LegalHolds
from rfr.application.services.libraries import ReferenceLibraries
from rfr.application.services.library_approvals import LibraryApprovals
from rfr.application.services.retention import RetentionSummary, RetentionSweep
from rfr.application.services.searches import SearchRequests
from rfr.application.services.ucc import UccEntries
from rfr.domain.calendar import add_years
from rfr.domain.forms import AccessRestriction, ApprovalRecord, LegalHold
from rfr.domain.images import ImageLevel, MopiGroup, PerceivedAgeBand
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.search_terms import SearchGround, SearchPurpose


@attrs.frozen
class Library:
    approval_id: UUID
    library_id: UUID
    enrolled: EnrolmentReport

    @property
    def image_ids(self) -> list[str]:
        return [r.image_id for r in self.enrolled.enrolled]

    @property
    def template_ids(self) -> list[str]:
        return [r.template_id for r in self.enrolled.enrolled]


@attrs.define
class History:
    world: World
    photos: dict[str, list[Path]]
    approvals: LibraryApprovals = attrs.field(init=False)
    libraries: ReferenceLibraries = attrs.field(init=False)
    searches: SearchRequests = attrs.field(init=False)
    ucc: UccEntries = attrs.field(init=False)
    holds: LegalHolds = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        app, clock = self.world.app, self.world.clock
        self.approvals = LibraryApprovals(app, clock)
        self.libraries = ReferenceLibraries(app, clock)
        self.searches = SearchRequests(app, clock)
        self.ucc = UccEntries(app, clock)
        self.holds = LegalHolds(app, clock)

    @property
    def now(self) -> datetime:
        return self.world.clock.now()

    def advance(self, **delta: float) -> None:
        self.world.clock.advance(**delta)

    def sweep(self, biometrics: Callable[[], Biometrics] | None = None, **options: Any) -> RetentionSummary:
        return RetentionSweep(
            self.world.app, self.world.clock, biometrics or (lambda: self.world.bio), **options
        ).run()

    # -- libraries -----------------------------------------------------------------------------

    def library(
        self,
        name: str,
        identities: list[str],
        *,
        expires_at: datetime | None = None,
        retention_ends: date | None = None,
        photo: int = 0,
    ) -> Library:
        """A temporary library approved by a Superintendent, one photo per identity enrolled.

        ``retention_ends``: captured six years (adult, MOPI 3, R-01) before that day.
        """
        applied = self.approvals.apply("analyst", domain_builders.application(library_name=name))
        record = ApprovalRecord(
            rationale="needed for the investigation",
            access=AccessRestriction(teams={"team-a"}),
            image_level=ImageLevel.NON_COMPLIANT_POLICE,
            conditions="team A only",
            purposes=frozenset(SearchPurpose),
            review_due=self.now + timedelta(days=30),
            expires_at=expires_at,
        )
        self.approvals.approve("supt", applied.id, record)
        library_id = self.libraries.create("admin", name, applied.id).id
        facts: dict[str, Any] = {}
        if retention_ends is not None:
            facts = {
                "captured_on": add_years(retention_ends, -6),
                "age_at_capture": PerceivedAgeBand.ADULT,
                "mopi_group": MopiGroup.GROUP_3,
            }
        items = [item(self.photos[i][photo], subject=i, **facts) for i in identities]
        report = self.world.enrolment.enrol("admin", str(library_id), items)
        assert len(report.enrolled) == len(items), report.not_enrolled
        return Library(applied.id, library_id, report)

    def hold_library(self, library_id: UUID, hold: LegalHold) -> None:
        self.holds.place("sro", HoldSubject.LIBRARY, library_id, HoldKind(hold.kind), hold.reason)

    def lift_library_hold(self, library_id: UUID, reason: str) -> None:
        self.holds.lift("sro", HoldSubject.LIBRARY, library_id, reason)

    def image_stored(self, image_id: str) -> bool:
        return any(self.world.bio.store.exists(r) for r in library_image_records(image_id))

    def indexed(self, library_id: UUID, template_id: str) -> bool:
        return template_id in self.world.bio.index(str(library_id))

    # -- probes ----------------------------------------------------------------------------------

    def searched_probe(self, identity: str, library: Library) -> tuple[str, UUID]:
        """A probe of ``identity`` (a photo not enrolled) searched against ``library``: (probe, request)."""
        view = self.world.probes.submit(
            "analyst", domain_builders.form3(), self.photos[identity][2].read_bytes()
        )
        view = self.world.probes.select_faces(
            "analyst", view.probe_id, [view.faces[0].face_id], "the suspect"
        )
        if view.quality_flags:
            self.world.probes.decide_on_quality("analyst", view.probe_id, True, "clear enough to try")
        request = self.world.open_request(
            view.probe_id, self.world.app.get(library.library_id, ReferenceLibrary)
        )
        assert self.world.search.search_next("analyst", request.id) is not None
        return view.probe_id, request.id

    def adjudicate_top(self, request_id: UUID, viable: bool) -> None:
        top = self.searches.get("analyst", request_id).candidates[0]
        rationale = "same person" if viable else "a different person"
        self.searches.adjudicate(
            "analyst",
            request_id,
            top.candidate_id,
            viable,
            rationale,
            identity_known=True if viable else None,
        )

    def add_to_ucc(self, probe_id: str) -> None:
        self.ucc.add("inspector", probe_id, [SearchGround.OFFENCE], "the burglary is still unsolved")

    def hold_probe(self, probe_id: str, hold: LegalHold) -> None:
        self.holds.place("sro", HoldSubject.PROBE, probe_id, HoldKind(hold.kind), hold.reason)

    def probe_stored(self, probe_id: str) -> bool:
        return bool(self.world.bio.store.records(probe_id))

    def probe(self, probe_id: str) -> ProbeImage:
        return self.world.app.get(UUID(probe_id), ProbeImage)
