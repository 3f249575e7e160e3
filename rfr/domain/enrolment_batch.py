"""The images of a library and their life (R-01, R-05, T-01), held by the batch that enrolled them.

A library holds library-level facts (its approval, level, legal hold); the facts of its images
live in the enrolment batch that enrolled them (ADR 0013), at most a few hundred images each.
So enrolling creates a new batch, and expiring or purging an image loads the batch holding it
(found through the library images projection), whatever the size of the library. No rule
needs all of a library's images at once; the one fact across images, that an image is not
enrolled twice in a library, is the projection's unique key.

``ImageHolder`` is what a batch holds and decides. A library enrolled before batches existed
holds its images itself, from its ``ReferenceLibrary.ImagesEnrolled`` events, and takes the
same commands about them.

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
from rfr.domain.forms import LegalHold
from rfr.domain.governed import GovernedAggregate
from rfr.domain.images import MopiGroup, PerceivedAgeBand
from rfr.domain.people import Actor, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.retention import deletion_deadline, may_enrol, retention_end
from rfr.domain.rules_access import authorised, stated

LIBRARY_MANAGERS = (Role.ADMINISTRATOR, Role.OPERATIONAL_LEAD)
# Images one batch holds at most: an upload, or one recorded batch of a folder import.
MAX_BATCH_IMAGES = 500


@attrs.frozen
class LibraryImage:
    """An image offered for enrolment: identity, integrity and the facts R-01 needs."""

    image_id: str
    content_hash: str
    captured_on: date
    age_at_capture: PerceivedAgeBand
    mopi_group: MopiGroup
    # A short video enrolled (ADR 0026): the frame its subject's face was taken from, and its time.
    frame_index: int | None = None
    time_ms: int | None = None


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


def enrolment_verdicts(
    images: Sequence[LibraryImage], at: datetime, config: PolicyConfig
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """R-01 for each image: (enrolled, with the retention it gets; not enrolled, with why)."""
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
    return enrolled, refused


class ImageHolder(GovernedAggregate):
    """Holds the facts of some images of a library and decides about them (R-01, R-05, T-01)."""

    # Subclasses set ``images`` and ``templates`` when created; no class-level annotation, since
    # eventsourcing would take it for a constructor argument.

    class TemplatesBuilt(GovernedAggregate.Event):
        algorithm_id: str
        templates: dict[str, str]

        def apply(self, agg: ImageHolder) -> None:
            agg.templates.setdefault(self.algorithm_id, {}).update(self.templates)

    class TemplatesErased(GovernedAggregate.Event):
        """R-05, T-02: templates of a replaced algorithm erased from the store and the index."""

        algorithm_id: str
        template_ids: list[str]

        def apply(self, agg: ImageHolder) -> None:
            gone = set(self.template_ids)
            by_image = agg.templates.get(self.algorithm_id, {})
            for image_id in [i for i, t in by_image.items() if t in gone]:
                del by_image[image_id]
            if not by_image:
                agg.templates.pop(self.algorithm_id, None)

    class ImageRetentionExpired(GovernedAggregate.Event):
        image_ids: list[str]
        deletion_due: datetime

        def apply(self, agg: ImageHolder) -> None:
            for image_id in self.image_ids:
                agg.images[image_id] = attrs.evolve(
                    agg.images[image_id], expired_at=self.timestamp, deletion_due=self.deletion_due
                )

    class ImagesPurged(GovernedAggregate.Event):
        image_ids: list[str]
        template_ids: list[str]

        def apply(self, agg: ImageHolder) -> None:
            for image_id in self.image_ids:
                agg.images[image_id] = attrs.evolve(agg.images[image_id], purged_at=self.timestamp)
            for by_image in agg.templates.values():
                for image_id in self.image_ids:
                    by_image.pop(image_id, None)

    def _hold(self, enrolled: Sequence[dict[str, Any]], at: datetime) -> None:
        for item in enrolled:
            image = from_data(LibraryImage, item["image"])
            self.images[image.image_id] = EnrolledImage(
                image, date.fromisoformat(item["retention_until"]), at
            )

    # -- commands ---------------------------------------------------------------------------

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

    def erase_templates(
        self, actor: Actor, at: datetime, algorithm_id: str, template_ids: Sequence[str], reason: str
    ) -> None:
        """R-05, T-02: the templates of a replaced algorithm; the store has already erased them."""
        held = set(self.templates.get(algorithm_id, {}).values())
        unknown = sorted(set(template_ids) - held)
        self._enforce(
            "erase templates",
            actor,
            at,
            combine(
                authorised(actor),
                stated(reason, "R-05", "the reason for erasure"),
                Decision.check(
                    bool(template_ids) and not unknown, "R-05", f"not templates held here: {unknown}"
                ),
            ),
        )
        self._record(
            self.TemplatesErased,
            actor,
            at,
            reason,
            algorithm_id=algorithm_id,
            template_ids=sorted(template_ids),
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

    def purge_images(
        self, actor: Actor, at: datetime, image_ids: Sequence[str], reason: str, *, hold: LegalHold | None
    ) -> None:
        """R-05: the fact of deletion stays; the store has already destroyed the bytes and vectors.

        ``hold``: the legal hold on the library (R-04), which suspends deletion.
        """
        unknown = sorted(i for i in image_ids if i not in self.images or self.images[i].purged_at is not None)
        self._enforce(
            "purge images",
            actor,
            at,
            combine(
                authorised(actor, *LIBRARY_MANAGERS),
                Decision.check(hold is None, "R-04", "a legal hold suspends deletion"),
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
        """T-02 of these images: every searchable one has a template of this algorithm."""
        ids = self.searchable_image_ids(t)
        by_image = self.templates.get(algorithm_id, {})
        return bool(ids) and all(i in by_image for i in ids)


class EnrolmentBatch(ImageHolder):
    """Images enrolled into one library at once, and everything that happens to them after."""

    class Enrolled(ImageHolder.Event, Aggregate.Created):
        library_id: str
        enrolled: list[dict[str, Any]]
        not_enrolled: list[dict[str, Any]]

        def apply(self, agg: EnrolmentBatch) -> None:
            agg.library_id = self.library_id
            agg.images = {}
            agg.templates = {}
            agg._hold(self.enrolled, self.timestamp)
            agg._refused = {r["image_id"]: (tuple(r["rule_ids"]), r["reason"]) for r in self.not_enrolled}

    @classmethod
    def enrolled(
        cls, actor: Actor, at: datetime, library_id: str, images: Sequence[LibraryImage], config: PolicyConfig
    ) -> EnrolmentBatch:
        """What R-01 allows of ``images`` is enrolled; the rest is named in the event with why.

        The library decides first whether it takes images at all (``ReferenceLibrary.enrol``).
        """
        enrolled, refused = enrolment_verdicts(images, at, config)
        return cls._create(
            cls.Enrolled,
            id=uuid4(),
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason=f"{len(enrolled)} enrolled, {len(refused)} not enrolled (R-01)",
            library_id=library_id,
            enrolled=enrolled,
            not_enrolled=refused,
        )

    @property
    def refused(self) -> dict[str, tuple[tuple[str, ...], str]]:
        """The images R-01 did not enrol: image id -> (rule ids, reason)."""
        return self._refused
