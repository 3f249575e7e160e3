"""Flags recorded for the Operational Lead when they fall due (L-06, L-09, L-10, U-03), once each."""

from __future__ import annotations

from datetime import timedelta

from domain_builders import (
    ANALYST,
    CONFIG,
    INSPECTOR,
    OP_LEAD,
    SUPERINTENDENT,
    T0,
    application,
    approved,
    at,
    open_request,
    ready_probe,
    record,
    search,
    searchable_library,
)

from rfr.domain.forms import LibraryKind, ReviewOutcome
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.overdue_flags import NOTIFIED, OVERSIGHT_WORKER
from rfr.domain.search_terms import SearchGround, Urgency, UrgencyBasis

URGENT = Urgency(UrgencyBasis.RISK_TO_LIFE_OR_HARM, "child missing, sighting in the last hour")
SECOND = timedelta(seconds=1)


def _flagged(aggregate, event_class) -> list:
    return [e for e in aggregate.collect_events() if isinstance(e, event_class)]


def test_L06_an_overdue_review_is_flagged_once_per_review_date():
    approval = approved(review_days=30)
    due = at(30)
    assert approval.raise_due_flags(OVERSIGHT_WORKER, due) == ()  # due, not yet overdue
    assert approval.raise_due_flags(OVERSIGHT_WORKER, due + SECOND) == ("L-06",)
    (event,) = _flagged(approval, LibraryApproval.FlaggedOverdue)
    assert (event.rule_id, event.due, event.notified) == ("L-06", due, [NOTIFIED])
    assert event.acting.user_id == "rfr:oversight-worker" and event.timestamp == due + SECOND
    assert approval.raise_due_flags(OVERSIGHT_WORKER, at(40)) == ()  # once

    approval.review(OP_LEAD, at(41), ReviewOutcome.CONTINUE, "still needed", CONFIG, next_review_due=at(90))
    assert approval.flags_to_raise(at(90)) == ()
    assert approval.raise_due_flags(OVERSIGHT_WORKER, at(91)) == ("L-06",)  # the new date, again
    assert [f for f, _ in approval.flags_raised] == ["L-06", "L-06"]


def test_L09_a_written_rationale_past_its_due_date_is_flagged_and_not_once_recorded():
    approval = LibraryApproval.apply_for(ANALYST, T0, application())
    approval.approve(SUPERINTENDENT, T0, record(rationale=""), CONFIG, urgency=URGENT)
    due = approval.written_rationale_due
    assert approval.flags_to_raise(due) == ()  # outstanding, not yet overdue
    assert approval.flags_to_raise(due + SECOND) == (("L-09", due),)

    on_time = LibraryApproval.apply_for(ANALYST, T0, application())
    on_time.approve(SUPERINTENDENT, T0, record(rationale=""), CONFIG, urgency=URGENT)
    on_time.record_written_rationale(SUPERINTENDENT, at(1), "written rationale")
    assert on_time.flags_to_raise(at(20)) == ()  # before its review date (L-06)


def test_L10_an_inspectors_urgent_approval_is_flagged_from_the_approval_until_a_superintendent_decides():
    approval = LibraryApproval.apply_for(ANALYST, T0, application(LibraryKind.TEMPORARY))
    approval.approve_urgently_as_inspector(INSPECTOR, T0, record(), URGENT, CONFIG)
    assert approval.raise_due_flags(OVERSIGHT_WORKER, T0) == ("L-10",)
    assert approval.raise_due_flags(OVERSIGHT_WORKER, at(2)) == ()
    approval.ratify(SUPERINTENDENT, at(3), "continue: proportionate")
    assert approval.flags_to_raise(at(4)) == ()


def test_U03_an_overdue_cache_review_is_flagged_once_per_review_date():
    probe, pair = ready_probe(), searchable_library()
    request = open_request(probe, pair)
    search(request, probe, pair)
    probe.add_to_ucc(INSPECTOR, at(1), [request], [SearchGround.OFFENCE], "outstanding", config=CONFIG)
    due = probe.ucc.review_due
    assert not probe.flag_ucc_review(OVERSIGHT_WORKER, due)
    assert probe.flag_ucc_review(OVERSIGHT_WORKER, due + SECOND)
    assert not probe.flag_ucc_review(OVERSIGHT_WORKER, due + timedelta(days=5))
    (event,) = _flagged(probe, type(probe).UccReviewFlaggedOverdue)
    assert (event.due, event.notified, event.acting.user_id) == (due, [NOTIFIED], "rfr:oversight-worker")

    probe.review_ucc_entry(ANALYST, due + timedelta(days=6), ReviewOutcome.CONTINUE, "still open", CONFIG)
    later = probe.ucc.review_due
    assert not probe.ucc_review_flag_due(later)
    assert probe.flag_ucc_review(OVERSIGHT_WORKER, later + SECOND)
