"""A library's index catches up with the template events after its position before a search.

Whatever wrote the events (another process, one that died before writing the index), the next
search applies them: templates built are added, purged ones removed, and the position moves to
the log's head, so the search after reads nothing again. No rebuild from the store is needed.
"""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path
from uuid import UUID

import pytest
from app_world import FixedClock, World, memory_app, sqlite_app
from fake_biometrics import face_image, fake_biometrics

from rfr.application.services import index_catch_up
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
        lost.setattr(world.enrolment, "_index", lambda _lib, _alg, staged: [t for t, _ in staged.values()])
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


def index_files(world: World) -> dict[str, tuple[int, int, int]]:
    """Every index file: (inode, size, mtime); a write of any kind changes one of them."""
    root = world.bio.indexes.root
    return {
        str(p.relative_to(root)): (s.st_ino, s.st_size, s.st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and (s := p.stat())
    }


def searched_once(world: World, library_id: UUID, probe_id: UUID) -> str:
    """A new request for the probe, the library searched: the nearest candidate's image id."""
    request = world.searches.open("analyst", probe_id, [LibrarySelection(str(library_id), "held here")])
    found = world.execution.search_library("analyst", request.id, str(library_id), top_k=1)
    return found.candidates[0].image_id


def test_searches_that_find_no_template_change_write_nothing_and_a_restart_still_finds_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(sqlite_app(tmp_path / "log"), FixedClock(), fake_biometrics(tmp_path / "bio")).populate()
    _, library_id = world.enrolled_library(n=3, steps=5)
    probe_id = world.probe()
    nearest = world.image_ids(library_id)[0]
    assert searched_once(world, library_id, probe_id) == nearest  # saves the index's first position
    saved = world.bio.index(str(library_id)).position
    assert saved is not None

    locked: list[str] = []
    writing = world.bio.indexes.writing

    def counted(*args: object, **kwargs: object) -> object:
        locked.append(str(args[0]))
        return writing(*args, **kwargs)

    monkeypatch.setattr(world.bio.indexes, "writing", counted)
    starts: list[int] = []
    select = world.app.recorder.select_notifications

    def reading(*args: object, **kwargs: object) -> object:
        starts.append(kwargs["start"])  # type: ignore[arg-type]
        return select(*args, **kwargs)

    monkeypatch.setattr(world.app.recorder, "select_notifications", reading)
    before = index_files(world)
    heads = []
    for _ in range(20):
        heads.append(world.app.recorder.max_notification_id())
        assert searched_once(world, library_id, probe_id) == nearest
    # Twenty searches, each of which moved the log: no index file written, no write lock taken.
    assert index_files(world) == before and locked == []
    assert world.bio.index(str(library_id)).position == saved
    # Each search read from where the one before reached (kept in memory), not the saved position.
    assert starts[-1] >= heads[-2] > saved

    # An enrolment whose process died before it wrote the index: a template event to catch up.
    monkeypatch.setattr(world.enrolment, "_index", lambda _lib, _alg, staged: [t for t, _ in staged.values()])
    item = EnrolmentItem(face_image(1), date(2022, 1, 1), PerceivedAgeBand.ADULT, MopiGroup.GROUP_2)
    (late,) = world.enrolment.enrol("op-lead", str(library_id), [item]).enrolled
    world.app.close()

    # A restart: the memory is gone, the catch-up starts from the older saved position.
    again = World(sqlite_app(tmp_path / "log"), FixedClock(), fake_biometrics(tmp_path / "bio"))
    assert again.bio.index(str(library_id)).position == saved
    assert late.template_id not in again.bio.index(str(library_id))
    assert catch_up(again.app, again.bio, str(library_id)) == 1  # the late template's event
    index = again.bio.index(str(library_id))
    assert late.template_id in index and len(index) == 4
    assert index.position == again.app.recorder.max_notification_id()
    assert searched_once(again, library_id, probe_id) == late.image_id  # the nearest now


def test_a_position_far_behind_is_saved_once_not_by_every_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = World(sqlite_app(tmp_path / "log"), FixedClock(), fake_biometrics(tmp_path / "bio")).populate()
    _, library_id = world.enrolled_library(n=2)
    probe_id = world.probe()
    searched_once(world, library_id, probe_id)
    index = world.bio.index(str(library_id))
    saved = index.position
    assert saved is not None
    monkeypatch.setattr(index_catch_up, "POSITION_GAP", 5)
    files, positions = index_files(world), []
    for _ in range(12):
        searched_once(world, library_id, probe_id)
        positions.append(index.position)
    # A search moves the log by a few notifications: the position is saved when it is more than
    # 5 ahead of the saved one, so by some searches, never by two in a row.
    steps = list(itertools.pairwise([saved, *positions]))
    saves = [n for n, (p, q) in enumerate(steps) if q != p]
    assert saves and all(b - a > 1 for a, b in itertools.pairwise(saves)), positions
    assert all(steps[n][1] - steps[n][0] > 5 for n in saves), positions
    assert index_files(world) != files
