"""The sweep's pure decisions (rfr.domain.retention_sweep) on aggregates built by the domain builders."""

from __future__ import annotations

from datetime import timedelta

import attrs
import domain_builders as b
import pytest

from rfr.domain.forms import LegalHold
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.retention_sweep import (
    DEFAULT_LEAD_TIME,
    RETENTION_WORKER,
    ImagesDue,
    approval_ended,
    approval_lapsed,
    library_due,
    probe_due,
)
from rfr.domain.search_terms import SearchGround

HOLD = LegalHold("conduct investigation into the arrest", "conduct")


def _searched(days: float = 0):
    pair = b.searchable_library()
    probe = b.ready_probe()
    request = b.open_request(probe, pair, when=b.at(days))
    b.search(request, probe, pair, when=b.at(days))
    return probe, request


def test_L12_an_approval_past_its_end_date_has_lapsed_until_its_expiry_is_recorded():
    """L-12: an approval past its end date has lapsed until its expiry is recorded."""
    approval = b.approved(expires_at=b.at(10))
    assert not approval_lapsed(approval, b.at(9)) and not approval_ended(approval, b.at(9))
    assert approval_lapsed(approval, b.at(10)) and approval_ended(approval, b.at(10))
    approval.expire(RETENTION_WORKER, b.at(10), b.CONFIG)
    assert not approval_lapsed(approval, b.at(11)) and approval_ended(approval, b.at(11))


def test_L12_R01_every_image_not_yet_deleted_is_due_once_the_approval_stopped_otherwise():
    """R-01: every image not yet deleted is due once the approval stopped otherwise."""
    approval, library = b.searchable_library()
    batch = b.batch_of(library)

    def due_at(t):
        return library_due(library, approval, t, ImagesDue.held_by(batch, t))

    assert due_at(b.at(1)) is None
    approval.stop(b.SUPERINTENDENT, b.at(1), "operation closed", b.CONFIG)
    due = due_at(b.at(1))
    assert (due.rule_id, due.to_expire, due.hold) == ("L-12", (), None)
    assert due.to_delete == tuple(sorted(batch.images))
    batch.purge_images(b.ADMIN, b.at(2), ["lib-0"], "L-12", hold=None)
    assert due_at(b.at(2)).to_delete == ("lib-1", "lib-2")


def test_R01_R04_images_are_due_from_their_limit_day_and_a_hold_is_carried():
    """R-04: images are due from their limit day and a hold is carried."""
    approval, library = b.searchable_library()
    batch = b.batch_of(library)

    def due_at(t):
        return library_due(library, approval, t, ImagesDue.held_by(batch, t))

    limit = batch.images["lib-0"].retention_until
    day_before = b.at((limit - b.T0.date()).days - 1)
    assert due_at(day_before) is None
    library.place_legal_hold(b.OP_LEAD, b.T0, HOLD)
    due = due_at(day_before + timedelta(days=1))
    assert (due.rule_id, due.to_expire, due.to_delete, due.hold) == (
        "R-01",
        due.to_delete,
        due.to_delete,
        HOLD,
    )
    assert len(due.to_delete) == 3
    batch.expire_images(RETENTION_WORKER, day_before + timedelta(days=1), b.CONFIG)
    again = due_at(day_before + timedelta(days=2))
    assert (again.to_expire, again.to_delete) == ((), due.to_delete)  # out of searching, still held


@pytest.mark.parametrize("held", [False, True])
def test_R03_R04_a_probe_is_due_a_lead_time_before_31_days_after_its_last_search_held_or_not(held):
    """R-04: a probe is due a lead time before 31 days after its last search held or not."""
    probe, request = _searched()
    if held:
        probe.place_legal_hold(b.OP_LEAD, b.T0, HOLD)
    deadline = b.at(31)
    assert probe_due(probe, [request], deadline - DEFAULT_LEAD_TIME - timedelta(seconds=1), b.CONFIG) is None
    due = probe_due(probe, [request], deadline - DEFAULT_LEAD_TIME, b.CONFIG)
    assert (due.rule_id, due.due, due.hold) == ("R-03", deadline, HOLD if held else None)
    if not held:
        assert probe.deletion_due(b.CONFIG, [request]) == deadline
    assert probe_due(probe, [request], deadline, b.CONFIG, lead_time=timedelta(0)).due == deadline


def test_R02_U04_which_rule_deletes_a_probe_and_none_while_it_is_cached():

    probe, request = _searched()
    request.adjudicate(
        b.ANALYST,
        b.T0,
        request.candidates()[0].candidate_id,
        True,
        "same man",
        identity_known=True,
        approvals=b.approvals_of(request),
    )
    assert probe_due(probe, [request], b.at(31), b.CONFIG).rule_id == "R-02"

    cached, unmatched = _searched()
    cached.add_to_ucc(
        b.INSPECTOR, b.T0, [unmatched], [SearchGround.OFFENCE], "still unsolved", config=b.CONFIG
    )
    assert probe_due(cached, [unmatched], b.at(400), b.CONFIG) is None
    cached.place_legal_hold(b.OP_LEAD, b.at(50), HOLD)
    assert probe_due(cached, [unmatched], b.at(400), b.CONFIG) is None  # held or not, nothing is due
    cached.lift_legal_hold(b.OP_LEAD, b.at(60), "complaint closed")
    cached.remove_from_ucc(b.ANALYST, b.at(100), "resolved by other means", b.CONFIG)
    due = probe_due(cached, [unmatched], b.at(130), b.CONFIG)
    assert (due.rule_id, due.due) == ("U-04", b.at(131))
    assert cached.deletion_due(b.CONFIG, [unmatched]) == due.due


@pytest.mark.parametrize("held", [False, True])
def test_R03a_R04_a_never_searched_probe_is_due_its_period_after_submission_not_a_moment_before(held):
    """R-03a: with no search, the probe goes the configured period after its submission; no lead
    time shortens that wait. A request opened but not run is no search. R-04: a hold is reported."""
    probe = b.ready_probe()  # submitted at T0
    opened = b.open_request(probe, b.searchable_library())  # never run
    if held:
        probe.place_legal_hold(b.OP_LEAD, b.T0, HOLD)
    end = b.at(PolicyConfig().never_searched_probe_days)
    assert end == b.at(31)  # the default
    assert probe_due(probe, [opened], end - timedelta(seconds=1), b.CONFIG) is None
    due = probe_due(probe, [opened], end, b.CONFIG)
    assert (due.rule_id, due.due, due.hold) == ("R-03a", end, HOLD if held else None)
    assert probe.deletion_due(b.CONFIG, [opened]) == (None if held else end)


def test_R03a_the_never_searched_period_is_the_policy_config_s():
    probe = b.ready_probe()
    config = attrs.evolve(b.CONFIG, never_searched_probe_days=90)
    assert probe_due(probe, [], b.at(89), config) is None
    assert probe_due(probe, [], b.at(90), config).rule_id == "R-03a"
    assert probe_due(probe, [], b.at(31), b.CONFIG).rule_id == "R-03a"


def test_R03_R03a_a_search_ends_the_wait_and_starts_the_31_days_of_R03():
    probe, request = _searched(days=30)  # submitted at T0, searched on day 30
    assert probe_due(probe, [request], b.at(31), b.CONFIG) is None
    assert probe_due(probe, [request], b.at(61) - DEFAULT_LEAD_TIME, b.CONFIG).rule_id == "R-03"
