"""A populated installation for the governance service tests, on a real RfrApplication.

Users are registered through the services by a bootstrapped administrator, so every actor
is built from its User record (A-05). The biometric steps (probe pipeline, enrolment,
templates) belong to other services; here they are run as the domain commands they end in
and saved in the same store, which is all the governance services read.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs

# The domain tests' builders (forms, records, images) are reused rather than copied.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "domain"))

import domain_builders as b

from rfr.application.app import RfrApplication
from rfr.application.services.bootstrap import bootstrap_administrator
from rfr.application.services.cache import UnresolvedCrimeCache
from rfr.application.services.endorsements import ProbeEndorsements
from rfr.application.services.exceptions import PolicyExceptions
from rfr.application.services.libraries import ReferenceLibraries
from rfr.application.services.library_approvals import LibraryApprovals
from rfr.application.services.policy import PolicySettingsService
from rfr.application.services.searches import LibrarySelection, SearchRequests
from rfr.application.services.users import UserAdministration
from rfr.domain.forms import AccessRestriction, LibraryKind
from rfr.domain.images import ImageLevel
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.people import Actor, Rank, Role
from rfr.domain.probe_image import FaceRegion, ProbeImage
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.rules_probe import EndorsementKind
from rfr.domain.user import User
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings

T0 = b.T0
ALG = b.ALG


class FixedClock:
    """A Clock that stands still until a test moves it; ``before_next`` runs once on the next read."""

    def __init__(self, now: datetime = T0) -> None:
        self._now = now
        self.before_next: Callable[[], None] | None = None

    def now(self) -> datetime:
        hook, self.before_next = self.before_next, None
        if hook is not None:
            hook()
        return self._now

    def advance(self, days: float = 0, hours: float = 0) -> None:
        self._now += timedelta(days=days, hours=hours)


# user id -> (roles, rank, teams); the ids match the actors of the domain builders.
STAFF: dict[str, tuple[set[Role], Rank | None, set[str]]] = {
    "admin2": ({Role.ADMINISTRATOR}, None, set()),
    "analyst": ({Role.RFR_USER}, None, {"team-a"}),
    "analyst-2": ({Role.RFR_USER}, None, {"team-a"}),
    "outsider": ({Role.RFR_USER}, None, {"team-z"}),
    "sergeant": ({Role.APPROVING_OFFICER, Role.RFR_USER}, Rank.SERGEANT, {"team-a"}),
    "inspector": ({Role.APPROVING_OFFICER}, Rank.INSPECTOR, {"team-a"}),
    "inspector-2": ({Role.APPROVING_OFFICER}, Rank.INSPECTOR, {"team-a"}),
    "supt": ({Role.APPROVING_OFFICER}, Rank.SUPERINTENDENT, set()),
    "sro": ({Role.SRO}, Rank.CHIEF_SUPERINTENDENT, set()),
    "op-lead": ({Role.OPERATIONAL_LEAD}, None, set()),
    "auditor": ({Role.AUDITOR}, None, set()),
}


@attrs.define
class World:
    """Every governance service over one store, with builders of states the tests start from."""

    app: RfrApplication
    clock: FixedClock
    users: UserAdministration = attrs.field(init=False)
    policy: PolicySettingsService = attrs.field(init=False)
    approvals: LibraryApprovals = attrs.field(init=False)
    libraries: ReferenceLibraries = attrs.field(init=False)
    endorsements: ProbeEndorsements = attrs.field(init=False)
    searches: SearchRequests = attrs.field(init=False)
    cache: UnresolvedCrimeCache = attrs.field(init=False)
    exceptions: PolicyExceptions = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        for name, cls in [
            ("users", UserAdministration),
            ("policy", PolicySettingsService),
            ("approvals", LibraryApprovals),
            ("libraries", ReferenceLibraries),
            ("endorsements", ProbeEndorsements),
            ("searches", SearchRequests),
            ("cache", UnresolvedCrimeCache),
            ("exceptions", PolicyExceptions),
        ]:
            setattr(self, name, cls(self.app, self.clock))

    def populate(self) -> World:
        bootstrap_administrator(self.app, self.clock, "admin")
        for user_id, (roles, rank, teams) in STAFF.items():
            self.users.register("admin", user_id, roles, rank=rank, teams=teams)
            self.users.record_training("admin", user_id, True, "completed RFR training")
        return self

    def actor(self, user_id: str) -> Actor:
        return self.app.get(User.id_for(user_id), User).actor()

    # -- states built through the services ---------------------------------------------------

    def approved(
        self,
        kind: LibraryKind = LibraryKind.TEMPORARY,
        *,
        level: ImageLevel = ImageLevel.NON_COMPLIANT_POLICE,
        access: AccessRestriction | None = None,
        **record_kw: Any,
    ) -> UUID:
        view = self.approvals.apply("analyst", b.application(kind))
        approver = "sro" if kind is LibraryKind.SUBSTANTIVE else "supt"
        record = b.record(self.clock.now(), level=level, access=access, **record_kw)
        return self.approvals.approve(approver, view.id, record).id

    def library(self, name: str = "lib", n: int = 3, **approval_kw: Any) -> tuple[UUID, UUID]:
        """An approved, created, enrolled and fully templated library: (approval id, library id)."""
        approval_id = self.approved(**approval_kw)
        library_id = self.libraries.create("op-lead", name, approval_id).id
        library = self.app.get(library_id, ReferenceLibrary)
        approval = self.app.get(approval_id, LibraryApproval)
        at, admin = self.clock.now(), self.actor("op-lead")
        ids = library.enrol_images(admin, at, b.library_images(n, prefix=name), approval, b.CONFIG)
        library.record_templates(admin, at, ALG, {i: f"tpl-{i}" for i in ids})
        self.app.save(library)
        return approval_id, library_id

    def probe(self, **form_overrides: Any) -> UUID:
        """A probe through the P-11 pipeline (selected, assessed, templated), endorsed as it needs."""
        at, analyst = self.clock.now(), self.actor("analyst")
        probe = ProbeImage.submit(analyst, at, b.form3(**form_overrides), "sha256:probe")
        probe.record_faces_detected(analyst, at, "cnn-mmod-v1", [FaceRegion("f1", 10, 10, 90, 90, 0.99)])
        probe.select_faces(analyst, at, ["f1"], "the suspect")
        probe.record_quality(analyst, at, "f1", {"inter_eye_px": 40.0}, [])
        probe.record_templates(analyst, at, ALG, {"f1": "probe-tpl-1"})
        self.app.save(probe)
        for kind in sorted(probe.required_endorsements(b.CONFIG)):
            if kind is EndorsementKind.VULNERABILITY:
                self.endorsements.record_technical_advice("analyst", probe.id, "FRT: expect lower scores")
            self.endorsements.endorse("inspector", probe.id, kind, "necessary and proportionate")
        return probe.id

    def candidates(self, library_id: UUID, n: int = 2) -> list[dict[str, Any]]:
        library = self.app.get(library_id, ReferenceLibrary)
        ids = library.searchable_image_ids(self.clock.now())[:n]
        return [
            {
                "rank": rank,
                "score": 0.9 - rank / 10,
                "library_id": str(library_id),
                "algorithm_id": ALG,
                "image_id": image_id,
                "template_id": f"tpl-{image_id}",
            }
            for rank, image_id in enumerate(ids, start=1)
        ]

    def searched(self, n_candidates: int = 2) -> tuple[UUID, UUID, UUID]:
        """A request opened by the analyst and searched once: (request id, probe id, library id)."""
        _, library_id = self.library()
        probe_id = self.probe()
        request = self.searches.open(
            "analyst", probe_id, [LibrarySelection(str(library_id), "the suspect may be held here")]
        )
        self.searches.record_search(
            "analyst",
            request.id,
            library_id=str(library_id),
            algorithm_id=ALG,
            candidates=self.candidates(library_id, n_candidates),
        )
        return request.id, probe_id, library_id


def memory_app() -> RfrApplication:
    return RfrApplication(application_env(Settings(data_dir=Path("unused"), persistence="memory")))


def sqlite_app(data_dir: Path) -> RfrApplication:
    return RfrApplication(application_env(Settings(data_dir=data_dir, persistence="sqlite")))
