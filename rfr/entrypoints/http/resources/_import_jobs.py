"""Bulk enrolment jobs: an enrolment from a server folder, run in the background, polled by the client.

A job is a window on work the event store records anyway: each batch the enrolment saves
is an ``ImagesEnrolled`` event, whole or not at all. So jobs are kept in memory, one table
per process: a restart loses the progress display, never an enrolment; the client reads the
library to see what is in it. Jobs run one at a time (the machine's cores belong to the
engine's onnxruntime threads; two imports would only slow each other and the searches).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import uuid4

import attrs

from rfr.application.errors import RfrError
from rfr.application.ports import Clock
from rfr.application.services.enrolment import EnrolmentReport, EnrolmentResult
from rfr.domain.decisions import PolicyRefusal

log = logging.getLogger("rfr.http")

# Finished jobs kept for polling; the oldest finished one is forgotten past this.
KEEP_FINISHED = 200


@attrs.frozen
class JobError:
    """Why a job stopped: a policy refusal (``rule_ids``, recorded), a bad manifest, or an incident.

    Attributes:
        kind: ``policy-refusal`` (recorded, A-01), ``refused`` (e.g. a bad manifest or folder)
            or ``internal`` (an unexpected failure).
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


@attrs.define
class _Job:
    job_id: str
    library_id: str
    folder: str
    manifest: str
    started_by: str
    created_at: datetime
    status: str = "queued"
    done: int = 0
    total: int | None = None
    finished_at: datetime | None = None
    report: EnrolmentReport | None = None
    error: JobError | None = None

    def view(self) -> ImportJobView:
        report = self.report
        return ImportJobView(
            job_id=self.job_id,
            library_id=self.library_id,
            folder=self.folder,
            manifest=self.manifest,
            started_by=self.started_by,
            status=self.status,
            done=self.done,
            total=self.total,
            created_at=self.created_at,
            finished_at=self.finished_at,
            enrolled=len(report.enrolled) if report else None,
            not_enrolled=len(report.not_enrolled) if report else None,
            results=report.results if report else (),
            ucc_probes_screened=report.screening.probes_screened if report else None,
            ucc_matches_queued=report.screening.matches_queued if report else None,
            error=self.error,
        )


Work = Callable[[Callable[[int, int], None]], EnrolmentReport]


class ImportJobs:
    """The jobs of this process: started by ``start``, read by ``get``; safe between threads."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        # One import at a time, in the order started.
        self._turn = threading.Lock()

    def start(
        self, *, library_id: str, folder: str, manifest: str, started_by: str, work: Work
    ) -> ImportJobView:
        job = _Job(str(uuid4()), library_id, folder, manifest, started_by, self._clock.now())
        with self._lock:
            self._jobs[job.job_id] = job
            self._forget_old()
            view = job.view()
        # A daemon thread: a stopping server does not wait for an import; every batch saved is whole.
        threading.Thread(
            target=self._run, args=(job, work), name=f"rfr-import-{job.job_id}", daemon=True
        ).start()
        return view

    def get(self, job_id: str) -> ImportJobView | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.view() if job is not None else None

    def _run(self, job: _Job, work: Work) -> None:
        with self._turn:
            self._update(job, status="running")

            def progress(done: int, total: int) -> None:
                self._update(job, done=done, total=total)

            try:
                report = work(progress)
            except PolicyRefusal as e:
                self._finish(job, error=JobError("policy-refusal", e.reason, tuple(e.rule_ids)))
            except RfrError as e:
                self._finish(job, error=JobError("refused", str(e)))
            except Exception:
                incident = str(uuid4())
                log.exception("incident %s: bulk enrolment job %s failed", incident, job.job_id)
                self._finish(
                    job,
                    error=JobError("internal", "the import failed; quote the incident id", incident=incident),
                )
            else:
                self._finish(job, report=report)

    def _update(self, job: _Job, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(job, name, value)

    def _finish(
        self, job: _Job, *, report: EnrolmentReport | None = None, error: JobError | None = None
    ) -> None:
        done = len(report.results) if report is not None else job.done
        self._update(
            job,
            status="failed" if error is not None else "finished",
            report=report,
            error=error,
            done=done,
            total=job.total if job.total is not None else done,
            finished_at=self._clock.now(),
        )

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.finished_at is not None]
        for job in sorted(finished, key=lambda j: j.finished_at)[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job.job_id]
