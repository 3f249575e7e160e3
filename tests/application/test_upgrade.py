"""A store written before projections and enrolment batches opens and works with today's code.

``tests/fixtures/store-before-batches`` was written by commit 0d2a1da (see the script beside it):
a library holding its three images itself, one purged, a legal hold placed and lifted. Opened
now, its projections are built on start from its log, its audit chain still verifies, its
images are held by the library (the holder of images enrolled before batches), and commands
about them and new enrolments work as on a store written today (ADR 0013).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from uuid import UUID

import domain_builders as b
import pytest
from app_world import FixedClock, World, sqlite_app

from rfr.application.app import ConcurrentModification
from rfr.domain.enrolment_batch import LibraryImage
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.reference_library import ReferenceLibrary
from rfr.infrastructure.audit.verification import verify

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "store-before-batches"
LIBRARY_ID = "2d7a22c3-6b61-4bfc-9220-185c0698ed0d"


@pytest.fixture
def upgraded(tmp_path: Path) -> World:
    shutil.copytree(FIXTURE, tmp_path, dirs_exist_ok=True)
    return World(sqlite_app(tmp_path), FixedClock())


def _tables(world: World) -> dict[str, Any]:
    return {
        t: sorted(world.app.recorder.query(f"SELECT * FROM {t}"), key=repr)
        for p in world.app.projections
        for t in p.tables
    }


def test_the_old_store_gets_its_projections_and_its_chain_still_verifies(upgraded: World) -> None:
    app = upgraded.app
    assert verify(app.recorder).ok
    head = app.recorder.max_notification_id()
    assert app.recorder.projection_positions() == {p.name: (p.version, head) for p in app.projections}
    rows = app.library_images.page(LIBRARY_ID, 0, 10)
    assert [r.image_id for r in rows] == ["before-0", "before-1", "before-2"]
    assert all(r.holder_id == LIBRARY_ID for r in rows)
    assert [r.purged_at is not None for r in rows] == [True, False, False]
    totals = app.library_images.totals(LIBRARY_ID, upgraded.clock.now())
    assert (totals.enrolled, totals.searchable, totals.searchable_with) == (3, 2, (b.ALG,))


def test_images_enrolled_before_batches_are_purged_and_stay_unique_and_new_ones_go_to_batches(
    upgraded: World,
) -> None:
    app, library_id = upgraded.app, LIBRARY_ID
    destroyed = upgraded.erasure.purge_library_images("op-lead", library_id, ["before-1"], "no longer needed")
    assert destroyed == ("tpl-before-1",)
    assert app.library_images.images(["before-1"])["before-1"].purged_at is not None

    library = app.get(UUID(library_id), ReferenceLibrary)
    approval = app.get(UUID(library.approval_id), LibraryApproval)
    lead, at = upgraded.actor("op-lead"), upgraded.clock.now()
    (old,) = b.library_images(3, prefix="before")[2:]
    again = LibraryImage("again", old.content_hash, old.captured_on, old.age_at_capture, old.mopi_group)
    with pytest.raises(ConcurrentModification):  # the old image is still enrolled: the key holds
        app.save(library.enrol(lead, at, [again], approval, b.CONFIG))
    batch = library.enrol(lead, at, b.library_images(1, prefix="after"), approval, b.CONFIG)
    app.save(batch)
    assert app.library_images.images(["after-0"])["after-0"].holder_id == str(batch.id)
    assert app.library_images.totals(library_id, at).enrolled == 4

    live = _tables(upgraded)
    app.rebuild_projections()
    assert _tables(upgraded) == live
    assert verify(app.recorder).ok
