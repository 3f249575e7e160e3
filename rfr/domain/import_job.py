"""A bulk enrolment job: enrolment from a server folder, run in the background, polled by its client.

The job reports work the library records anyway: every batch the enrolment saves is an
``EnrolmentBatch`` of its own, whole or not at all (ADR 0013). What the job adds is the
account of one import, stored so that any server process can answer for it, before and after
a restart (ADR 0017): who started it, from which folder and manifest, the rows handled after
each saved batch, and how it ended, with what became of every manifest row. Its events hold
names as the manifest gives them, counts, ids, content hashes, reasons and rule ids; never an
image, a file's contents or a template (ADR 0004).

A job runs in one server process, its *runner*, named in ``Started``, which holds a lock for as
long as it lives. A job that is still open when its runner is gone will never end by itself:
whoever finds it so records ``Interrupted``, and it reads as failed. The images of the batches
saved before stay enrolled; importing the folder again enrols the rest and reports the images
already enrolled as duplicates.

Everything after ``Started`` is recorded by ``IMPORT_JOBS``, the server's bulk enrolment
machinery, on the authority of the person who started the job; it holds no role, and no
``User`` has its id. The enrolments themselves are recorded on the library's batches in that
person's name.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import uuid4

import attrs
from eventsourcing.domain import Aggregate

from rfr.domain.calendar import require_aware
from rfr.domain.codec import from_data, to_data
from rfr.domain.decisions import Decision, combine
from rfr.domain.enrolment_batch import LIBRARY_MANAGERS, MAX_BATCH_IMAGES
from rfr.domain.governed import GovernedAggregate
from rfr.domain.people import Actor
from rfr.domain.refused_attempt import enforce_new
from rfr.domain.rules_access import authorised, stated

IMPORT_JOBS = Actor("rfr:import-jobs")

# Row outcomes per ``RowsReported`` event: one recorded batch's worth at most, so no event
# grows with the manifest.
ROWS_PER_EVENT = MAX_BATCH_IMAGES
# Longest text kept of a manifest's file name, a reason or a failure's detail: a manifest is
# the caller's file, and nothing it holds may grow an event without bound.
MAX_TEXT = 1000


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


class FailureKind(enum.StrEnum):
    """Why a job failed: a policy refusal (recorded on the library too, A-01), a refusal of its
    folder or manifest, an unexpected failure (an incident), or its runner's end."""

    POLICY_REFUSAL = "policy-refusal"
    REFUSED = "refused"
    INTERNAL = "internal"
    INTERRUPTED = "interrupted"


@attrs.frozen
class RowOutcome:
    """What became of one manifest row: the fields of the enrolment's per-item result."""

    name: str
    enrolled: bool
    reason: str
    code: str | None = None
    rule_ids: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    image_id: str | None = None
    template_id: str | None = None
    content_hash: str | None = None


@attrs.frozen
class JobFailure:
    kind: FailureKind
    detail: str
    rule_ids: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    incident: str | None = None


# -- rules ------------------------------------------------------------------------------------


def may_start_import(actor: Actor, folder: str, manifest: str) -> Decision:
    """A-05: whoever may enrol into a library may start a bulk enrolment, naming what it reads.

    Whether the library takes images now (L-01, L-12, R-01) is decided batch by batch, by the
    library and its batches, as for any enrolment.
    """
    return combine(
        authorised(actor, *LIBRARY_MANAGERS),
        stated(folder, "A-05", "the folder to import"),
        stated(manifest, "A-05", "the manifest to import"),
    )


def still_open(job: ImportJob) -> Decision:
    """A-01: a job's recorded end is final; nothing is recorded of it afterwards."""
    return Decision.check(
        job.ended_at is None, "A-01", f"the import job already ended ({job.status.value}); its end is final"
    )


def runner_gone(job: ImportJob, runner_alive: bool) -> Decision:
    """A-01: an import is recorded as interrupted only once the process running it has ended."""
    return Decision.check(
        not runner_alive, "A-01", f"the server process running the import ({job.runner}) is alive"
    )


