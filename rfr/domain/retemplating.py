"""Re-templating a library (T-02): its templates regenerated from its stored images with another
algorithm, as a job that survives the process running it.

A library manager starts it (``ReferenceLibrary.start_retemplating``, which names the job on the
library); the job then runs in one process at a time, its *runner*, which records each batch it
templated (``Progressed``, with the enrolment position reached, so a job resumed after its
runner died carries on from there), then the library's switch to the new algorithm (recorded
on the library), then the old algorithm's templates erased (R-05), batch by batch, and its end.

A job whose runner died is not ended: it is resumed by whoever asks for it again (the same
request over the API, or ``rfr retemplate`` again); the new runner records that it took the
job up. Every step is idempotent (an image already templated with the new algorithm is
skipped; a template already erased is not erased again), so a batch cut short by a crash is
simply done again.

Everything after ``Started`` is recorded by ``RETEMPLATING``, the server's re-templating
machinery, on the authority of the person who started (or resumed) the job; the templates
themselves are recorded on the library's batches in that person's name. Events hold counts,
ids, algorithm ids and enrolment positions; never an image or a template (ADR 0004).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate

from rfr.domain.calendar import require_aware
from rfr.domain.decisions import Decision, combine
from rfr.domain.governed import GovernedAggregate
from rfr.domain.people import Actor

RETEMPLATING = Actor("rfr:retemplating")

# Images named per event as not templated by the new algorithm (and why): one batch's worth.
MAX_NAMED_PER_EVENT = 500


class RetemplatingStatus(enum.StrEnum):
    # Templating the library's images with the new algorithm.
    TEMPLATING = "templating"
    # The library is searched with the new algorithm; the old templates are being erased.
    ERASING = "erasing"
    COMPLETED = "completed"
    # Some searchable image could not be templated with the new algorithm: the library stays
    # searchable with the old one (T-02) until those images are dealt with.
    INCOMPLETE = "incomplete"


def still_open(job: RetemplatingJob) -> Decision:
    """A-01: a job's recorded end is final."""
    return Decision.check(
        job.ended_at is None,
        "A-01",
        f"the re-templating already ended ({job.status.value}); its end is final",
    )


