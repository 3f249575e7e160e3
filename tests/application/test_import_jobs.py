"""Bulk enrolment jobs are stored (issue 10, ADR 0017): read by id from the store, by any process.

The service (``ImportJobs``) over a real application; runners are alive when the test says so
(``Runners``), or by their real locks (``RunnerLocks``) where the process's runner
(``ImportJobRunner``) runs a real folder import with the fake engine.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable
from pathlib import Path
from uuid import UUID, uuid4

import attrs
import pytest
from app_world import World
from fake_biometrics import face_image

from rfr.adapters.runner_locks import RunnerLocks
from rfr.application.errors import RfrError
from rfr.application.services.enrolment import Enrolment, EnrolmentReport, EnrolmentResult
from rfr.application.services.import_jobs import ImportJobs, ImportJobView, JobEnded, JobError
from rfr.application.services.ucc_screening import ScreeningReport
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.import_job import IMPORT_JOBS
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.entrypoints.http.resources._import_jobs import ImportJobRunner

RUNNER = str(uuid4())


@attrs.define
class Runners:
    """Runner liveness as the test sets it; ``on_ask`` runs once, at the ``nth`` question."""

    alive_ids: set[str] = attrs.field(factory=lambda: {RUNNER})
    asked: int = 0
    on_ask: Callable[[], None] | None = None
    nth: int = 0

    def alive(self, runner_id: str) -> bool:
        self.asked += 1
        if self.on_ask is not None and self.asked == self.nth:
            self.on_ask()
        return runner_id in self.alive_ids


@pytest.fixture
def runners() -> Runners:
    return Runners()


@pytest.fixture
def jobs(world: World, runners: Runners) -> ImportJobs:
    return ImportJobs(world.app, world.clock, runners)


def _start(jobs: ImportJobs, library_id: str = "lib-1", user: str = "op-lead") -> ImportJobView:
    return jobs.start(
        user, library_id, folder="/srv/import/a", manifest="manifest.csv", batch_size=2, runner=RUNNER
    )


def _topics(world: World, job_id: str | UUID) -> list[str]:
    return [s.topic.rsplit(".", 1)[-1] for s in world.app.recorder.select_events(UUID(str(job_id)))]


def _report(results: list[EnrolmentResult]) -> EnrolmentReport:
    return EnrolmentReport("lib-1", "alg", tuple(results), ScreeningReport(2, 1))


RESULTS = [
    EnrolmentResult("a.png", True, "enrolled", None, ("R-01", "T-01"), "im-a", "tp-a", "sha256:aa"),
    EnrolmentResult("b.png", False, "manifest line 3: the file is missing or outside the folder", "manifest"),
    EnrolmentResult(
        "c.png", False, "the same image is already enrolled as im-a", "duplicate", (), None, None, "sha256:aa"
    ),
]


def test_a_job_is_read_from_the_store_as_its_runner_recorded_it(world: World, jobs: ImportJobs):
    started = _start(jobs)
    assert (started.status, started.done, started.total, started.started_by) == ("queued", 0, None, "op-lead")
    other = ImportJobs(world.app, world.clock, Runners())  # another process's service, on the same store
    assert other.get(started.job_id) == started
    assert jobs.begin(started.job_id)
    jobs.progress(started.job_id, 2, 3)
    running = other.get(started.job_id)
    assert running is not None and (running.status, running.done, running.total) == ("running", 2, 3)
    jobs.finish(started.job_id, _report(RESULTS))
    finished = other.get(started.job_id)
    assert finished is not None and finished.status == "finished"
    assert (finished.done, finished.total, finished.enrolled, finished.not_enrolled) == (3, 3, 1, 2)
    assert finished.results == tuple(RESULTS)
    assert (finished.ucc_probes_screened, finished.ucc_matches_queued) == (2, 1)
    assert finished.error is None and finished.finished_at is not None
    assert finished == jobs.get(started.job_id)


def test_reading_a_job_loads_that_job_alone_and_never_the_log(world: World, jobs: ImportJobs, monkeypatch):
    started = _start(jobs)
    jobs.begin(started.job_id)

    def no_scan(*args, **kwargs):
        raise AssertionError("reading a job selected notifications from the log")

    monkeypatch.setattr(world.app.recorder, "select_notifications", no_scan)
    view = jobs.get(started.job_id)
    assert view is not None and view.status == "running"


def test_an_unknown_job_an_id_of_another_kind_or_of_another_library_is_not_found(
    world: World, jobs: ImportJobs
):
    started = _start(jobs)
    _, library_id = world.library()
    for job_id in (str(uuid4()), "not-a-uuid", str(library_id), "x" * 300):
        assert jobs.get(job_id) is None
    assert jobs.get(started.job_id, library_id="lib-2") is None
    assert jobs.get(started.job_id, library_id="lib-1") is not None


def test_A05_a_job_started_by_someone_who_may_not_enrol_is_refused_and_recorded(
    world: World, jobs: ImportJobs
):
    """A-05: only an Administrator or Operational Lead starts an import; the refusal is recorded."""
    with pytest.raises(PolicyRefusal) as caught:
        _start(jobs, user="analyst")
    assert caught.value.rule_ids == ("A-05",)
    attempt = world.app.repository.get(caught.value.record.id)
    assert isinstance(attempt, RefusedAttempt) and attempt.command == "start bulk enrolment"


def test_a_job_whose_runner_is_gone_reads_as_interrupted_recorded_once(
    world: World, jobs: ImportJobs, runners
):
    started = _start(jobs)
    jobs.begin(started.job_id)
    jobs.progress(started.job_id, 2, 6)
    runners.alive_ids.clear()  # the runner's process ended
    view = jobs.get(started.job_id)
    assert view is not None and view.status == "failed"
    assert view.error is not None and view.error.kind == "interrupted"
    assert (view.done, view.total, view.results, view.enrolled) == (2, 6, (), None)
    assert "after 2 of 6 rows" in view.error.detail
    assert jobs.get(started.job_id) == view  # final: a second read records nothing
    assert _topics(world, started.job_id).count("Interrupted") == 1
    # The runner, if it were somehow still at work, stops, and what it tried is recorded.
    with pytest.raises(JobEnded):
        jobs.progress(started.job_id, 4, 6)
    jobs.finish(started.job_id, _report(RESULTS))
    assert not jobs.begin(started.job_id)
    job = world.app.repository.get(UUID(started.job_id))
    assert job.status.value == "failed" and job.rows == []
    assert [r.rule_ids for r in job.refusals] == [("A-01",)] * 3 and {r.actor for r in job.refusals} == {
        IMPORT_JOBS
    }


def test_two_readers_finding_a_dead_runner_record_one_interruption(world: World, jobs: ImportJobs, runners):
    started = _start(jobs)
    runners.alive_ids.clear()
    other = ImportJobs(world.app, world.clock, Runners(alive_ids=set()))
    # The second question is asked with the job loaded for the interruption: the other reader
    # records it first, so this reader's save conflicts, and on its retry the job has ended.
    runners.on_ask, runners.nth = (lambda: other.get(started.job_id)), 2
    view = jobs.get(started.job_id)
    assert view is not None and view.error is not None and view.error.kind == "interrupted"
    assert view == other.get(started.job_id)
    assert runners.asked == 2  # the retry found the job ended, and asked no more
    assert _topics(world, started.job_id).count("Interrupted") == 1


def test_a_live_runners_job_is_never_interrupted(world: World, jobs: ImportJobs):
    started = _start(jobs)
    for _ in range(3):
        view = jobs.get(started.job_id)
        assert view is not None and view.status == "queued"
    assert _topics(world, started.job_id) == ["Started"]


# -- this process's runner ---------------------------------------------------------------------


@pytest.fixture
def locks(tmp_path: Path) -> RunnerLocks:
    return RunnerLocks(tmp_path / "import-runners")


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    try:
        while not condition():
            assert not done.wait(0.01), "timed out"
    finally:
        deadline.cancel()


def test_the_process_runs_its_jobs_one_at_a_time_and_records_each_end(world: World, locks: RunnerLocks):
    jobs = ImportJobs(world.app, world.clock, locks)
    runner = ImportJobRunner(locks)
    gates = [threading.Event(), threading.Event()]

    def work(n: int):
        def run(progress):
            progress(1, 2)
            assert gates[n].wait(10)
            progress(2, 2)
            return _report(RESULTS[:2])

        return run

    def start(work_fn) -> str:
        return runner.start(
            jobs,
            acting_user="op-lead",
            library_id="lib-1",
            folder="/f",
            manifest="m.csv",
            batch_size=1,
            work=work_fn,
        ).job_id

    first, second = start(work(0)), start(work(1))
    _wait(lambda: jobs.get(first).done == 1)
    assert jobs.get(second).status == "queued"  # one at a time, in the order started
    gates[0].set()
    _wait(lambda: jobs.get(first).status == "finished")
    _wait(lambda: jobs.get(second).done == 1)
    gates[1].set()
    _wait(lambda: jobs.get(second).status == "finished")
    assert jobs.get(second).results == tuple(RESULTS[:2])

    # Each way an import stops is recorded as the job's error.
    def raising(error: BaseException):
        def run(progress):
            raise error

        return run

    refusal = start(raising(PolicyRefusal(("L-12",), "the library's approval is not in force")))
    bad = start(raising(RfrError("the manifest lacks the columns ['file']")))
    broken = start(raising(RuntimeError("disk on fire")))
    for job_id in (refusal, bad, broken):
        _wait(lambda job_id=job_id: jobs.get(job_id).status == "failed")
    assert jobs.get(refusal).error == JobError(
        "policy-refusal", "the library's approval is not in force", ("L-12",)
    )
    assert jobs.get(bad).error == JobError("refused", "the manifest lacks the columns ['file']")
    internal = jobs.get(broken).error
    assert internal is not None and internal.kind == "internal" and internal.incident
    assert "fire" not in internal.detail
    # Every job names this process's runner, alive while it lives.
    runner_ids = {world.app.repository.get(UUID(j)).runner for j in (first, second, refusal, bad, broken)}
    assert runner_ids == {runner.runner_id} and locks.alive(runner.runner_id)


def test_a_folder_import_through_the_runner_ends_with_the_enrolments_own_report(
    world: World, locks: RunnerLocks, tmp_path: Path
):
    root = tmp_path / "import"
    folder = root / "batch"
    folder.mkdir(parents=True)
    rows = []
    for i in range(5):
        (folder / f"face-{i}.png").write_bytes(face_image(i))
        rows.append(
            {"file": f"face-{i}.png", "capture_date": "2022-01-01", "age_band": "18_plus", "mopi_group": "2"}
        )
    rows.append(
        {"file": "face-0.png", "capture_date": "2022-01-01", "age_band": "18_plus", "mopi_group": "2"}
    )
    rows.append(
        {"file": "missing.png", "capture_date": "2022-01-01", "age_band": "18_plus", "mopi_group": "2"}
    )
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    _, library_id = world.library("bulk")
    enrolment = Enrolment(world.app, world.clock, attrs.evolve(world.bio, import_root=root))
    jobs = ImportJobs(world.app, world.clock, locks)
    runner = ImportJobRunner(locks)
    reports: list[EnrolmentReport] = []

    def work(progress):
        reports.append(
            enrolment.enrol_folder("op-lead", str(library_id), folder, batch_size=2, progress=progress)
        )
        return reports[-1]

    started = runner.start(
        jobs,
        acting_user="op-lead",
        library_id=str(library_id),
        folder=str(folder),
        manifest="manifest.csv",
        batch_size=2,
        work=work,
    )
    _wait(
        lambda: (
            jobs.get(started.job_id).status != "queued" and jobs.get(started.job_id).finished_at is not None
        )
    )
    view = jobs.get(started.job_id)
    assert view.status == "finished", view.error
    assert view.results == reports[0].results and len(view.results) == 7
    assert (view.done, view.total, view.enrolled, view.not_enrolled) == (7, 7, 5, 2)
    assert [r.code for r in view.results[5:]] == ["duplicate", "manifest"]
    job = world.app.repository.get(UUID(started.job_id))
    # One progress per saved batch of 2 rows: 4 batches of 7 rows.
    assert _topics(world, job.id) == ["Started", "Began", *["Progressed"] * 4, "RowsReported", "Finished"]
    assert job.refusals == ()
