"""A library's index catches up with the template events after its position before a search.

Whatever wrote the events (another process, one that died before writing the index), the next
search applies them: templates built are added, purged ones removed, and the position moves to
the log's head, so the search after reads nothing again. No rebuild from the store is needed.
"""

from __future__ import annotations

from datetime import date
from uuid import UUID

import pytest
from app_world import FixedClock, World, memory_app
from fake_biometrics import face_image

from rfr.application.services.enrolment import EnrolmentItem
from rfr.application.services.index_catch_up import catch_up
from rfr.application.services.searches import LibrarySelection
from rfr.domain.enrolment_batch import EnrolmentBatch
from rfr.domain.images import MopiGroup, PerceivedAgeBand


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    world = World(memory_app(), FixedClock()).populate()

    def no_rebuild(*args: object, **kwargs: object) -> None:
        raise AssertionError("the index was rebuilt from the store; catching up should have sufficed")

    monkeypatch.setattr(world.bio.indexes, "rebuild", no_rebuild)
    return world


def test_templates_whose_index_write_was_lost_are_added_by_the_next_search(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, library_id = world.enrolled_library(n=3, steps=5)
    index = world.bio.index(str(library_id))
    # An enrolment saved, then its process died before it wrote the index.
    with monkeypatch.context() as lost:
        lost.setattr(world.enrolment, "_index", lambda library_id, staged: [t for t, _ in staged.values()])
        item = EnrolmentItem(face_image(1), date(2022, 1, 1), PerceivedAgeBand.ADULT, MopiGroup.GROUP_2)
        report = world.enrolment.enrol("op-lead", str(library_id), [item])
    (late,) = report.enrolled
    assert late.template_id not in index

    probe_id = world.probe()
    request = world.searches.open("analyst", probe_id, [LibrarySelection(str(library_id), "held here")])
    found = world.execution.search_library("analyst", request.id, str(library_id), top_k=1)
    assert found.candidates[0].image_id == late.image_id  # the nearest, found though never indexed
    assert late.template_id in world.bio.index(str(library_id))
    # Caught up to the log's head before the search recorded itself; no template event since.
    assert world.bio.index(str(library_id)).position == world.app.recorder.max_notification_id() - 1
    assert catch_up(world.app, world.bio, str(library_id)) == 0


def test_a_purge_recorded_elsewhere_leaves_the_index_at_the_next_catch_up(world: World) -> None:
    _, library_id = world.enrolled_library(n=3)
    rows = world.app.library_images.page(str(library_id), 0, 10)
    victim = rows[0]
    (template_id,) = world.app.library_images.templates_of([victim.image_id])[victim.image_id].values()
    assert template_id in world.bio.index(str(library_id))
    # Recorded by a process that erased the store's records but died before the index.
    batch = world.app.get(UUID(victim.holder_id), EnrolmentBatch)
    batch.purge_images(world.actor("op-lead"), world.clock.now(), [victim.image_id], "R-05", hold=None)
    world.app.save(batch)
    world.bio.store.erase(template_id)

    assert catch_up(world.app, world.bio, str(library_id)) >= 1
    index = world.bio.index(str(library_id))
    assert template_id not in index and len(index) == 2
