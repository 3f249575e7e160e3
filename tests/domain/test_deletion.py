"""Deletion deadlines and holds for probes and library images (R-02, R-03, R-04, R-05, U-04)."""

from __future__ import annotations

from datetime import timedelta

from domain_builders import (
    ADMIN,
    ANALYST,
    CONFIG,
    INSPECTOR,
    OP_LEAD,
    T0,
    approvals_of,
    at,
    batch_of,
    open_request,
    ready_probe,
    refused,
    search,
    searchable_library,
)

from rfr.domain.forms import LegalHold
from rfr.domain.search_terms import SearchGround

HOLD = LegalHold("disclosure in R v Smith pending", "disclosure")


def searched(when=T0):
    probe, pair = ready_probe(), searchable_library()
    request = open_request(probe, pair)
    search(request, probe, pair, when=when)
    return probe, request


def test_R02_probe_with_viable_match_is_due_for_deletion_31_days_after_the_search():
    """R-02: probe with viable match is due for deletion 31 days after the search."""
    probe, request = searched(at(2))
    request.adjudicate(
        ANALYST,
        at(3),
        request.candidates()[0].candidate_id,
        True,
        "match",
        identity_known=True,
        approvals=approvals_of(request),
    )
    assert probe.deletion_due(CONFIG, [request]) == at(2) + timedelta(days=31)


def test_R03_probe_without_match_and_not_in_the_cache_is_due_31_days_after_the_search():
    """R-03: probe without match and not in the cache is due 31 days after the search."""
    probe, request = searched(at(2))
    assert probe.deletion_due(CONFIG, [request]) == at(33)
    probe.add_to_ucc(INSPECTOR, at(3), [request], [SearchGround.OFFENCE], "outstanding", config=CONFIG)
    assert probe.deletion_due(CONFIG, [request]) is None


def test_U04_removal_from_the_cache_sets_the_deletion_deadline():
    probe, request = searched()
    probe.add_to_ucc(INSPECTOR, at(1), [request], [SearchGround.OFFENCE], "outstanding", config=CONFIG)
    refused("U-04", lambda: probe.remove_from_ucc(ANALYST, at(5), " ", CONFIG), probe)
    probe.remove_from_ucc(ANALYST, at(5), "suspect identified by other means", CONFIG)
    assert probe.deletion_due(CONFIG, [request]) == at(36)
    refused("U-03", lambda: probe.remove_from_ucc(ANALYST, at(6), "again", CONFIG), probe)


def test_R04_legal_hold_suspends_probe_deletion_until_lifted():
    probe, request = searched()
    probe.place_legal_hold(OP_LEAD, at(1), HOLD)
    assert probe.deletion_due(CONFIG, [request]) is None
    refused("R-04", lambda: probe.purge(ANALYST, at(40), "deadline reached"), probe)
    probe.lift_legal_hold(OP_LEAD, at(50), "trial concluded")
    probe.purge(ANALYST, at(51), "deadline reached")
    assert probe.pending_events[-1].template_ids == ["probe-tpl-1"]
    refused("R-05", lambda: probe.purge(ANALYST, at(52), "again"), probe)
    # Nothing is left to hold once the probe is deleted.
    refused("R-04", lambda: probe.place_legal_hold(OP_LEAD, at(53), HOLD), probe)


def test_R04_legal_hold_suspends_library_image_deletion():
    _, library = searchable_library()
    batch = batch_of(library)
    library.place_legal_hold(OP_LEAD, T0, HOLD)
    refused(
        "R-04",
        lambda: batch.purge_images(ADMIN, at(1), ["lib-0"], "retention", hold=library.legal_hold),
        batch,
    )
    library.lift_legal_hold(OP_LEAD, at(2), "complaint closed")
    batch.purge_images(ADMIN, at(3), ["lib-0"], "retention", hold=library.legal_hold)
    assert batch.pending_events[-1].template_ids == ["tpl-lib-0"]
    assert "lib-0" not in batch.searchable_image_ids(at(3))
