"""Projections are kept in the same transaction as the events, and equal their rebuild (ADR 0013).

The library images projection is driven here through the domain commands and the production
enrolment, on the in-memory store and on SQLite; after any sequence of commands its tables are
exactly what replaying the whole log into empty tables gives.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import domain_builders as b
import pytest
from app_world import FixedClock, World, memory_app, sqlite_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfr.application.app import ConcurrentModification, RfrApplication
from rfr.application.projections.library_images import LibraryImagesProjection
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.reference_library import LibraryImage, ReferenceLibrary
from rfr.infrastructure.settings import Settings


def tables(app: RfrApplication) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every projection table, in a stable order."""
    return {
        table: sorted(app.recorder.query(f"SELECT * FROM {table}"), key=repr)
        for projection in app.projections
        for table in projection.tables
    }


def test_enrolment_is_projected_with_its_counts(world: World) -> None:
    _, library_id = world.enrolled_library(n=3)
    images = world.app.library_images
    totals = images.totals(str(library_id), world.clock.now())
    assert (totals.enrolled, totals.searchable) == (3, 3)
    assert totals.searchable_with == totals.algorithms == (world.bio.algorithm_id,)
    page = images.page(str(library_id), 0, 10)
    assert [r.image_id for r in page] == world.image_ids(library_id)
    assert all(r.holder_id == str(library_id) for r in page)
    templates = images.templates_of([r.image_id for r in page])
    wanted = {t[world.bio.algorithm_id]: i for i, t in templates.items()}
    assert (
        images.searchable_templates(str(library_id), world.bio.algorithm_id, wanted, world.clock.now())
        == wanted
    )
    assert images.enrolled_as(str(library_id), [page[0].content_hash]) == {
        page[0].content_hash: page[0].image_id
    }


def test_the_same_image_enrolled_twice_at_once_is_a_conflict_the_store_refuses(world: World) -> None:
    approval_id, library_id = world.library(n=1)
    approval = world.app.get(approval_id, LibraryApproval)
    first, second = (world.app.get(library_id, ReferenceLibrary) for _ in range(2))
    at, lead = world.clock.now(), world.actor("op-lead")
    # Two writers that both read the library before either saved: the aggregate's own version
    # check would refuse the second; two batches (ADR 0013) rely on the unique key alone, so it
    # is the projection that is tested here, by saving the events on a fresh aggregate id.
    (image,) = b.library_images(1, prefix="twice")
    first.enrol_images(lead, at, [image], approval, b.CONFIG)
    world.app.save(first)
    copy = LibraryImage(
        "twice-copy", image.content_hash, image.captured_on, image.age_at_capture, image.mopi_group
    )
    second.enrol_images(lead, at, [copy], approval, b.CONFIG)
    with pytest.raises(ConcurrentModification):
        world.app.save(second)
    assert world.app.library_images.totals(str(library_id), at).enrolled == 2


def _run(world: World, steps: list[tuple[str, int]]) -> ReferenceLibrary:
    approval_id, library_id = world.library(n=2)
    approval = world.app.get(approval_id, LibraryApproval)
    lead, made = world.actor("op-lead"), 2
    for command, n in steps:
        library = world.app.get(library_id, ReferenceLibrary)
        at = world.clock.now()
        if command == "enrol":
            images = b.library_images(n, prefix=f"gen{made}")
            made += n
            ids = library.enrol_images(lead, at, images, approval, b.CONFIG)
            if n % 2 and ids:
                library.record_templates(lead, at, b.ALG, {i: f"tpl-{i}" for i in ids})
        elif command == "age":
            world.clock.advance(days=365 * n)
            continue
        elif command == "expire":
            try:
                library.expire_images(lead, at, b.CONFIG)
            except Exception:
                pass
        elif command == "purge":
            live = [i for i, e in library.images.items() if e.purged_at is None][:n]
            if not live:
                continue
            library.purge_images(lead, at, live, "no longer needed")
        world.app.save(library)
    return world.app.get(library_id, ReferenceLibrary)


COMMANDS = st.lists(
    st.tuples(st.sampled_from(["enrol", "age", "expire", "purge"]), st.integers(1, 3)), max_size=8
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=COMMANDS)
def test_a_rebuilt_projection_equals_the_live_one(steps: list[tuple[str, int]]) -> None:
    world = World(memory_app(), FixedClock()).populate()
    library = _run(world, steps)
    # The counts agree with the library's own facts...
    now = world.clock.now()
    totals = world.app.library_images.totals(str(library.id), now)
    assert totals.enrolled == len(library.images)
    assert totals.searchable == len(library.searchable_image_ids(now))
    assert totals.searchable_with == tuple(
        a for a in sorted(library.templates) if library.searchable_with(a, now)
    )
    # ...and the tables are what a replay of the log gives.
    live = tables(world.app)
    assert world.app.rebuild_projections() > 0
    assert tables(world.app) == live


def test_sqlite_a_rebuilt_projection_equals_the_live_one(tmp_path: Path) -> None:
    world = World(sqlite_app(tmp_path), FixedClock()).populate()
    _run(world, [("enrol", 3), ("purge", 1), ("age", 9), ("expire", 1), ("enrol", 1)])
    live = tables(world.app)
    assert live["rfr_library_images"], "the sequence enrolled nothing"
    world.app.rebuild_projections(["library_images"])
    assert tables(world.app) == live


def test_sqlite_a_store_without_projections_gets_them_on_first_start(tmp_path: Path) -> None:
    world = World(sqlite_app(tmp_path), FixedClock()).populate()
    _, library_id = world.library(n=3)
    live = tables(world.app)
    # As a store written before projections existed: no tables, no positions.
    with sqlite3.connect(Settings(data_dir=tmp_path, persistence="sqlite").event_store_path) as db:
        for table in [*LibraryImagesProjection.tables, "rfr_projections"]:
            db.execute(f"DROP TABLE {table}")
    reopened = sqlite_app(tmp_path)
    assert tables(reopened) == live
    head = reopened.recorder.max_notification_id()
    assert reopened.recorder.projection_positions() == {
        "library_images": (LibraryImagesProjection.version, head)
    }
    assert reopened.library_images.totals(str(library_id), world.clock.now()).enrolled == 3
