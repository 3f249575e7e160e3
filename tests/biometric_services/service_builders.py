"""Builders of the biometric service tests: a World of services over real photos.

The engine is built once per session (model conversion takes seconds) in a session folder.
Each test gets its own data folder, in-memory event store and users, so tests never share
state. Governance steps the tests need (approvals, libraries, search requests, the cache)
are taken with the domain's own commands, so these tests depend only on the domain.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import attrs
import numpy as np
from PIL import Image

from rfr.application.app import RfrApplication
from rfr.application.face_engine import FaceEngine
from rfr.application.services.biometric_erasure import BiometricErasure
from rfr.application.services.biometric_support import Biometrics
from rfr.application.services.enrolment import Enrolment, EnrolmentItem
from rfr.application.services.probes import Probes
from rfr.application.services.search_execution import SearchExecution
from rfr.application.services.ucc_screening import UccScreening
from rfr.domain.forms import AccessRestriction, ApprovalRecord
from rfr.domain.images import ImageLevel, MopiGroup, PerceivedAgeBand
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.people import Actor, Rank, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.search_request import LibraryChoice, SearchRequest
from rfr.domain.search_terms import SearchPurpose
from rfr.domain.user import User
from rfr.entrypoints.composition import embedded_biometrics
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "domain"))
import domain_builders

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
ROOT = Actor("root", {Role.ADMINISTRATOR})

USERS = {
    "admin": ({Role.ADMINISTRATOR}, None, set()),
    "analyst": ({Role.RFR_USER}, None, {"team-a"}),
    "analyst-2": ({Role.RFR_USER}, None, {"team-a"}),
    "outsider": ({Role.RFR_USER}, None, {"team-z"}),
    "inspector": ({Role.APPROVING_OFFICER}, Rank.INSPECTOR, {"team-a"}),
    "supt": ({Role.APPROVING_OFFICER}, Rank.SUPERINTENDENT, set()),
    "sro": ({Role.SRO}, Rank.CHIEF_SUPERINTENDENT, set()),
}

# Ten LFW identities with at least three single-face photos: two enrolled, one held back.
IDENTITIES = (
    "adam_sandler",
    "andy_roddick",
    "angelo_reyes",
    "anne_mclellan",
    "barbara_walters",
    "benjamin_netanyahu",
    "bill_simon",
    "billy_crystal",
    "bob_graham",
    "carlos_moya",
)


class FixedClock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def now(self) -> datetime:
        return self.t

    def advance(self, **delta: float) -> None:
        self.t += timedelta(**delta)


@attrs.define
class World:
    """One deployment: event store, clock, biometric store and the services under test."""

    app: RfrApplication
    clock: FixedClock
    bio: Biometrics
    data_dir: Path
    enrolment: Enrolment
    probes: Probes
    search: SearchExecution
    erasure: BiometricErasure
    ucc: UccScreening
    config: PolicyConfig = attrs.field(factory=PolicyConfig)

    def actor(self, user_id: str) -> Actor:
        return self.app.get(User.id_for(user_id), User).actor()

    def library(
        self, name: str = "LFW custody images", level: ImageLevel = ImageLevel.NON_COMPLIANT_POLICE
    ) -> tuple[LibraryApproval, ReferenceLibrary]:
        at = self.clock.now()
        approval = LibraryApproval.apply_for(self.actor("analyst"), at, domain_builders.application())
        record = ApprovalRecord(
            rationale="needed for the investigation",
            access=AccessRestriction(teams={"team-a"}),
            image_level=level,
            conditions="team A only",
            purposes=frozenset(SearchPurpose),
            review_due=at + timedelta(days=30),
        )
        approval.approve(self.actor("supt"), at, record, self.config)
        library = ReferenceLibrary.create(self.actor("admin"), at, name, approval)
        self.app.save(approval, library)
        return approval, library

    def open_request(self, probe_id: str, *libraries: ReferenceLibrary, urgency=None) -> SearchRequest:
        probe = self.app.get(UUID(str(probe_id)), ProbeImage)
        fresh = [self.app.get(lib.id, ReferenceLibrary) for lib in libraries]
        choices = [
            LibraryChoice(lib, self.app.get(UUID(lib.approval_id), LibraryApproval), f"{lib.name}: relevant")
            for lib in fresh
        ]
        request = SearchRequest.open(
            self.actor("analyst"), self.clock.now(), probe, choices, self.config, urgency=urgency
        )
        self.app.save(request)
        return request


def single_face_photos(shared_faces: Path) -> dict[str, list[Path]]:
    """Single-face LFW photos per identity, in file order."""
    with (shared_faces / "manifest.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    found: dict[str, list[Path]] = {}
    for row in rows:
        if row["source"] == "lfw" and row["faces_in_image"] == "1":
            found.setdefault(row["identity"], []).append(shared_faces / row["path"])
    return {k: sorted(v) for k, v in found.items()}


def make_world(root: Path, engine: FaceEngine, persistence: str = "memory") -> World:
    """A deployment under ``root`` (data in ``root/data``) with the users of ``USERS``, all trained.

    ``persistence="sqlite"`` puts the events where a worker process over ``root/data`` reads them.
    """
    settings = Settings(data_dir=root / "data", persistence=persistence, ort_threads=2)
    app = RfrApplication(application_env(settings))
    clock = FixedClock(T0)
    for user_id, (roles, rank, teams) in USERS.items():
        user = User.register(ROOT, T0, user_id, roles, rank=rank, teams=teams)
        user.record_training(ROOT, T0, True, "completed RFR training")
        app.save(user)
    bio = embedded_biometrics(settings, engine, import_root=root / "imports")
    return World(
        app,
        clock,
        bio,
        settings.data_dir,
        Enrolment(app, clock, bio),
        Probes(app, clock, bio),
        SearchExecution(app, clock, bio),
        BiometricErasure(app, clock, bio),
        UccScreening(app, clock, bio),
    )


def item(path: Path, subject: str | None = None, **overrides) -> EnrolmentItem:
    fields = {
        "data": path.read_bytes(),
        "captured_on": date(2022, 5, 1),
        "age_at_capture": PerceivedAgeBand.ADULT,
        "mopi_group": MopiGroup.GROUP_2,
        "subject": subject,
        "name": path.name,
    }
    fields.update(overrides)
    return EnrolmentItem(**fields)


def gallery_items(
    photos: dict[str, list[Path]], identities: Iterable[str] = IDENTITIES
) -> list[EnrolmentItem]:
    """The first two photos of each identity; the third is held back as a probe."""
    return [item(p, subject=identity) for identity in identities for p in photos[identity][:2]]


def side_by_side(*paths: Path) -> bytes:
    """PNG of photos placed left to right on a grey canvas: a probe with several faces."""
    images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    height = max(i.shape[0] for i in images)
    gap = 40
    canvas = np.full((height, sum(i.shape[1] for i in images) + gap * (len(images) - 1), 3), 128, np.uint8)
    x = 0
    for image in images:
        canvas[: image.shape[0], x : x + image.shape[1]] = image
        x += image.shape[1] + gap
    out = io.BytesIO()
    Image.fromarray(canvas).save(out, "PNG")
    return out.getvalue()


def store_files(world: World) -> list[Path]:
    return [p for p in (world.data_dir / "biometrics" / "blobs").rglob("*") if p.is_file()]
