"""A bulk enrolment job as stored (issue 10, ADR 0017): who started it, its progress, its end.

The job's events are its audit trail and what every server process reads it from; a job whose
runner is gone is recorded as interrupted, and nothing is recorded of a job after its end.
"""

from __future__ import annotations

import json

import pytest
from domain_builders import ADMIN, ANALYST, OP_LEAD, T0, at, refused
from eventsourcing.application import Application

from rfr.domain.decisions import PolicyRefusal
from rfr.domain.import_job import (
    IMPORT_JOBS,
    MAX_TEXT,
    ROWS_PER_EVENT,
    FailureKind,
    ImportJob,
    JobFailure,
    JobStatus,
    RowOutcome,
)
from rfr.domain.people import Actor, Role
from rfr.domain.refused_attempt import RefusedAttempt

RUNNER = "0b0d5d52-4e2b-4c1f-9a5e-9a3c1e0f7a11"


def started(actor: Actor = OP_LEAD, *, batch_size: int = 2) -> ImportJob:
    return ImportJob.start(
        actor,
        T0,
        library_id="lib-1",
        folder="/srv/import/custody-2024",
        manifest="manifest.csv",
        batch_size=batch_size,
        runner=RUNNER,
    )


def rows(n: int, *, enrolled_every: int = 2) -> list[RowOutcome]:
    return [
        RowOutcome(
            f"img-{i}.jpg", True, "enrolled", None, ("R-01", "T-01"), f"im-{i}", f"tp-{i}", f"sha256:{i}"
        )
        if i % enrolled_every == 0
        else RowOutcome(f"img-{i}.jpg", False, "no face was detected in the image", "no_face")
        for i in range(n)
    ]


def test_A05_only_library_managers_start_a_bulk_enrolment_and_a_refusal_is_recorded():
    """A-05: only an Administrator or Operational Lead starts an import; anyone else's attempt is recorded."""
    assert started(ADMIN).started_by == "admin" and started(OP_LEAD).started_by == "op-lead"
    for actor in (ANALYST, Actor("lead-untrained", {Role.OPERATIONAL_LEAD}, trained=False)):
        with pytest.raises(PolicyRefusal) as caught:
            started(actor)
        assert caught.value.rule_ids == ("A-05",)
        attempt = caught.value.record
        assert isinstance(attempt, RefusedAttempt) and attempt.target == "ReferenceLibrary lib-1"
        assert attempt.refusals[0].actor.user_id == actor.user_id


def test_a_job_is_queued_then_running_then_finished_with_every_row_in_order():
    job = started()
    assert (job.status, job.done, job.total, job.rows, job.ended) == (JobStatus.QUEUED, 0, None, [], False)
    assert job.runner == RUNNER and job.started_at == T0
    job.begin(at(0.1))
    assert job.status is JobStatus.RUNNING
    job.record_progress(at(0.2), 2, 5)
    job.record_progress(at(0.3), 4, 5)
    assert (job.done, job.total) == (4, 5)
    outcomes = rows(5)
    job.finish(at(0.4), outcomes, ucc_probes_screened=3, ucc_matches_queued=1)
    assert job.status is JobStatus.FINISHED and job.ended_at == at(0.4)
    assert (job.done, job.total, job.enrolled, job.not_enrolled) == (5, 5, 3, 2)
    assert (job.ucc_probes_screened, job.ucc_matches_queued) == (3, 1)
    assert job.rows == outcomes and job.failure is None
    # Everything after Started is the machinery's, on the starter's authority.
    assert {Actor.from_data(e.actor) for e in job.pending_events[1:]} == {IMPORT_JOBS}


def test_row_outcomes_are_recorded_a_batch_at_most_per_event_and_in_order():
    job = started(batch_size=500)
    outcomes = rows(2 * ROWS_PER_EVENT + 7)
    job.finish(at(1), outcomes, ucc_probes_screened=0, ucc_matches_queued=0)
    reported = [e for e in job.pending_events if isinstance(e, ImportJob.RowsReported)]
    assert [e.first_row for e in reported] == [0, ROWS_PER_EVENT, 2 * ROWS_PER_EVENT]
    assert [len(e.rows) for e in reported] == [ROWS_PER_EVENT, ROWS_PER_EVENT, 7]
    assert job.rows == outcomes
    assert isinstance(job.pending_events[-1], ImportJob.Finished)


