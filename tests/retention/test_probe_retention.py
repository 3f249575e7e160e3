"""The sweep and probes: R-02, R-03 within 31 days of the search, U-04 after a cache removal, R-04 holds."""

from __future__ import annotations

from uuid import UUID

import domain_builders
from retention_history import History

from rfr.application.services.retention import HeldItem
from rfr.domain.forms import LegalHold
from rfr.domain.probe_image import ProbeImage

WORKER = "rfr:retention-worker"


def _purged_event(history: History, probe_id: str) -> ProbeImage.Purged:
    (event,) = [
        e
        for e in history.world.app.repository.event_store.get(UUID(probe_id))
        if isinstance(e, ProbeImage.Purged)
    ]
    return event


def test_R02_R03_R03a_probes_go_by_31_days_after_their_last_search_and_probes_still_in_use_stay(
    history: History,
):
    library = history.library("custody", ["adam_sandler", "bill_simon", "carlos_moya"])
    matched, request = history.searched_probe("adam_sandler", library)
    history.adjudicate_top(request, viable=True)
    unmatched, request = history.searched_probe("bill_simon", library)
    history.adjudicate_top(request, viable=False)
    cached, request = history.searched_probe("carlos_moya", library)
    history.adjudicate_top(request, viable=False)
    history.add_to_ucc(cached)
    never_searched = history.world.probes.submit(
        "analyst", domain_builders.form3(), history.photos["anne_mclellan"][2].read_bytes()
    ).probe_id
    history.advance(days=20)
    searched_later, _ = history.searched_probe("barbara_walters", library)

    history.advance(days=9, hours=23)  # 29 days 23 hours after the first searches
    assert dict(history.sweep().deleted) == {}
    history.advance(hours=1)  # 30 days: the day of lead time brings the 31-day deadline in
    summary = history.sweep()

    assert dict(summary.deleted) == {"R-02": 1, "R-03": 1}
    assert (summary.held, summary.failed) == ((), ())
    assert summary.templates_destroyed == 2
    for probe_id, rule in [(matched, "R-02"), (unmatched, "R-03")]:
        assert not history.probe_stored(probe_id)
        probe = history.probe(probe_id)
        assert probe.purged_at == history.now and probe.templates == []
        event = _purged_event(history, probe_id)
        assert event.acting.user_id == WORKER and event.reason.startswith(rule)
    for probe_id in (cached, never_searched, searched_later):
        assert history.probe_stored(probe_id) and history.probe(probe_id).purged_at is None

    again = history.sweep()
    assert (dict(again.deleted), again.failed) == ({}, ())
    history.advance(days=21)  # 51 days: the later search's window has closed
    # R-03a: the probe never searched has waited its 31 days after submission for a search.
    assert dict(history.sweep().deleted) == {"R-03": 1, "R-03a": 1}
    assert not history.probe_stored(searched_later) and not history.probe_stored(never_searched)
    assert history.probe_stored(cached)


def test_U04_R04_a_removed_cache_entry_goes_within_31_days_and_a_held_probe_is_reported_not_deleted(
    history: History,
):
    """R-04: a removed cache entry goes within 31 days and a held probe is reported not deleted."""
    library = history.library("custody", ["adam_sandler", "bill_simon"])
    cached, request = history.searched_probe("carlos_moya", library)
    history.adjudicate_top(request, viable=False)
    history.add_to_ucc(cached)
    held, _ = history.searched_probe("anne_mclellan", library)
    hold = LegalHold("complaint about the investigation under review", "complaint")
    history.hold_probe(held, hold)
    history.advance(days=40)

    summary = history.sweep()

    assert dict(summary.deleted) == {}
    assert summary.held == (HeldItem("probe", held, "R-03", 1, hold.kind, hold.reason),)
    assert history.probe_stored(held) and history.probe_stored(cached)

    history.ucc.remove("analyst", cached, "the suspect was identified by a witness")
    history.advance(days=29, hours=23)
    assert dict(history.sweep().deleted) == {}
    history.advance(hours=1)
    removed = history.sweep()

    assert dict(removed.deleted) == {"U-04": 1} and removed.held == summary.held
    assert not history.probe_stored(cached)
    assert _purged_event(history, cached).reason.startswith("U-04")
    assert history.probe_stored(held) and history.probe(held).purged_at is None
