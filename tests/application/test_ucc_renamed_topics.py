"""The Unresolved Crime Cache is called ``ucc`` everywhere; a trail written before still reads.

Event classes were renamed (``AddedToUnresolvedCache`` became ``AddedToUcc``, ``CacheMatchQueue``
became ``UccMatchQueue`` ...). The audit trail is never rewritten (A-01), so events stored under
the old topics must still load, and listings by topic must still find them.
"""

from __future__ import annotations

from app_world import World, memory_app
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import resolve_topic
from test_searches_and_ucc import _no_viable_match

from rfr.domain.governed import stored_topics
from rfr.domain.probe_image import ProbeImage
from rfr.domain.search_terms import SearchGround
from rfr.domain.ucc_matches import UccMatchQueue

FORMER = {
    "rfr.domain.probe_image:ProbeImage.AddedToUnresolvedCache": ProbeImage.AddedToUcc,
    "rfr.domain.probe_image:ProbeImage.CacheReviewed": ProbeImage.UccReviewed,
    "rfr.domain.probe_image:ProbeImage.RemovedFromCache": ProbeImage.RemovedFromUcc,
    "rfr.domain.cache_matches:CacheMatchQueue": UccMatchQueue,
    "rfr.domain.cache_matches:CacheMatchQueue.Opened": UccMatchQueue.Opened,
    "rfr.domain.cache_matches:CacheMatchQueue.MatchesQueued": UccMatchQueue.MatchesQueued,
    "rfr.domain.cache_matches:CacheMatchQueue.MatchAdjudicated": UccMatchQueue.MatchAdjudicated,
}
RENAMED = {new_topic: old for old, cls in FORMER.items() for new_topic in stored_topics(cls)[:1]}


def test_U01_former_topics_resolve_to_the_renamed_classes():
    for old, cls in FORMER.items():
        assert resolve_topic(old) is cls
        assert old in stored_topics(cls)


def test_U01_a_ucc_entry_stored_under_the_former_topics_is_still_read_and_listed(world: World):
    """U-01: a trail written before the rename (topics rewritten to the old names) reads the same."""
    _, probe_id, _ = _no_viable_match(world)
    entry = world.ucc.add("inspector", probe_id, [SearchGround.OFFENCE], "offender still at large")
    events = world.app.recorder.select_notifications(start=1, limit=10_000)
    old_style = [
        StoredEvent(e.originator_id, e.originator_version, RENAMED.get(e.topic, e.topic), e.state)
        for e in events
    ]
    assert any(e.topic == "rfr.domain.probe_image:ProbeImage.AddedToUnresolvedCache" for e in old_style)
    before = World(memory_app(), world.clock)
    before.app.recorder.insert_events(old_style)
    assert before.app.get(probe_id, ProbeImage).ucc is not None
    assert before.ucc.entries("analyst").items == (entry,)