def test_a_manifest_cannot_grow_an_event_without_bound():
    job = started()
    long = RowOutcome("x" * 5 * MAX_TEXT, False, "manifest line 2: " + "y" * 5 * MAX_TEXT, "manifest")
    job.finish(at(1), [long], ucc_probes_screened=0, ucc_matches_queued=0)
    (kept,) = job.rows
    assert len(kept.name) == len(kept.reason) == MAX_TEXT
    assert kept.reason.startswith("manifest line 2: ") and kept.name.endswith("...")


def test_a_failed_job_keeps_why_and_the_rows_done():
    job = started()
    job.begin(at(0.1))
    job.record_progress(at(0.2), 2, 9)
    job.fail(
        at(0.3), JobFailure(FailureKind.POLICY_REFUSAL, "the library's approval is not in force", ("L-12",))
    )
    assert job.status is JobStatus.FAILED and job.ended_at == at(0.3)
    assert (job.done, job.total, job.enrolled) == (2, 9, None)
    assert job.failure == JobFailure(
        FailureKind.POLICY_REFUSAL, "the library's approval is not in force", ("L-12",)
    )
    # A refusal of the manifest before any batch: the total is what was done, none.
    early = started()
    early.fail(at(1), JobFailure(FailureKind.REFUSED, "the manifest lacks the columns ['file']"))
    assert (early.done, early.total) == (0, 0)
    with pytest.raises(ValueError):
        started().fail(at(1), JobFailure(FailureKind.INTERRUPTED, "not by fail()"))


def test_A01_a_job_whose_runner_is_gone_is_recorded_interrupted_and_only_then():
    """A-01: the record says interrupted only when the runner has ended; a live runner's job is refused so."""
    job = started()
    job.begin(at(0.1))
    job.record_progress(at(0.2), 4, 10)
    refused("A-01", lambda: job.interrupt(at(0.3), runner_alive=True), job)
    assert job.status is JobStatus.RUNNING
    job.interrupt(at(0.4), runner_alive=False)
    assert job.status is JobStatus.FAILED and job.ended_at == at(0.4)
    assert job.failure is not None and job.failure.kind is FailureKind.INTERRUPTED
    assert "after 4 of 10 rows" in job.failure.detail and "duplicates" in job.failure.detail
    assert (job.done, job.total) == (4, 10)
    event = job.pending_events[-1]
    assert isinstance(event, ImportJob.Interrupted) and event.runner == RUNNER


def test_A01_nothing_is_recorded_of_a_job_after_its_end():
    """A-01: a job's recorded end is final: progress, another end or an interruption after it is refused."""
    job = started()
    job.interrupt(at(1), runner_alive=False)
    assert job.done == 0 and job.total == 0
    refused("A-01", lambda: job.begin(at(2)), job)
    refused("A-01", lambda: job.record_progress(at(2), 1, 3), job)
    refused("A-01", lambda: job.finish(at(2), rows(1), ucc_probes_screened=0, ucc_matches_queued=0), job)
    refused("A-01", lambda: job.fail(at(2), JobFailure(FailureKind.INTERNAL, "late")), job)
    refused("A-01", lambda: job.interrupt(at(2), runner_alive=False), job)
    assert all(r.actor == IMPORT_JOBS for r in job.refusals)


def test_progress_only_moves_forward_within_the_manifest():
    job = started()
    job.record_progress(at(1), 2, 4)
    for done, total in ((1, 4), (5, 4), (-1, 4)):
        with pytest.raises(ValueError):
            job.record_progress(at(2), done, total)


def test_a_stored_job_reads_back_as_it_was_and_holds_plain_data():
    app = Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    job = started()
    job.begin(at(0.1))
    job.record_progress(at(0.2), 3, 3)
    job.finish(at(0.3), rows(3), ucc_probes_screened=1, ucc_matches_queued=0)
    interrupted = started()
    interrupted.interrupt(at(1), runner_alive=False)
    app.save(job, interrupted)
    for original in (job, interrupted):
        copy = app.repository.get(original.id)
        assert copy.state() == original.state()
        for stored in app.recorder.select_events(original.id):
            json.loads(stored.state)
    assert app.repository.get(job.id).rows[0].rule_ids == ("R-01", "T-01")