def _bounded(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- the aggregate ------------------------------------------------------------------------------


class ImportJob(GovernedAggregate):
    """One bulk enrolment from a server folder; its id is the job id the client polls."""

    class Started(GovernedAggregate.Event, Aggregate.Created):
        library_id: str
        folder: str
        manifest: str
        batch_size: int
        runner: str

        def apply(self, agg: ImportJob) -> None:
            agg.library_id = self.library_id
            agg.folder = self.folder
            agg.manifest = self.manifest
            agg.batch_size = self.batch_size
            agg.runner = self.runner
            agg.started_by = self.acting.user_id
            agg.started_at = self.timestamp
            agg.status = JobStatus.QUEUED
            agg.done = 0
            agg.total = None
            agg.rows = []
            agg.enrolled = None
            agg.not_enrolled = None
            agg.ucc_probes_screened = None
            agg.ucc_matches_queued = None
            agg.failure = None
            agg.ended_at = None

    class Began(GovernedAggregate.Event):
        """The runner took the job up: imports run one at a time per process."""

        def apply(self, agg: ImportJob) -> None:
            agg.status = JobStatus.RUNNING

    class Progressed(GovernedAggregate.Event):
        """A batch was handled: ``done`` of the manifest's ``total`` rows so far."""

        done: int
        total: int

        def apply(self, agg: ImportJob) -> None:
            agg.status = JobStatus.RUNNING
            agg.done = self.done
            agg.total = self.total

    class RowsReported(GovernedAggregate.Event):
        """What became of rows ``first_row`` (0-based) onwards; recorded with ``Finished``."""

        first_row: int
        rows: list[dict[str, Any]]

        def apply(self, agg: ImportJob) -> None:
            agg.rows.extend(from_data(RowOutcome, row) for row in self.rows)

    class Finished(GovernedAggregate.Event):
        rows_handled: int
        enrolled: int
        not_enrolled: int
        ucc_probes_screened: int
        ucc_matches_queued: int

        def apply(self, agg: ImportJob) -> None:
            agg.status = JobStatus.FINISHED
            agg.done = self.rows_handled
            agg.total = agg.total if agg.total is not None else self.rows_handled
            agg.enrolled = self.enrolled
            agg.not_enrolled = self.not_enrolled
            agg.ucc_probes_screened = self.ucc_probes_screened
            agg.ucc_matches_queued = self.ucc_matches_queued
            agg.ended_at = self.timestamp

    class Failed(GovernedAggregate.Event):
        kind: str
        detail: str
        rule_ids: list[str]
        incident: str | None

        def apply(self, agg: ImportJob) -> None:
            agg._end_failed(
                JobFailure(FailureKind(self.kind), self.detail, tuple(self.rule_ids), self.incident),
                self.timestamp,
            )

    class Interrupted(GovernedAggregate.Event):
        """The job's runner ended before the job did (found by another process, or after a restart)."""

        runner: str
        detail: str

        def apply(self, agg: ImportJob) -> None:
            agg._end_failed(JobFailure(FailureKind.INTERRUPTED, self.detail), self.timestamp)

    # -- commands ---------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        actor: Actor,
        at: datetime,
        *,
        library_id: str,
        folder: str,
        manifest: str,
        batch_size: int,
        runner: str,
    ) -> ImportJob:
        """A new job, queued in the process ``runner``."""
        if not 1 <= batch_size <= MAX_BATCH_IMAGES:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_IMAGES}")
        enforce_new(
            "start bulk enrolment",
            f"ReferenceLibrary {library_id}",
            actor,
            at,
            may_start_import(actor, folder, manifest),
        )
        return cls._create(
            cls.Started,
            id=uuid4(),
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason=_bounded(f"bulk enrolment of {manifest} in {folder}"),
            library_id=library_id,
            folder=_bounded(folder),
            manifest=_bounded(manifest),
            batch_size=batch_size,
            runner=runner,
        )

    def begin(self, at: datetime) -> None:
        self._enforce("begin bulk enrolment", IMPORT_JOBS, at, still_open(self))
        self._record(self.Began, IMPORT_JOBS, at, f"taken up by {self.runner}")

    def record_progress(self, at: datetime, done: int, total: int) -> None:
        if not 0 <= done <= total or done < self.done:
            raise ValueError(f"progress {done} of {total} after {self.done}")
        self._enforce("record bulk enrolment progress", IMPORT_JOBS, at, still_open(self))
        self._record(self.Progressed, IMPORT_JOBS, at, "a batch was handled", done=done, total=total)

    def finish(
        self,
        at: datetime,
        rows: Sequence[RowOutcome],
        *,
        ucc_probes_screened: int,
        ucc_matches_queued: int,
    ) -> None:
        """Records every row's outcome, ``ROWS_PER_EVENT`` a time, and the end; saved together."""
        self._enforce("finish bulk enrolment", IMPORT_JOBS, at, still_open(self))
        kept = [attrs.evolve(row, name=_bounded(row.name), reason=_bounded(row.reason)) for row in rows]
        for first in range(0, len(kept), ROWS_PER_EVENT):
            self._record(
                self.RowsReported,
                IMPORT_JOBS,
                at,
                "what became of each manifest row",
                first_row=first,
                rows=[to_data(row) for row in kept[first : first + ROWS_PER_EVENT]],
            )
        enrolled = sum(1 for row in kept if row.enrolled)
        self._record(
            self.Finished,
            IMPORT_JOBS,
            at,
            f"{enrolled} of {len(kept)} rows enrolled",
            rows_handled=len(kept),
            enrolled=enrolled,
            not_enrolled=len(kept) - enrolled,
            ucc_probes_screened=ucc_probes_screened,
            ucc_matches_queued=ucc_matches_queued,
        )

    def fail(self, at: datetime, failure: JobFailure) -> None:
        if failure.kind is FailureKind.INTERRUPTED:
            raise ValueError("an interruption is recorded by interrupt(), once the runner is gone")
        self._enforce("fail bulk enrolment", IMPORT_JOBS, at, still_open(self))
        self._record(
            self.Failed,
            IMPORT_JOBS,
            at,
            f"the import stopped: {failure.kind.value}",
            kind=failure.kind.value,
            detail=_bounded(failure.detail, 2 * MAX_TEXT),
            rule_ids=list(failure.rule_ids),
            incident=failure.incident,
        )

    def interrupt(self, at: datetime, *, runner_alive: bool) -> None:
        """The runner is gone (``runner_alive`` is what its lock says now): the job ends here."""
        self._enforce(
            "record bulk enrolment interrupted",
            IMPORT_JOBS,
            at,
            combine(still_open(self), runner_gone(self, runner_alive)),
        )
        done = f"{self.done} of {self.total} rows" if self.total is not None else "no batch"
        self._record(
            self.Interrupted,
            IMPORT_JOBS,
            at,
            f"the server process running the import ({self.runner}) ended before the import did",
            runner=self.runner,
            detail=(
                f"the server process running the import stopped after {done}; the images of the "
                "batches saved are enrolled. Import the folder again to enrol the rest: images "
                "already enrolled are reported as duplicates"
            ),
        )

    # -- queries ----------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    # -- helpers ----------------------------------------------------------------------------

    def _end_failed(self, failure: JobFailure, at: datetime) -> None:
        self.status = JobStatus.FAILED
        self.failure = failure
        self.total = self.total if self.total is not None else self.done
        self.ended_at = at
