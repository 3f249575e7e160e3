"""Bulk enrolment jobs in this process: an enrolment from a server folder, run in the background.

The jobs are stored (``rfr.application.services.import_jobs``, ADR 0017): any process serving
the store answers a poll for any job, and a restart loses none. What stays in this process is
the running: the process takes a runner id and holds its lock (``RunnerLocks``) from its first
import until it exits, names that runner in every job it starts, and runs its jobs one at a
time (the machine's cores belong to the engine's onnxruntime threads; two imports would only
slow each other and the searches). A job whose process ended before it did is recorded as
interrupted by whoever reads it next.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from uuid import uuid4

from rfr.adapters.runner_locks import HeldRunner, RunnerLocks
from rfr.application.services.enrolment import EnrolmentReport
from rfr.application.services.import_jobs import ImportJobs, ImportJobView, JobEnded, JobError, job_error_of

__all__ = ["ImportJobRunner", "ImportJobView", "JobError", "Work"]

log = logging.getLogger("rfr.http")

# What a job does: the enrolment, given a ``progress(done, total)`` to call after each batch.
Work = Callable[[Callable[[int, int], None]], EnrolmentReport]


class ImportJobRunner:
    """This process's runner: starts jobs (``start``) and runs them one at a time; thread-safe."""

    def __init__(self, locks: RunnerLocks) -> None:
        self._locks = locks
        self._held: HeldRunner | None = None
        self._lock = threading.Lock()
        # One import at a time, in the order started.
        self._turn = threading.Lock()

    @property
    def runner_id(self) -> str:
        """This process's runner id; its lock is taken on first use and held until the process exits."""
        with self._lock:
            if self._held is None:
                self._held = self._locks.hold()
            return self._held.runner_id

    def start(
        self,
        jobs: ImportJobs,
        *,
        acting_user: str,
        library_id: str,
        folder: str,
        manifest: str,
        batch_size: int,
        work: Work,
    ) -> ImportJobView:
        """Records the job (queued in this runner) and runs it in the background."""
        view = jobs.start(
            acting_user,
            library_id,
            folder=folder,
            manifest=manifest,
            batch_size=batch_size,
            runner=self.runner_id,
        )
        # A daemon thread: a stopping server does not wait for an import; every batch saved is
        # whole, and the job is recorded interrupted when next read.
        threading.Thread(
            target=self._run, args=(jobs, view.job_id, work), name=f"rfr-import-{view.job_id}", daemon=True
        ).start()
        return view

    def _run(self, jobs: ImportJobs, job_id: str, work: Work) -> None:
        with self._turn:
            try:
                if not jobs.begin(job_id):
                    return  # recorded as ended meanwhile: not to be run
                report = work(lambda done, total: jobs.progress(job_id, done, total))
            except JobEnded:
                log.warning("bulk enrolment job %s was recorded as ended by another process; stopped", job_id)
                return
            except Exception as error:
                incident = str(uuid4())
                failed = job_error_of(error, incident)
                if failed.incident is not None:
                    log.exception("incident %s: bulk enrolment job %s failed", incident, job_id)
                self._end(job_id, lambda: jobs.fail(job_id, failed))
            else:
                self._end(job_id, lambda: jobs.finish(job_id, report))

    @staticmethod
    def _end(job_id: str, record: Callable[[], None]) -> None:
        try:
            record()
        except Exception:
            # The store refused the end (it is down?): the job reads as running while this
            # process lives, and as interrupted once it has ended.
            log.exception("bulk enrolment job %s: its end could not be recorded", job_id)
