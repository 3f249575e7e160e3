"""On the SQLite event store: the whole flow survives a restart, and two writers never half-save."""

from __future__ import annotations

from pathlib import Path

import domain_builders as b
import pytest
from app_world import FixedClock, World, sqlite_app
from fake_biometrics import fake_biometrics

from rfr.application.app import ConcurrentModification
from rfr.application.services.searches import LibrarySelection
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.forms import Dissemination
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.match_report import DISSEMINATION_CAVEAT
from rfr.domain.user import User
from rfr.infrastructure.audit.verification import verify


def test_S04_S05_S06_S07_approval_to_dissemination_on_sqlite_survives_a_restart(
    tmp_path: Path, clock: FixedClock
) -> None:
    """S-04, S-05, S-06, S-07: approval to dissemination on sqlite survives a restart."""
    world = World(sqlite_app(tmp_path), clock, fake_biometrics(tmp_path)).populate()
    # Applied, approved, created, enrolled, templated and searched through the services.
    approval_id, library_id = world.enrolled_library("custody")
    probe_id = world.probe()
    request = world.searches.open("analyst", probe_id, [LibrarySelection(str(library_id), "custody images")])
    assert len(world.search(request.id, library_id).candidates) == 2
    candidate = f"{library_id}#1"
    world.searches.adjudicate("analyst", request.id, candidate, True, "strong likeness", identity_known=True)
    report = world.searches.issue_match_report("analyst", request.id, candidate)
    world.searches.record_dissemination(
        "analyst", request.id, report.report_id, Dissemination("CPS", "s.35", True)
    )
    with pytest.raises(PolicyRefusal):
        world.searches.close("auditor", request.id, "not theirs to close")
    world.searches.close("analyst", request.id, "suspect charged")

    restarted = World(sqlite_app(tmp_path), FixedClock(clock.now()), fake_biometrics(tmp_path))
    view = restarted.searches.get("sergeant", request.id)
    assert view.status == "closed" and view.has_viable_match
    assert view.reports[0].caveat == DISSEMINATION_CAVEAT
    assert [d.recipient for d in view.disseminations] == ["CPS"]
    assert restarted.approvals.get("analyst", approval_id).status == "approved"
    assert restarted.app.get(request.id).refusals[-1].actor.user_id == "auditor"
    assert verify(restarted.app.recorder).ok
    # The potential matches still name the subjects enrolled, read back from the encrypted store.
    found = restarted.execution.candidates("sergeant", request.id)
    assert [(c.candidate_id, c.subject) for c in found] == [
        (candidate, "custody-0"),
        (f"{library_id}#2", "custody-1"),
    ]


def test_A01_two_writers_on_one_file_the_second_saves_nothing(tmp_path: Path, clock: FixedClock) -> None:
    """A-01: two writers on one file the second saves nothing."""
    first = World(sqlite_app(tmp_path), FixedClock(clock.now())).populate()
    approval_id = first.approvals.apply("analyst", b.application()).id
    second_clock = FixedClock(clock.now())
    second_clock.advance(hours=2)  # the second writer's activity is due, so its save holds two aggregates
    second = World(sqlite_app(tmp_path), second_clock)
    head = first.app.recorder.max_notification_id()
    supt_before = second.app.get(User.id_for("supt"), User).version

    # The second process has loaded the approval; before it decides, the first one rejects it.
    second_clock.before_next = lambda: first.approvals.reject("sro", approval_id, "not needed")
    with pytest.raises(ConcurrentModification):
        second.approvals.approve("supt", approval_id, b.record(clock.now()))

    stored = second.app.get(approval_id, LibraryApproval)
    assert stored.status.value == "rejected" and stored.approver_id is None
    assert second.app.get(User.id_for("supt"), User).version == supt_before  # no activity half-saved
    # Only the first writer's decision was stored (the SRO acted within the hour, so no activity stamp).
    since = second.app.recorder.select_notifications(start=head, limit=100, inclusive_of_start=False)
    assert [n.topic.rsplit(".", 1)[-1] for n in since] == ["Rejected"]


@pytest.mark.parametrize(
    ("acting", "rule"),
    [("analyst", "A-05"), ("inspector", "L-03")],
    ids=["refused by the service", "refused by the domain"],
)
def test_A01_a_refusal_racing_another_writer_is_still_stored(
    tmp_path: Path, clock: FixedClock, acting: str, rule: str
) -> None:
    """A-01: a refusal racing another writer is still stored."""
    first = World(sqlite_app(tmp_path), FixedClock(clock.now())).populate()
    approval_id = first.approvals.apply("analyst", b.application()).id
    second_clock = FixedClock(clock.now())
    second = World(sqlite_app(tmp_path), second_clock)
    second_clock.before_next = lambda: first.approvals.reject("sro", approval_id, "not needed")
    with pytest.raises(PolicyRefusal) as caught:
        second.approvals.approve(acting, approval_id, b.record(clock.now()))
    assert rule in caught.value.rule_ids
    # The approval moved on under the refused writer, so the refusal became an attempt of its own.
    assert caught.value.record is not None
    attempt = second.app.get(caught.value.record.id)
    assert attempt.refusals[0].actor.user_id == acting and str(approval_id) in attempt.target
    assert second.app.get(approval_id, LibraryApproval).refusals == ()
