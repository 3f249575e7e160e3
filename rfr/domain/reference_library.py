"""A reference library (gallery) and the life of its images (R-01, T-01, T-02, L-12).

Events hold image ids, content hashes, capture dates and template ids only, never image
bytes or vectors: those live in the BiometricStore and can be erased (R-05).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from uuid import uuid4

import attrs
from eventsourcing.domain import Aggregate

from rfr.domain.calendar import require_aware
from rfr.domain.codec import from_data, to_data
from rfr.domain.decisions import Decision, combine
from rfr.domain.forms import LibraryKind
from rfr.domain.governed import GovernedAggregate
from rfr.domain.images import ImageLevel, MopiGroup, PerceivedAgeBand
from rfr.domain.legal_holds import LegallyHoldable
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.people import Actor, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.refused_attempt import enforce_new
from rfr.domain.retention import deletion_deadline, may_enrol, retention_end
from rfr.domain.rules_access import authorised, stated

LIBRARY_MANAGERS = (Role.ADMINISTRATOR, Role.OPERATIONAL_LEAD)


@attrs.frozen
class LibraryImage:
    """An image offered for enrolment: identity, integrity and the facts R-01 needs."""

    image_id: str
    content_hash: str
    captured_on: date
    age_at_capture: PerceivedAgeBand
    mopi_group: MopiGroup


@attrs.frozen
class EnrolledImage:
    image: LibraryImage
    retention_until: date
    enrolled_at: datetime
    expired_at: datetime | None = None
    deletion_due: datetime | None = None
    purged_at: datetime | None = None

    @property
    def searchable(self) -> bool:
        return self.expired_at is None and self.purged_at is None


@attrs.frozen
class LibraryHoldings:
    """What a decision about a library's images knows of them: read for that decision from the
    library images projection (ADR 0013), never by loading every image of the library.

    ``searchable_with``: the algorithms that template every searchable image now (T-02).
    ``searchable_templates``: of the templates the decision names, those the library may still
    search (R-01, L-12, R-05).
    """

    library_id: str
    searchable_with: frozenset[str]
    searchable_templates: frozenset[str]


class ReferenceLibrary(LegallyHoldable):
    class Created(GovernedAggregate.Event, Aggregate.Created):
        name: str
        approval_id: str
        kind: str
        approved_level: int

        def apply(self, agg: ReferenceLibrary) -> None:
            agg.name = self.name
            agg.approval_id = self.approval_id
            agg.kind = LibraryKind(self.kind)
            agg.approved_level = ImageLevel(self.approved_level)
            agg.images = {}
            agg.templates = {}
            agg.legal_hold = None

    class ImagesEnrolled(GovernedAggregate.Event):
        enrolled: list[dict[str, Any]]
        not_enrolled: list[dict[str, Any]]

        def apply(self, agg: ReferenceLibrary) -> None:
            for item in self.enrolled:
                image = from_data(LibraryImage, item["image"])
                agg.images[image.image_id] = EnrolledImage(
                    image, date.fromisoformat(item["retention_until"]), self.timestamp
                )

    class TemplatesBuilt(GovernedAggregate.Event):
        algorithm_id: str
        templates: dict[str, str]

        def apply(self, agg: ReferenceLibrary) -> None:
            agg.templates.setdefault(self.algorithm_id, {}).update(self.templates)

    class ImageRetentionExpired(GovernedAggregate.Event):
        image_ids: list[str]
        deletion_due: datetime

        def apply(self, agg: ReferenceLibrary) -> None:
            for image_id in self.image_ids:
                agg.images[image_id] = attrs.evolve(
                    agg.images[image_id], expired_at=self.timestamp, deletion_due=self.deletion_due
                )

    class ImagesPurged(GovernedAggregate.Event):
        image_ids: list[str]
        template_ids: list[str]

        def apply(self, agg: ReferenceLibrary) -> None:
            for image_id in self.image_ids:
                agg.images[image_id] = attrs.evolve(agg.images[image_id], purged_at=self.timestamp)
            for by_image in agg.templates.values():
                for image_id in self.image_ids:
                    by_image.pop(image_id, None)

    # -- commands ---------------------------------------------------------------------------

    @classmethod
    def create(cls, actor: Actor, at: datetime, name: str, approval: LibraryApproval) -> ReferenceLibrary:
        """A library exists only under an approval in force (L-01), at its approved level (L-11)."""
        decision = combine(
            authorised(actor, *LIBRARY_MANAGERS),
            stated(name, "L-04", "the library name"),
            Decision.check(approval.in_force_at(at), "L-01", "the library's approval is not in force"),
        )
        enforce_new("create library", "ReferenceLibrary", actor, at, decision)
        return cls._create(
            cls.Created,
            id=uuid4(),
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason=f"library created under approval {approval.id}",
            name=name,
            approval_id=str(approval.id),
            kind=approval.kind.value,
            approved_level=int(approval.approved_level),
        )

    def enrol_images(
        self,
        actor: Actor,
        at: datetime,
        images: Sequence[LibraryImage],
        approval: LibraryApproval,
        config: PolicyConfig,
    ) -> tuple[str, ...]:
        """Enrol what R-01 allows; the rest is named in the event with why. Returns the enrolled ids."""
        duplicates = [i.image_id for i in images if i.image_id in self.images]
        ids = [i.image_id for i in images]
        self._enforce(
            "enrol images",
            actor,
            at,
            combine(
                authorised(actor, *LIBRARY_MANAGERS),
                self._under(approval, at),
                Decision.check(bool(images), "R-01", "no images offered"),
                Decision.check(
                    not duplicates and len(set(ids)) == len(ids), "R-01", f"already enrolled: {duplicates}"
                ),
            ),
        )
        enrolled, refused = [], []
        for image in images:
            verdict = may_enrol(image.captured_on, image.age_at_capture, image.mopi_group, at, config)
            if verdict.allowed:
                end = retention_end(image.captured_on, image.age_at_capture, image.mopi_group, config)
                enrolled.append({"image": to_data(image), "retention_until": end.isoformat()})
            else:
                refused.append(
                    {"image_id": image.image_id, "rule_ids": list(verdict.rule_ids), "reason": verdict.reason}
                )
        self._record(
            self.ImagesEnrolled,
            actor,
            at,
            f"{len(enrolled)} enrolled, {len(refused)} not enrolled (R-01)",
            enrolled=enrolled,
            not_enrolled=refused,
        )
        return tuple(e["image"]["image_id"] for e in enrolled)

    def record_templates(
        self, actor: Actor, at: datetime, algorithm_id: str, templates: Mapping[str, str]
    ) -> None:
        """T-01: templates of searchable images, each under the algorithm that made it."""
        unknown = sorted(i for i in templates if i not in self.images or not self.images[i].searchable)
        self._enforce(
            "record templates",
            actor,
            at,
            combine(
                authorised(actor, *LIBRARY_MANAGERS),
                stated(algorithm_id, "T-01", "the algorithm id"),
                Decision.check(not unknown, "T-01", f"not searchable images of this library: {unknown}"),
            ),
        )
        self._record(
            self.TemplatesBuilt,
            actor,
            at,
            f"{len(templates)} templates by {algorithm_id}",
            algorithm_id=algorithm_id,
            templates=dict(templates),
        )

    def expire_images(self, actor: Actor, at: datetime, config: PolicyConfig) -> tuple[str, ...]:
        """R-01: images past their limit leave searching at once and are due for deletion."""
        due = sorted(i for i, e in self.images.items() if e.searchable and e.retention_until <= at.date())
        self._enforce(
            "expire images",
            actor,
            at,
            combine(authorised(actor), Decision.check(bool(due), "R-01", "none expired")),
        )
        self._record(
            self.ImageRetentionExpired,
            actor,
            at,
            "retention limit reached (R-01)",
            image_ids=due,
            deletion_due=deletion_deadline(at, config),
        )
        return tuple(due)

    def purge_images(self, actor: Actor, at: datetime, image_ids: Sequence[str], reason: str) -> None:
        """R-05: the fact of deletion stays; the store has already destroyed the bytes and vectors."""
        unknown = sorted(i for i in image_ids if i not in self.images or self.images[i].purged_at is not None)
        self._enforce(
            "purge images",
            actor,
            at,
            combine(
                authorised(actor, *LIBRARY_MANAGERS),
                self._not_held(),
                stated(reason, "R-05", "the reason for deletion"),
                Decision.check(bool(image_ids) and not unknown, "R-05", f"not purgeable: {unknown}"),
            ),
        )
        template_ids = sorted(t for by in self.templates.values() for i, t in by.items() if i in image_ids)
        self._record(
            self.ImagesPurged, actor, at, reason, image_ids=list(image_ids), template_ids=template_ids
        )

    # -- queries ----------------------------------------------------------------------------

    def searchable_image_ids(self, t: datetime) -> tuple[str, ...]:
        return tuple(i for i, e in self.images.items() if e.searchable and e.retention_until > t.date())

    def template_ids(self, algorithm_id: str, t: datetime) -> tuple[str, ...]:
        by_image = self.templates.get(algorithm_id, {})
        return tuple(by_image[i] for i in self.searchable_image_ids(t) if i in by_image)

    def searchable_with(self, algorithm_id: str, t: datetime) -> bool:
        """T-02: only once every searchable image has a template of this algorithm."""
        ids = self.searchable_image_ids(t)
        by_image = self.templates.get(algorithm_id, {})
        return bool(ids) and all(i in by_image for i in ids)

    def _under(self, approval: LibraryApproval, at: datetime) -> Decision:
        return combine(
            Decision.check(
                str(approval.id) == self.approval_id, "L-01", "that approval is not this library's"
            ),
            Decision.check(approval.in_force_at(at), "L-12", "the library's approval is not in force"),
        )
