"""Enrolling one image, searching a library and a retention round cost the same in a library of
100 or 5,000 images.

Counting, not timing (issue 9): the stored events a command reads are counted at the event
store, and the bytes an enrolment adds to the index files measured, for the production
enrolment and search over the real encrypted store and index (with the fake engine), in a
library filled with images that have real stored, indexed templates. Before ADR 0013 each of
these commands replayed every event of the library; before ADR 0014 each enrolment rewrote the
whole index.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any
from uuid import UUID

import domain_builders as b
import numpy as np
import pytest
from app_world import FixedClock, World, memory_app
from fake_biometrics import face_image

from rfr.application.services.enrolment import EnrolmentItem
from rfr.application.services.retention import RetentionSweep
from rfr.application.services.searches import LibrarySelection
from rfr.domain.enrolment_batch import MAX_BATCH_IMAGES, LibraryImage
from rfr.domain.images import MopiGroup, PerceivedAgeBand
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.retention import retention_end


@contextmanager
def events_read(world: World) -> Iterator[list[int]]:
    """Counts the stored events the application reads while the block runs (aggregates loaded
    and notifications read, e.g. by the index catching up)."""
    recorder = world.app.recorder
    originals = {name: getattr(recorder, name) for name in ("select_events", "select_notifications")}
    count = [0]

    def counting(select: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            found = select(*args, **kwargs)
            count[0] += len(found)
            return found

        return counted

    for name, select in originals.items():
        setattr(recorder, name, counting(select))
    try:
        yield count
    finally:
        for name, select in originals.items():
            setattr(recorder, name, select)


def library_of(world: World, images: int) -> str:
    """A library of ``images`` enrolled images, each with a stored and indexed template of the
    engine's algorithm (random vectors far from any face of the tests), in batches."""
    approval_id = world.approved()
    library_id = world.libraries.create("op-lead", f"lib-{images}", approval_id).id
    library = world.app.get(library_id, ReferenceLibrary)
    approval = world.app.get(approval_id, LibraryApproval)
    lead, at, bio = world.actor("op-lead"), world.clock.now(), world.bio
    embedder = bio.engine.embedder
    rng = np.random.default_rng(images)
    with bio.indexes.writing(str(library_id), bio.algorithm_id, embedder.dimension, embedder.metric) as index:
        for start in range(0, images, MAX_BATCH_IMAGES):
            count = min(MAX_BATCH_IMAGES, images - start)
            batch = library.enrol(
                lead, at, b.library_images(count, prefix=f"bulk{start}"), approval, b.CONFIG
            )
            vectors = rng.uniform(5.0, 6.0, (count, embedder.dimension)).astype(np.float32)
            templates = {}
            for image_id, vector in zip(batch.images, vectors, strict=True):
                template_id = f"tpl-{image_id}"
                bio.store.put_template(
                    template_id, vector, owner=str(library_id), algorithm_id=bio.algorithm_id
                )
                templates[image_id] = template_id
            batch.record_templates(lead, at, bio.algorithm_id, templates)
            world.app.save(batch)
            index.add(list(templates.values()), vectors)
        # As a serving process leaves it: caught up with the log (index_catch_up).
        index.position = world.app.recorder.max_notification_id()
    return str(library_id)


def one_enrolment_and_one_search(images: int) -> tuple[int, int, int]:
    world = World(memory_app(), FixedClock()).populate()
    library_id = library_of(world, images)
    assert world.app.library_images.totals(library_id, world.clock.now()).searchable == images
    item = EnrolmentItem(face_image(3), date(2022, 1, 1), PerceivedAgeBand.ADULT, MopiGroup.GROUP_2)
    before = index_bytes(world)
    with events_read(world) as enrolment:
        report = world.enrolment.enrol("op-lead", library_id, [item])
    assert len(report.enrolled) == 1
    written = index_bytes(world) - before
    probe_id = world.probe()
    request = world.searches.open("analyst", probe_id, [LibrarySelection(library_id, "may be held here")])
    with events_read(world) as search:
        found = world.execution.search_library("analyst", request.id, library_id, top_k=1)
    # The nearest is the image just enrolled, among thousands of others.
    assert found.candidates[0].image_id == report.enrolled[0].image_id
    return enrolment[0], search[0], written


def index_bytes(world: World) -> int:
    """Bytes of every index file: what an enrolment adds to them is what it wrote (a journal
    entry; a rewrite of the index would add its whole size again)."""
    root = world.bio.indexes.root
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


@pytest.mark.slow
def test_enrolling_one_image_and_searching_read_as_many_events_in_a_library_of_100_or_5000():
    small = one_enrolment_and_one_search(100)
    large = one_enrolment_and_one_search(5000)
    assert small[:2] == large[:2], f"events read (enrolment, search): {small} at 100 images, {large} at 5,000"
    assert max(small[:2]) < 100
    # Index bytes written by the enrolment: one journal entry either way, far below the index.
    assert 0 < small[2] == large[2] < 4096, f"index bytes written: {small[2]} at 100, {large[2]} at 5,000"


def one_sweep(images: int) -> tuple[int, int]:
    """Events read by a retention round with nothing due, then with one image past its limit."""
    world = World(memory_app(), FixedClock()).populate()
    library_id = library_of(world, images)
    approval_id = world.app.get(UUID(library_id), ReferenceLibrary).approval_id
    sweep = RetentionSweep(world.app, world.clock, lambda: world.bio)
    with events_read(world) as quiet:
        summary = sweep.run()
    assert summary.removed_from_search == 0 and not summary.failed
    # One image, in a batch of its own, reaches its limit: the round expires and deletes it.
    library = world.app.get(UUID(library_id), ReferenceLibrary)
    approval = world.app.get(UUID(approval_id), LibraryApproval)
    lead, at = world.actor("op-lead"), world.clock.now()
    age, group = PerceivedAgeBand.ADULT, MopiGroup.GROUP_3
    # Captured so that its retention ends 200 days from now.
    kept_for = retention_end(at.date(), age, group, b.CONFIG) - at.date()
    short = [
        LibraryImage("short-lived", "sha256:short", at.date() - kept_for + timedelta(days=200), age, group)
    ]
    world.app.save(library.enrol(lead, at, short, approval, b.CONFIG))
    world.clock.advance(days=201)
    with events_read(world) as due:
        summary = sweep.run()
    assert summary.removed_from_search == 1 and dict(summary.deleted) == {"R-01": 1}, summary
    return quiet[0], due[0]


@pytest.mark.slow
def test_a_retention_round_reads_as_many_events_in_a_library_of_100_or_5000():
    small, large = one_sweep(100), one_sweep(5000)
    assert small == large, f"events read (nothing due, one due): {small} at 100 images, {large} at 5,000"
