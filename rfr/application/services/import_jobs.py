"""Bulk enrolment jobs, stored: any server process answers for any job, before and after a restart.

A job (``ImportJob``, its id the job id) is started by a person and then run by one server
process, its *runner*, which records it taken up, its progress after each saved batch and its
end (ADR 0017). Reading a job loads that one aggregate by its id; nothing scans the log.

Whether a runner is alive is asked of ``RunnerLiveness`` (a lock each runner holds for as long
as it lives, ``rfr.adapters.runner_locks``). A job read while open whose runner is gone is
recorded as ``Interrupted`` by that read, once (a second reader's save conflicts, and it finds
the job ended), and reads as failed with the error kind ``interrupted``: it never stays
``running`` after its process ended.

The runner's own records (``begin``, ``progress``, ``finish``, ``fail``) are saved with a retry
on conflict, like any command (ADR 0011); the only other writer of a job is whoever records it
interrupted, after which the job's end is final (A-01) and ``progress`` raises ``JobEnded``, so
a runner wrongly found gone stops rather than go on unrecorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol
from uuid import UUID

import attrs

from rfr.application.app import RfrApplication
from rfr.application.errors import NotFound, RfrError
from rfr.application.ports import Clock
from rfr.application.services.base import Act, UseCase
from rfr.application.services.enrolment import EnrolmentReport, EnrolmentResult
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.import_job import FailureKind, ImportJob, JobFailure, RowOutcome

log = logging.getLogger(__name__)


class RunnerLiveness(Protocol):
    """Whether the server process that named itself ``runner_id`` is still alive."""

    def alive(self, runner_id: str) -> bool: ...


class JobEnded(RfrError):
    """The job was recorded as ended by someone else (interrupted): its runner must stop."""


@attrs.frozen
class JobError:
    """Why a job stopped: a policy refusal (``rule_ids``, recorded), a bad manifest, an incident,
    or the end of the server process that ran it.

    Attributes:
        kind: ``policy-refusal`` (recorded, A-01), ``refused`` (e.g. a bad manifest or folder),
            ``internal`` (an unexpected failure) or ``interrupted`` (the server process running
            the import stopped before it ended: the images of the batches saved are enrolled;
            import the folder again to enrol the rest, images already enrolled are reported as
            duplicates).
        detail: What went wrong, written for the caller.
        rule_ids: The policy rules that refused the import, for ``policy-refusal``.
        incident: The id to quote to the operators, for ``internal``; the server log holds
            the details under it.
    """

    kind: str
    detail: str
    rule_ids: tuple[str, ...] = ()
    incident: str | None = None


@attrs.frozen
class ImportJobView:
    """A bulk enrolment as the client polls it. ``results`` (one per manifest row) come at the end.

    Attributes:
        job_id: The job's id, to poll it by.
        library_id: The library enrolled into.
        folder: The folder read, as given.
        manifest: The manifest's file name in the folder.
        started_by: The user id of whoever started the import.
        status: ``queued``, ``running``, ``finished`` or ``failed``.
        done: How many manifest rows have been handled so far.
        total: How many rows the manifest has, once it has been read; else null.
        created_at: When the job was started.
        finished_at: When it finished or failed, or null.
        enrolled: How many images were enrolled, once finished; else null.
        not_enrolled: How many rows were not enrolled, once finished; else null.
        results: What became of each manifest row, in order, once finished (empty before).
        ucc_probes_screened: How many unresolved-crime-cache probes were searched against the
            new images (U-02), once finished; else null.
        ucc_matches_queued: How many potential matches that found, once finished; else null.
        error: Why the job failed, or null.
    """

    job_id: str
    library_id: str
    folder: str
    manifest: str
    started_by: str
    status: str  # queued, running, finished, failed
    done: int
    total: int | None
    created_at: datetime
    finished_at: datetime | None
    enrolled: int | None
    not_enrolled: int | None
    results: tuple[EnrolmentResult, ...]
    ucc_probes_screened: int | None
    ucc_matches_queued: int | None
    error: JobError | None

    @classmethod
    def of(cls, job: ImportJob) -> ImportJobView:
        failure = job.failure
        return cls(
            job_id=str(job.id),
            library_id=job.library_id,
            folder=job.folder,
            manifest=job.manifest,
            started_by=job.started_by,
            status=job.status.value,
            done=job.done,
            total=job.total,
            created_at=job.started_at,
            finished_at=job.ended_at,
            enrolled=job.enrolled,
            not_enrolled=job.not_enrolled,
            results=tuple(EnrolmentResult(**attrs.asdict(row, recurse=False)) for row in job.rows),
            ucc_probes_screened=job.ucc_probes_screened,
            ucc_matches_queued=job.ucc_matches_queued,
            error=(
                JobError(failure.kind.value, failure.detail, failure.rule_ids, failure.incident)
                if failure is not None
                else None
            ),
        )


def job_error_of(error: BaseException, incident: str) -> JobError:
    """The ``JobError`` an exception out of an import stands for; ``incident`` names an unexpected one."""
    if isinstance(error, PolicyRefusal):
        return JobError(FailureKind.POLICY_REFUSAL.value, error.reason, tuple(error.rule_ids))
    if isinstance(error, RfrError):
        return JobError(FailureKind.REFUSED.value, str(error))
    return JobError(FailureKind.INTERNAL.value, "the import failed; quote the incident id", incident=incident)


class ImportJobs(UseCase):
    """Starts, records and reads bulk enrolment jobs; see the module docstring."""

    def __init__(self, app: RfrApplication, clock: Clock, runners: RunnerLiveness) -> None:
        super().__init__(app, clock)
        self.runners = runners

    # -- the person ----------------------------------------------------------------------------

    def start(
        self,
        acting_user: str,
        library_id: str,
        *,
        folder: str,
        manifest: str,
        batch_size: int,
        runner: str,
    ) -> ImportJobView:
        """Records a new job, queued in the process named ``runner``, which then runs it."""

        def action(act: Act) -> ImportJob:
            return act.new(
                ImportJob.start(
                    act.actor,
                    act.at,
                    library_id=library_id,
                    folder=folder,
                    manifest=manifest,
                    batch_size=batch_size,
                    runner=runner,
                )
            )

        target = f"ReferenceLibrary {library_id}"
        job = self._act(acting_user, "start bulk enrolment", [], action, target_name=target)
        return ImportJobView.of(job)

    def get(self, job_id: str | UUID, *, library_id: str | None = None) -> ImportJobView | None:
        """The job as stored (None if there is none, or none of ``library_id``); an open job whose
        runner is gone is recorded interrupted first."""
        try:
            job = self.load(job_id, ImportJob)
        except NotFound:
            return None
        if library_id is not None and job.library_id != library_id:
            return None
        if not job.ended and not self.runners.alive(job.runner):
            job = self._retrying(lambda: self._interrupt(job.id))
        return ImportJobView.of(job)

    # -- the runner ----------------------------------------------------------------------------

    def begin(self, job_id: UUID | str) -> bool:
        """The job is taken up; False if it already ended (it must not run)."""
        return self._record(job_id, lambda job, at: job.begin(at)) is not None

    def progress(self, job_id: UUID | str, done: int, total: int) -> None:
        """``done`` of ``total`` rows handled; raises ``JobEnded`` if the job was ended meanwhile."""
        if self._record(job_id, lambda job, at: job.record_progress(at, done, total)) is None:
            raise JobEnded(f"import job {job_id} was recorded as ended; its runner stops")

    def finish(self, job_id: UUID | str, report: EnrolmentReport) -> None:
        rows = [RowOutcome(**attrs.asdict(result, recurse=False)) for result in report.results]
        self._record(
            job_id,
            lambda job, at: job.finish(
                at,
                rows,
                ucc_probes_screened=report.screening.probes_screened,
                ucc_matches_queued=report.screening.matches_queued,
            ),
        )

    def fail(self, job_id: UUID | str, error: JobError) -> None:
        failure = JobFailure(FailureKind(error.kind), error.detail, error.rule_ids, error.incident)
        self._record(job_id, lambda job, at: job.fail(at, failure))

    # -- helpers -------------------------------------------------------------------------------

    def _record(self, job_id: UUID | str, command: Callable[[ImportJob, datetime], None]) -> ImportJob | None:
        """Runs a runner's command on the job as now stored and saves it; None if the job had ended
        (the refusal is recorded on the job, A-01)."""

        def attempt() -> ImportJob | None:
            job = self.load(job_id, ImportJob)
            try:
                command(job, self.clock.now())
            except PolicyRefusal:
                self.app.save(job)
                return None
            self.app.save(job)
            return job

        return self._retrying(attempt)

    def _interrupt(self, job_id: UUID) -> ImportJob:
        job = self.load(job_id, ImportJob)
        if job.ended:
            return job  # another reader recorded it first
        if self.runners.alive(job.runner):
            return job  # nothing to record: the job is running after all
        job.interrupt(self.clock.now(), runner_alive=False)
        self.app.save(job)
        return job
