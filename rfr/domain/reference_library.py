"""A reference library (gallery) and the life of its images (R-01, T-01, T-02, L-12).

Events hold image ids, content hashes, capture dates and template ids only, never image
bytes or vectors: those live in the BiometricStore and can be erased (R-05).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import uuid4

import attrs
from eventsourcing.domain import Aggregate

from rfr.domain.calendar import require_aware
from rfr.domain.decisions import Decision, combine
from rfr.domain.enrolment_batch import (
    LIBRARY_MANAGERS,
    MAX_BATCH_IMAGES,
    EnrolledImage,
    EnrolmentBatch,
    ImageHolder,
    LibraryImage,
)
from rfr.domain.forms import LibraryKind
from rfr.domain.governed import GovernedAggregate
from rfr.domain.images import ImageLevel
from rfr.domain.legal_holds import LegallyHoldable
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.people import Actor
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.refused_attempt import enforce_new
from rfr.domain.rules_access import authorised, stated

__all__ = ["LIBRARY_MANAGERS", "EnrolledImage", "LibraryHoldings", "LibraryImage", "ReferenceLibrary"]


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


class ReferenceLibrary(LegallyHoldable, ImageHolder):
    """A library: its approval, level and legal hold. Its images are held by enrolment batches
    (``enrolment_batch``); a library enrolled before batches existed holds those images itself,
    from its own ``ImagesEnrolled`` events, and takes the image commands about them."""

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
        """Images enrolled into the library itself, before enrolment batches (ADR 0013)."""

        enrolled: list[dict[str, Any]]
        not_enrolled: list[dict[str, Any]]

        def apply(self, agg: ReferenceLibrary) -> None:
            agg._hold(self.enrolled, self.timestamp)

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

    def enrol(
        self,
        actor: Actor,
        at: datetime,
        images: Sequence[LibraryImage],
        approval: LibraryApproval,
        config: PolicyConfig,
    ) -> EnrolmentBatch:
        """A new batch of this library's images, of what R-01 allows (the rest named with why).

        Refused here, on the library's record, when the library takes no images now: the
        caller's role, the approval (L-01, L-12), an empty or repeated offer.
        """
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
                    len(images) <= MAX_BATCH_IMAGES, "R-01", f"more than {MAX_BATCH_IMAGES} images"
                ),
                Decision.check(len(set(ids)) == len(ids), "R-01", "an image is offered twice"),
            ),
        )
        return EnrolmentBatch.enrolled(actor, at, str(self.id), images, config)

    def _under(self, approval: LibraryApproval, at: datetime) -> Decision:
        return combine(
            Decision.check(
                str(approval.id) == self.approval_id, "L-01", "that approval is not this library's"
            ),
            Decision.check(approval.in_force_at(at), "L-12", "the library's approval is not in force"),
        )