class RetemplatingJob(GovernedAggregate):
    """One library's re-templating with one algorithm; its id is the job id."""

    class Started(GovernedAggregate.Event, Aggregate.Created):
        library_id: str
        algorithm: str  # the name a deployment configures (e.g. "sface")
        algorithm_id: str  # T-01: the full id, stages and versions
        replaced: list[str]  # the algorithm ids the library was templated with

        def apply(self, agg: RetemplatingJob) -> None:
            agg.library_id = self.library_id
            agg.algorithm = self.algorithm
            agg.algorithm_id = self.algorithm_id
            agg.replaced = tuple(self.replaced)
            agg.started_by = self.acting.user_id
            agg.started_at = self.timestamp
            agg.status = RetemplatingStatus.TEMPLATING
            agg.runner = None
            agg.position = 0
            agg.examined = 0
            agg.templated = 0
            agg.not_templated = {}
            agg.erased = 0
            agg.ended_at = None

    class TakenUp(GovernedAggregate.Event):
        """A runner took the job up: at its start, or to resume it after its last runner died."""

        runner: str
        on_behalf_of: str

        def apply(self, agg: RetemplatingJob) -> None:
            agg.runner = self.runner

    class Progressed(GovernedAggregate.Event):
        """A batch of the library's images, up to enrolment position ``position``, was templated."""

        position: int
        examined: int
        templated: int
        not_templated: dict[str, str]  # image id -> why the new algorithm made no template

        def apply(self, agg: RetemplatingJob) -> None:
            agg.position = self.position
            agg.examined += self.examined
            agg.templated += self.templated
            agg.not_templated.update(self.not_templated)

    class Switched(GovernedAggregate.Event):
        """Every searchable image is templated with the new algorithm; the library is now searched
        with it, and the old templates are erased next."""

        def apply(self, agg: RetemplatingJob) -> None:
            agg.status = RetemplatingStatus.ERASING

    class ErasureProgressed(GovernedAggregate.Event):
        """``count`` more templates of the replaced algorithms were erased (R-05)."""

        count: int

        def apply(self, agg: RetemplatingJob) -> None:
            agg.erased += self.count

    class Completed(GovernedAggregate.Event):
        def apply(self, agg: RetemplatingJob) -> None:
            agg.status = RetemplatingStatus.COMPLETED
            agg.ended_at = self.timestamp

    class EndedIncomplete(GovernedAggregate.Event):
        """Every image was tried, and some could not be templated by the new algorithm."""

        untemplated: int

        def apply(self, agg: RetemplatingJob) -> None:
            agg.status = RetemplatingStatus.INCOMPLETE
            agg.ended_at = self.timestamp

    # -- commands ---------------------------------------------------------------------------

    @classmethod
    def started(
        cls,
        actor: Actor,
        at: datetime,
        job_id: UUID,
        *,
        library_id: str,
        algorithm: str,
        algorithm_id: str,
        replaced: Sequence[str],
        reason: str,
    ) -> RetemplatingJob:
        """Created by the library's command (``ReferenceLibrary.start_retemplating``), which decides."""
        return cls._create(
            cls.Started,
            id=job_id,
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason=reason,
            library_id=library_id,
            algorithm=algorithm,
            algorithm_id=algorithm_id,
            replaced=sorted(replaced),
        )

    def take_up(self, at: datetime, runner: str, on_behalf_of: str, *, runner_alive: bool) -> None:
        """``runner`` runs the job from now; refused while the runner named last still lives."""
        self._enforce(
            "take up re-templating",
            RETEMPLATING,
            at,
            combine(
                still_open(self),
                Decision.check(
                    self.runner is None or self.runner == runner or not runner_alive,
                    "A-01",
                    f"the process running the re-templating ({self.runner}) is alive",
                ),
            ),
        )
        self._record(
            self.TakenUp,
            RETEMPLATING,
            at,
            f"taken up by {runner} for {on_behalf_of}",
            runner=runner,
            on_behalf_of=on_behalf_of,
        )

    def record_batch(
        self, at: datetime, *, position: int, examined: int, templated: int, not_templated: dict[str, str]
    ) -> None:
        if position < self.position or examined < 0 or not 0 <= templated <= examined:
            raise ValueError(f"batch to {position} ({templated} of {examined}) after {self.position}")
        if len(not_templated) > MAX_NAMED_PER_EVENT:
            raise ValueError(f"at most {MAX_NAMED_PER_EVENT} images named per batch")
        self._enforce("record re-templating progress", RETEMPLATING, at, self._templating())
        self._record(
            self.Progressed,
            RETEMPLATING,
            at,
            f"{templated} of {examined} images templated with {self.algorithm}",
            position=position,
            examined=examined,
            templated=templated,
            not_templated={k: v[:300] for k, v in not_templated.items()},
        )

    def switch(self, at: datetime) -> None:
        self._enforce("switch library to the new algorithm", RETEMPLATING, at, self._templating())
        self._record(self.Switched, RETEMPLATING, at, f"the library is searched with {self.algorithm} (T-02)")

    def record_erased(self, at: datetime, count: int) -> None:
        self._enforce("record old templates erased", RETEMPLATING, at, self._erasing())
        self._record(
            self.ErasureProgressed,
            RETEMPLATING,
            at,
            "templates of the replaced algorithms erased (R-05)",
            count=count,
        )

    def complete(self, at: datetime) -> None:
        self._enforce("complete re-templating", RETEMPLATING, at, self._erasing())
        self._record(self.Completed, RETEMPLATING, at, "re-templating complete; old templates erased")

    def end_incomplete(self, at: datetime, untemplated: int) -> None:
        self._enforce("end re-templating incomplete", RETEMPLATING, at, self._templating())
        self._record(
            self.EndedIncomplete,
            RETEMPLATING,
            at,
            f"{untemplated} searchable images could not be templated with {self.algorithm}; the "
            "library stays searchable with the algorithm it had (T-02)",
            untemplated=untemplated,
        )

    # -- queries ----------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    def _templating(self) -> Decision:
        return combine(
            still_open(self),
            Decision.check(
                self.status is RetemplatingStatus.TEMPLATING, "T-02", "the job is past templating"
            ),
        )

    def _erasing(self) -> Decision:
        return combine(
            still_open(self),
            Decision.check(
                self.status is RetemplatingStatus.ERASING,
                "T-02",
                "the library is not yet searched with the new algorithm",
            ),
        )
