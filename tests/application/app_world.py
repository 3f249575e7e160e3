"""A populated installation for the governance service tests, on a real RfrApplication.

Users are registered through the services by a bootstrapped administrator, so every actor
is built from its User record (A-05). Probes are submitted and templated, libraries
enrolled and searched through the production use cases (``Probes``, ``Enrolment``,
``SearchExecution``) over the real encrypted store and exact index, with the fake face
engine of ``fake_biometrics`` (tiny synthetic images, deterministic templates), so every
potential match a test adjudicates was found by the production search.

``library`` is the exception: it enrols by the domain commands alone, naming templates
that no store holds (``tpl-<image id>`` of the domain builders' algorithm), for the tests
that only need a library's shape; such a library is never searchable by the engine (T-02).
``enrolled_library`` is the searchable one.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import weakref
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs

# The domain tests' builders (forms, records, images) are reused rather than copied.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "domain"))

import domain_builders as b
from fake_biometrics import FAKE_ALGORITHM_ID, face_image, fake_biometrics

from rfr.application.app import RfrApplication
from rfr.application.services.biometric_erasure import BiometricErasure
from rfr.application.services.biometric_support import Biometrics
from rfr.application.services.bootstrap import bootstrap_administrator
from rfr.application.services.endorsements import ProbeEndorsements
from rfr.application.services.enrolment import Enrolment, EnrolmentItem
from rfr.application.services.exceptions import PolicyExceptions
from rfr.application.services.libraries import ReferenceLibraries
from rfr.application.services.library_approvals import LibraryApprovals
from rfr.application.services.policy import PolicySettingsService
from rfr.application.services.probes import Probes
from rfr.application.services.search_execution import LibrarySearchResult, SearchExecution
from rfr.application.services.searches import LibrarySelection, SearchRequests
from rfr.application.services.ucc import UccEntries
from rfr.application.services.users import UserAdministration
from rfr.domain.forms import AccessRestriction, LibraryKind
from rfr.domain.images import ImageLevel, MopiGroup, PerceivedAgeBand
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.people import Actor, Rank, Role
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.rules_probe import EndorsementKind
from rfr.domain.user import User
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings

T0 = b.T0
# The algorithm of the world's engine: every template the production use cases make here.
ALG = FAKE_ALGORITHM_ID
# Potential matches kept per library searched (RFR_SEARCH_TOP_K in a deployment).
TOP_K = 2
# The store syncs every write to disk (SQLite synchronous=FULL, fsync of each file): five
# times slower per probe and library on a disk than in memory, so a world's biometrics go in
# a memory-backed folder where there is one.
_SHM = Path("/dev/shm")
_SCRATCH = str(_SHM) if _SHM.is_dir() and os.access(_SHM, os.W_OK) else None


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
    "ops": ({Role.OPERATIONS}, None, set()),
}


@attrs.define
class World:
    """Every governance service over one store, with builders of states the tests start from.

    ``bio``: the biometrics of the probes, enrolments and searches; by default the fake
    engine over a store and indexes in a temporary folder of this world's own, deleted
    with it.
    """

    app: RfrApplication
    clock: FixedClock
    bio: Biometrics = attrs.field(default=None)
    users: UserAdministration = attrs.field(init=False)
    policy: PolicySettingsService = attrs.field(init=False)
    approvals: LibraryApprovals = attrs.field(init=False)
    libraries: ReferenceLibraries = attrs.field(init=False)
    endorsements: ProbeEndorsements = attrs.field(init=False)
    searches: SearchRequests = attrs.field(init=False)
    ucc: UccEntries = attrs.field(init=False)
    exceptions: PolicyExceptions = attrs.field(init=False)
    enrolment: Enrolment = attrs.field(init=False)
    probes: Probes = attrs.field(init=False)
    execution: SearchExecution = attrs.field(init=False)
    erasure: BiometricErasure = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.bio is None:
            folder = Path(tempfile.mkdtemp(prefix="rfr-app-world-", dir=_SCRATCH))
            self.bio = fake_biometrics(folder, top_k=TOP_K)
            weakref.finalize(self, _remove_biometrics, self.bio, folder)
        for name, cls in [
            ("users", UserAdministration),
            ("policy", PolicySettingsService),
            ("approvals", LibraryApprovals),
            ("libraries", ReferenceLibraries),
            ("endorsements", ProbeEndorsements),
            ("searches", SearchRequests),
            ("ucc", UccEntries),
            ("exceptions", PolicyExceptions),
        ]:
            setattr(self, name, cls(self.app, self.clock))
        for name, biometric in [
            ("enrolment", Enrolment),
            ("probes", Probes),
            ("execution", SearchExecution),
            ("erasure", BiometricErasure),
        ]:
            setattr(self, name, biometric(self.app, self.clock, self.bio))

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
        """An approved and created library whose images and templates are domain records only:
        (approval id, library id). Image ``<name>-<i>`` has template ``tpl-<name>-<i>`` of the
        domain builders' algorithm, which no store holds: enough for the governance services,
        never searchable by the engine (use ``enrolled_library`` to search)."""
        approval_id = self.approved(**approval_kw)
        library_id = self.libraries.create("op-lead", name, approval_id).id
        library = self.app.get(library_id, ReferenceLibrary)
        approval = self.app.get(approval_id, LibraryApproval)
        at, admin = self.clock.now(), self.actor("op-lead")
        batch = library.enrol(admin, at, b.library_images(n, prefix=name), approval, b.CONFIG)
        batch.record_templates(admin, at, b.ALG, {i: f"tpl-{i}" for i in batch.images})
        self.app.save(batch)
        return approval_id, library_id

    def enrolled_library(
        self, name: str = "lib", n: int = 3, *, steps: int = 1, **approval_kw: Any
    ) -> tuple[UUID, UUID]:
        """An approved library, created and enrolled through the services: (approval id, library id).

        Image ``i`` (subject ``<name>-<i>``) lies ``steps + i`` steps from the face of
        ``probe``, so a search of this library ranks the images in enrolment order.
        """
        approval_id = self.approved(**approval_kw)
        library_id = self.libraries.create("op-lead", name, approval_id).id
        items = [
            EnrolmentItem(
                face_image(steps + i),
                date(2022, 1, 1),
                PerceivedAgeBand.ADULT,
                MopiGroup.GROUP_2,
                subject=f"{name}-{i}",
                name=f"{name}-{i}.png",
            )
            for i in range(n)
        ]
        report = self.enrolment.enrol("op-lead", str(library_id), items)
        assert len(report.enrolled) == n, report.not_enrolled
        return approval_id, library_id

    def image_ids(self, library_id: UUID) -> list[str]:
        """The library's image ids in enrolment order (for ``enrolled_library``: nearest first)."""
        return [row.image_id for row in self.app.library_images.page(str(library_id), 0, 500)]

    def probe(self, **form_overrides: Any) -> UUID:
        """A probe through the P-11 pipeline (submitted, its face selected, assessed and templated),
        endorsed as it needs; its face is ``face_image(0)``."""
        submitted = self.probes.submit("analyst", b.form3(**form_overrides), face_image(0))
        (face,) = submitted.faces
        self.probes.select_faces("analyst", submitted.probe_id, [face.face_id], "the suspect")
        probe_id = UUID(submitted.probe_id)
        probe = self.app.get(probe_id, ProbeImage)
        for kind in sorted(probe.required_endorsements(b.CONFIG)):
            if kind is EndorsementKind.VULNERABILITY:
                self.endorsements.record_technical_advice("analyst", probe_id, "FRT: expect lower scores")
            self.endorsements.endorse("inspector", probe_id, kind, "necessary and proportionate")
        return probe_id

    def search(self, request_id: UUID, library_id: UUID, *, user: str = "analyst") -> LibrarySearchResult:
        """The production search of one library of a request (S-04), ``TOP_K`` candidates at most."""
        return self.execution.search_library(user, request_id, str(library_id))

    def searched(self, n_candidates: int = TOP_K) -> tuple[UUID, UUID, UUID]:
        """A request opened by the analyst and searched once: (request id, probe id, library id)."""
        _, library_id = self.enrolled_library()
        probe_id = self.probe()
        request = self.searches.open(
            "analyst", probe_id, [LibrarySelection(str(library_id), "the suspect may be held here")]
        )
        found = self.execution.search_library("analyst", request.id, str(library_id), top_k=n_candidates)
        assert len(found.candidates) == n_candidates, found
        return request.id, probe_id, library_id


def _remove_biometrics(bio: Biometrics, folder: Path) -> None:
    close = getattr(bio.store, "close", None)
    if close is not None:
        close()
    shutil.rmtree(folder, ignore_errors=True)


def memory_app() -> RfrApplication:
    return RfrApplication(application_env(Settings(data_dir=Path("unused"), persistence="memory")))


def sqlite_app(data_dir: Path) -> RfrApplication:
    return RfrApplication(application_env(Settings(data_dir=data_dir, persistence="sqlite")))


def postgres_app(data_dir: Path) -> RfrApplication:
    """On the database and schema the environment names (the ``postgres_store`` fixture)."""
    env = {**os.environ, "RFR_DATA_DIR": str(data_dir), "RFR_PERSISTENCE": "postgres"}
    return RfrApplication(application_env(Settings.from_env(env)))
