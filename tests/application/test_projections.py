"""Projections are kept in the same transaction as the events, and equal their rebuild (ADR 0013).

The library images projection is driven here through the domain commands and the production
enrolment, on the in-memory store and on SQLite; after any sequence of commands its tables are
exactly what replaying the whole log into empty tables gives.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import domain_builders as b
import pytest
from app_world import FixedClock, World, memory_app, postgres_app, sqlite_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfr.application.app import ConcurrentModification, RfrApplication
from rfr.application.projections.library_images import LibraryImagesProjection
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.enrolment_batch import EnrolmentBatch
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.reference_library import LibraryImage, ReferenceLibrary
from rfr.domain.search_request import SearchRequest
from rfr.infrastructure.audit import verify
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
    # Held by the one batch that enrolled them, not by the library (ADR 0013).
    assert len({r.holder_id for r in page}) == 1 and page[0].holder_id != str(library_id)
    templates = images.templates_of([r.image_id for r in page])
    wanted = {t[world.bio.algorithm_id]: i for i, t in templates.items()}
    assert (
        images.searchable_templates(str(library_id), world.bio.algorithm_id, wanted, world.clock.now())
        == wanted
    )
    assert images.libraries_of_templates([*wanted, "no-such-template"]) == dict.fromkeys(
        wanted, str(library_id)
    )
    assert images.libraries_of_templates([]) == {}
    assert images.enrolled_as(str(library_id), [page[0].content_hash]) == {
        page[0].content_hash: page[0].image_id
    }


def test_the_same_image_enrolled_twice_at_once_is_a_conflict_the_store_refuses(world: World) -> None:
    approval_id, library_id = world.library(n=1)
    approval = world.app.get(approval_id, LibraryApproval)
    library = world.app.get(library_id, ReferenceLibrary)
    at, lead = world.clock.now(), world.actor("op-lead")
    # Two enrolments that both checked the projection before either saved: two new batches,
    # which no version check relates; the projection's unique key refuses the second.
    (image,) = b.library_images(1, prefix="twice")
    copy = LibraryImage(
        "twice-copy", image.content_hash, image.captured_on, image.age_at_capture, image.mopi_group
    )
    first = library.enrol(lead, at, [image], approval, b.CONFIG)
    second = library.enrol(lead, at, [copy], approval, b.CONFIG)
    world.app.save(first)
    with pytest.raises(ConcurrentModification):
        world.app.save(second)
    assert world.app.library_images.totals(str(library_id), at).enrolled == 2
    assert world.app.library_images.enrolled_as(str(library_id), [image.content_hash]) == {
        image.content_hash: "twice-0"
    }


def _run(world: World, steps: list[tuple[str, int]]) -> tuple[ReferenceLibrary, list[EnrolmentBatch]]:
    approval_id, library_id = world.library(n=2)
    approval = world.app.get(approval_id, LibraryApproval)
    library = world.app.get(library_id, ReferenceLibrary)
    lead, made = world.actor("op-lead"), 2
    batch_ids = list(
        dict.fromkeys(r.holder_id for r in world.app.library_images.page(str(library_id), 0, 10))
    )
    for command, n in steps:
        at = world.clock.now()
        batches = [world.app.get(UUID(i), EnrolmentBatch) for i in batch_ids]
        if command == "enrol":
            batch = library.enrol(lead, at, b.library_images(n, prefix=f"gen{made}"), approval, b.CONFIG)
            made += n
            if n % 2 and batch.images:
                batch.record_templates(lead, at, b.ALG, {i: f"tpl-{i}" for i in batch.images})
            batch_ids.append(str(batch.id))
            world.app.save(batch)
        elif command == "age":
            world.clock.advance(days=365 * n)
        elif command == "expire":
            for batch in batches:
                with contextlib.suppress(PolicyRefusal):
                    batch.expire_images(lead, at, b.CONFIG)
            world.app.save(*batches)
        elif command == "purge":
            for batch in batches:
                live = [i for i, e in batch.images.items() if e.purged_at is None][:n]
                if live:
                    batch.purge_images(lead, at, live, "no longer needed", hold=None)
                    world.app.save(batch)
                    break
    return library, [world.app.get(UUID(i), EnrolmentBatch) for i in batch_ids]


COMMANDS = st.lists(
    st.tuples(st.sampled_from(["enrol", "age", "expire", "purge"]), st.integers(1, 3)), max_size=8
)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=COMMANDS)
def test_a_rebuilt_projection_equals_the_live_one(steps: list[tuple[str, int]]) -> None:
    world = World(memory_app(), FixedClock()).populate()
    library, batches = _run(world, steps)
    # The counts agree with the batches' own facts...
    now = world.clock.now()
    totals = world.app.library_images.totals(str(library.id), now)
    assert totals.enrolled == sum(len(batch.images) for batch in batches)
    searchable = [(batch, batch.searchable_image_ids(now)) for batch in batches]
    assert totals.searchable == sum(len(ids) for _, ids in searchable)
    algorithms = sorted({a for batch in batches for a in batch.templates})
    complete = [
        a
        for a in algorithms
        if any(ids for _, ids in searchable)
        and all(i in batch.templates.get(a, {}) for batch, ids in searchable for i in ids)
    ]
    assert totals.searchable_with == tuple(complete)
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


def test_postgres_the_unique_key_refuses_a_racing_duplicate(postgres_store: str, tmp_path: Path) -> None:
    """Issue 10: on PostgreSQL too, two enrolments of one image that both checked the projection
    before either saved end with one conflict (the projection's unique key, in the transaction)."""
    world = World(postgres_app(tmp_path), FixedClock()).populate()
    approval_id, library_id = world.library(n=1)
    approval = world.app.get(approval_id, LibraryApproval)
    library = world.app.get(library_id, ReferenceLibrary)
    (image,) = b.library_images(1, prefix="pg-twice")
    copy = LibraryImage(
        "pg-copy", image.content_hash, image.captured_on, image.age_at_capture, image.mopi_group
    )
    at, lead = world.clock.now(), world.actor("op-lead")
    first = library.enrol(lead, at, [image], approval, b.CONFIG)
    second = library.enrol(lead, at, [copy], approval, b.CONFIG)
    world.app.save(first)
    head = world.app.recorder.chain_head()
    with pytest.raises(ConcurrentModification):
        world.app.save(second)
    assert world.app.library_images.enrolled_as(str(library_id), [image.content_hash]) == {
        image.content_hash: "pg-twice-0"
    }
    # Refused whole: the events, their links and the head went back with the projection's row.
    assert world.app.recorder.chain_head() == head
    result = verify(world.app.recorder)
    assert result.ok and result.checked == head.count
    world.app.close()


def test_postgres_a_rebuilt_projection_equals_the_live_one(postgres_store: str, tmp_path: Path) -> None:
    """Issue 10: the projections' SQL runs on PostgreSQL in the events' transaction, and a
    rebuild from the log there gives the same rows."""
    world = World(postgres_app(tmp_path), FixedClock()).populate()
    _run(world, [("enrol", 3), ("purge", 1), ("age", 9), ("expire", 1), ("enrol", 1)])
    live = tables(world.app)
    assert live["rfr_library_images"], "the sequence enrolled nothing"
    assert world.app.rebuild_projections() > 0
    assert tables(world.app) == live
    head = world.app.recorder.max_notification_id()
    assert world.app.recorder.projection_positions() == {
        p.name: (p.version, head) for p in world.app.projections
    }
    world.app.close()


def test_sqlite_a_store_without_projections_gets_them_on_first_start(tmp_path: Path) -> None:
    world = World(sqlite_app(tmp_path), FixedClock()).populate()
    _, library_id = world.library(n=3)
    live = tables(world.app)
    # As a store written before projections existed: no tables, no positions.
    with sqlite3.connect(Settings(data_dir=tmp_path, persistence="sqlite").event_store_path) as db:
        for table in [*(t for p in world.app.projections for t in p.tables), "rfr_projections"]:
            db.execute(f"DROP TABLE {table}")
    reopened = sqlite_app(tmp_path)
    assert tables(reopened) == live
    head = reopened.recorder.max_notification_id()
    assert reopened.recorder.projection_positions() == {
        p.name: (p.version, head) for p in reopened.projections
    }
    assert reopened.library_images.totals(str(library_id), world.clock.now()).enrolled == 3


def test_rfr_projections_status_and_rebuild_on_a_file_store(tmp_path: Path) -> None:
    world = World(sqlite_app(tmp_path), FixedClock()).populate()
    world.library(n=4)
    live = tables(world.app)
    head = world.app.recorder.max_notification_id()
    world.app.close()
    env = {**os.environ, "RFR_DATA_DIR": str(tmp_path), "RFR_PERSISTENCE": "sqlite"}

    def rfr(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "rfr.entrypoints.cli", "projections", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert f"library_images: version {LibraryImagesProjection.version}, position {head} (up to date)" in rfr(
        "status"
    )
    assert f"rebuilt library_images from {head} events" in rfr("rebuild", "library_images")
    assert tables(sqlite_app(tmp_path)) == live


def test_a_probes_searches_are_projected_as_the_requests_hold_them(world: World) -> None:
    request_id, probe_id, _ = world.searched()
    request = world.app.get(request_id, SearchRequest)
    candidate = request.candidates("rank")[0]
    world.searches.adjudicate(
        "analyst", request_id, candidate.candidate_id, True, "same person", identity_known=True
    )
    request = world.app.get(request_id, SearchRequest)
    (projected,) = world.app.probe_searches.of(str(probe_id))
    assert (projected.id, projected.probe_id, projected.last_searched_at) == (
        str(request.id),
        request.probe_id,
        request.last_searched_at,
    )
    assert projected.libraries_searched == len(request.searched_library_ids) == 1
    assert projected.searched is request.searched is True
    assert projected.has_viable_match is request.has_viable_match is True
    assert projected.has_viable_match_of_known_person is request.has_viable_match_of_known_person is True
    # The sweep sees the probe once its last search is old enough, and not before.
    last = request.last_searched_at
    assert world.app.probe_searches.maybe_due(last - timedelta(seconds=1), last) == []
    assert world.app.probe_searches.maybe_due(last, last) == [str(probe_id)]
    live = tables(world.app)
    world.app.rebuild_projections(["probe_searches"])
    assert tables(world.app) == live
