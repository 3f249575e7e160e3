"""A reference library (gallery) and the life of its images (R-01, T-01, T-02, L-12).

Events hold image ids, content hashes, capture dates and template ids only, never image
bytes or vectors: those live in the BiometricStore and can be erased (R-05).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
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
from rfr.domain.retemplating import RETEMPLATING, RetemplatingJob
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
            agg.algorithm_id = None
            agg.retemplating = None
            agg.last_retemplating = None

    class RetemplatingStarted(GovernedAggregate.Event):
        """T-02: the library's templates are being regenerated with ``algorithm_id`` by job ``job_id``."""

        job_id: str
        algorithm_id: str

        def apply(self, agg: ReferenceLibrary) -> None:
            agg.retemplating = (self.job_id, self.algorithm_id)
            agg.last_retemplating = self.job_id

    class RetemplatingCompleted(GovernedAggregate.Event):
        """T-02: every searchable image is templated with ``algorithm_id``; the library is searched
        with it from now, and the ``replaced`` algorithms' templates are erased (R-05)."""

        job_id: str
        algorithm_id: str
        replaced: list[str]

        def apply(self, agg: ReferenceLibrary) -> None:
            agg.algorithm_id = self.algorithm_id
            agg.retemplating = None

    class RetemplatingEnded(GovernedAggregate.Event):
        """T-02: the job ended without switching the library (an image the new algorithm could not
        template); the library keeps the algorithm it had."""

        job_id: str

        def apply(self, agg: ReferenceLibrary) -> None:
            agg.retemplating = None

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

    def start_retemplating(
        self,
        actor: Actor,
        at: datetime,
        approval: LibraryApproval,
        *,
        algorithm: str,
        algorithm_id: str,
        templated_with: Collection[str],
        reason: str,
    ) -> RetemplatingJob:
        """T-02: a job regenerating the library's templates with ``algorithm_id``, named on the
        library; one at a time. ``templated_with``: the algorithms its live images have templates of
        (the library images projection)."""
        replaced = sorted(set(templated_with) - {algorithm_id})
        self._enforce(
            "start re-templating",
            actor,
            at,
            combine(
                authorised(actor, *LIBRARY_MANAGERS),
                self._under(approval, at),
                stated(algorithm_id, "T-01", "the algorithm id"),
                stated(reason, "T-02", "the reason for re-templating"),
                Decision.check(
                    self.retemplating is None,
                    "T-02",
                    f"a re-templating with {self.retemplating[1] if self.retemplating else ''} is under way",
                ),
                Decision.check(
                    bool(replaced) or algorithm_id not in templated_with,
                    "T-02",
                    f"the library is already templated with {algorithm} only",
                ),
            ),
        )
        job_id = uuid4()
        self._record(
            self.RetemplatingStarted, actor, at, reason, job_id=str(job_id), algorithm_id=algorithm_id
        )
        return RetemplatingJob.started(
            actor,
            at,
            job_id,
            library_id=str(self.id),
            algorithm=algorithm,
            algorithm_id=algorithm_id,
            replaced=replaced,
            reason=reason,
        )

    def complete_retemplating(
        self, at: datetime, job: RetemplatingJob, holdings: LibraryHoldings, *, searchable: int
    ) -> None:
        """T-02: the library switches to the job's algorithm only once every searchable image has
        a template of it (``holdings.searchable_with``, read from the projection for this save),
        or it has no searchable image (``searchable``) to template."""
        self._enforce(
            "complete re-templating",
            RETEMPLATING,
            at,
            combine(
                Decision.check(
                    self.retemplating == (str(job.id), job.algorithm_id),
                    "T-02",
                    "that is not the library's re-templating under way",
                ),
                Decision.check(
                    searchable == 0 or job.algorithm_id in holdings.searchable_with,
                    "T-02",
                    f"not every searchable image is templated with {job.algorithm}",
                ),
            ),
        )
        self._record(
            self.RetemplatingCompleted,
            RETEMPLATING,
            at,
            f"searched with {job.algorithm} from now (T-02)",
            job_id=str(job.id),
            algorithm_id=job.algorithm_id,
            replaced=list(job.replaced),
        )

    def end_retemplating(self, at: datetime, job: RetemplatingJob) -> None:
        self._enforce(
            "end re-templating",
            RETEMPLATING,
            at,
            Decision.check(
                self.retemplating is not None and self.retemplating[0] == str(job.id),
                "T-02",
                "that is not the library's re-templating under way",
            ),
        )
        self._record(
            self.RetemplatingEnded,
            RETEMPLATING,
            at,
            f"re-templating with {job.algorithm} ended incomplete; the library keeps its algorithm",
            job_id=str(job.id),
        )

    # -- queries ----------------------------------------------------------------------------

    def template_algorithms(self, templated_with: Collection[str], default: str) -> tuple[str, ...]:
        """T-01, T-02: the algorithms a new image of the library is templated with.

        The one it is searched with (recorded when it was last re-templated; else the one its live
        images are templated with; else the deployment's ``default``), and the one a re-templating
        under way moves it to, so that the job never races an enrolment to completion.
        """
        if self.algorithm_id is not None:
            current: tuple[str, ...] = (self.algorithm_id,)
        elif templated_with:
            current = tuple(sorted(templated_with))
        else:
            current = (default,)
        if self.retemplating is not None and self.retemplating[1] not in current:
            current = (*current, self.retemplating[1])
        return current

    def search_algorithm(self, searchable_with: Collection[str], default: str) -> str:
        """T-01, T-02: the one algorithm a search of the library compares with: the one recorded
        at its last re-templating, else the deployment's default, else the one algorithm that
        templates every searchable image. If none does, the default, which the search refuses."""
        for choice in (self.algorithm_id, default):
            if choice is not None and choice in searchable_with:
                return choice
        return sorted(searchable_with)[0] if searchable_with else default

    def _under(self, approval: LibraryApproval, at: datetime) -> Decision:
        return combine(
            Decision.check(
                str(approval.id) == self.approval_id, "L-01", "that approval is not this library's"
            ),
            Decision.check(approval.in_force_at(at), "L-12", "the library's approval is not in force"),
        )
