"""Every biometric record is named by an event or erased (ADR 0015), in process.

``BiometricReconciliation`` over the real encrypted store, projections and index registry,
with the fake face engine: records written as a killed command would leave them (through the
store, with no save after) are erased once older than the grace period; records events name
are kept; each round reads only what was written since the last one.
"""

from __future__ import annotations

import sys
import time
from datetime import date, timedelta
from pathlib import Path
from uuid import UUID

import domain_builders
import numpy as np
import pytest
from service_builders import World, make_world

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "application"))
from fake_biometrics import face_image, fake_engine

from rfr.application.ports import BiometricStore, RecordKind
from rfr.application.services.biometric_support import (
    library_face_record,
    library_image_records,
    library_subject_record,
    library_video_record,
    probe_face_record,
    probe_image_record,
)
from rfr.application.services.enrolment import EnrolmentItem
from rfr.application.services.reconciliation import BiometricReconciliation, ReconciliationSummary
from rfr.domain.images import MopiGroup, PerceivedAgeBand
from rfr.domain.probe_image import ProbeImage

RECENT = timedelta(hours=1)


def still_image_records(image_id: str) -> set[str]:
    """The records a still image's enrolment writes and its events name: every record of a
    library image but a video's, which only a video item has (ADR 0026); these tests enrol stills."""
    return set(library_image_records(image_id)) - {library_video_record(image_id)}


@pytest.fixture
def world(tmp_path: Path) -> World:
    return make_world(tmp_path, fake_engine())


def _item(steps: int, subject: str | None = "custody 1") -> EnrolmentItem:
    return EnrolmentItem(
        face_image(steps),
        date(2024, 5, 1),
        PerceivedAgeBand.ADULT,
        MopiGroup.GROUP_2,
        subject,
        f"{steps}.png",
    )


def _reconcile(world: World, grace: timedelta = timedelta(0), **kwargs: object) -> ReconciliationSummary:
    return _reconciliation(world, world.bio.store, grace, **kwargs).run()


def _reconciliation(
    world: World, store: BiometricStore, grace: timedelta, **kwargs: object
) -> BiometricReconciliation:
    return BiometricReconciliation(
        world.app,
        world.clock,
        lambda: store,
        lambda: world.bio,
        grace=grace,
        **kwargs,  # type: ignore[arg-type]
    )


def _enrolled(world: World, library_id: str, *steps: int) -> list[tuple[str, str]]:
    report = world.enrolment.enrol("admin", library_id, [_item(s) for s in steps])
    return [(r.image_id, r.template_id) for r in report.enrolled]  # type: ignore[misc]


def _killed_enrolment(world: World, library_id: str, image_id: str, template_id: str) -> None:
    """What a process killed before its save leaves: an image's four records, named by nothing."""
    store = world.bio.store
    store.put(image_id, RecordKind.IMAGE, face_image(9), owner=library_id)
    store.put(library_face_record(image_id), RecordKind.ANALYSIS, b"{}", owner=library_id)
    store.put(library_subject_record(image_id), RecordKind.SUBJECT, b"custody 9", owner=library_id)
    store.put_template(template_id, _vector(world), owner=library_id, algorithm_id=world.bio.algorithm_id)


def _vector(world: World, value: float = 0.5) -> np.ndarray:
    return np.full(world.bio.engine.embedder.dimension, value, np.float32)


def _records(world: World) -> set[str]:
    return {w.info.record_id for w in world.bio.store.written_after(0, older_than=0, limit=10_000)}


def test_records_no_event_names_are_erased_once_the_grace_period_has_passed(world: World) -> None:
    _, library = world.library()
    library_id = str(library.id)
    ((image_id, template_id),) = _enrolled(world, library_id, 1)
    named = {*still_image_records(image_id), template_id}
    _killed_enrolment(world, library_id, "orphan-image", "orphan-template")
    world.bio.store.put(probe_image_record("never-saved"), RecordKind.IMAGE, b"x", owner="never-saved")

    # Written just now: a command may still be about to save them, so nothing is touched.
    young = _reconcile(world, RECENT)
    assert (young.checked, young.erased_total, young.position) == (0, 0, 0)
    assert world.bio.store.reconciled_position() == 0

    done = _reconcile(world)
    assert done.erased == {"analysis": 1, "image": 2, "subject": 1, "template": 1}
    assert done.checked == len(named) + 5 and not done.failed
    assert _records(world) == named
    assert world.bio.store.reconciled_position() == done.position > 0

    again = _reconcile(world)
    assert (again.checked, again.erased_total, again.position) == (0, 0, done.position)


def test_each_round_reads_only_what_was_written_since_the_last(world: World) -> None:
    _, library = world.library()
    library_id = str(library.id)
    _enrolled(world, library_id, 1, 2, 3)
    first = _reconcile(world)
    assert (first.checked, first.erased_total) == (12, 0)
    _killed_enrolment(world, library_id, "orphan-image", "orphan-template")
    _enrolled(world, library_id, 4)
    second = _reconcile(world)
    assert (second.checked, second.erased_total) == (8, 4)
    # A round stops at its cap; the next goes on from there.
    _enrolled(world, library_id, 5, 6)
    capped = _reconcile(world, max_per_round=3, page_size=2)
    assert (capped.checked, capped.position) == (3, second.position + 3)
    rest = _reconcile(world, page_size=2)
    assert (rest.checked, rest.erased_total) == (5, 0)


def test_the_grace_period_holds_back_everything_written_after_the_first_recent_record(
    world: World,
) -> None:
    _, library = world.library()
    library_id = str(library.id)
    _killed_enrolment(world, library_id, "old-image", "old-template")
    time.sleep(0.3)
    _killed_enrolment(world, library_id, "new-image", "new-template")
    summary = _reconcile(world, timedelta(seconds=0.2))
    assert (summary.checked, summary.erased_total) == (4, 4)
    assert _records(world) == {*still_image_records("new-image"), "new-template"}
    time.sleep(0.3)
    assert _reconcile(world, timedelta(seconds=0.2)).erased_total == 4
    assert _records(world) == set()


def test_leftovers_of_a_purged_image_are_erased_and_expired_images_are_kept(world: World) -> None:
    _, library = world.library()
    library_id = str(library.id)
    (purged, _), (kept, kept_template) = _enrolled(world, library_id, 1, 2)
    world.erasure.purge_library_images("admin", library_id, [purged], "entered in error")
    # An erasure whose last step failed, then a process that wrote the record again under the id.
    world.bio.store.put(library_face_record(purged), RecordKind.ANALYSIS, b"{}", owner=library_id)
    summary = _reconcile(world)
    assert summary.erased == {"analysis": 1}
    assert _records(world) == {*still_image_records(kept), kept_template}


def test_probe_records_are_named_by_the_probe_faces_and_templates_its_events_list(world: World) -> None:
    view = world.probes.submit("analyst", domain_builders.form3(), face_image(0))
    probe_id = view.probe_id
    face_id = view.faces[0].face_id
    view = world.probes.select_faces("analyst", probe_id, [face_id], "the suspect")
    (template_id,) = world.app.get(UUID(probe_id), ProbeImage).template_ids(world.bio.algorithm_id)
    named = _records(world)
    assert named == {probe_image_record(probe_id), probe_face_record(probe_id, face_id), template_id}
    store = world.bio.store
    # A drawn face and its template whose save never came; a probe that was never submitted.
    store.put(probe_face_record(probe_id, "drawn-1"), RecordKind.ANALYSIS, b"{}", owner=probe_id)
    store.put_template("lost-template", _vector(world), owner=probe_id, algorithm_id=world.bio.algorithm_id)
    store.put(probe_image_record("other"), RecordKind.IMAGE, b"x", owner="other")
    summary = _reconcile(world)
    assert summary.erased == {"analysis": 1, "image": 1, "template": 1}
    assert _records(world) == named


def test_a_purged_probe_names_none_of_its_records(world: World) -> None:
    view = world.probes.submit("analyst", domain_builders.form3(), face_image(0))
    world.erasure.purge_probe("analyst", view.probe_id, "submitted in error")
    world.bio.store.put(probe_image_record(view.probe_id), RecordKind.IMAGE, b"x", owner=view.probe_id)
    assert _reconcile(world).erased == {"image": 1}
    assert _records(world) == set()


def test_an_orphan_template_a_rebuild_put_in_the_index_is_taken_out_of_it(world: World) -> None:
    _, library = world.library()
    library_id = str(library.id)
    ((_, template_id),) = _enrolled(world, library_id, 1)
    _killed_enrolment(world, library_id, "orphan-image", "orphan-template")
    embedder = world.bio.engine.embedder
    # A search that found the index short rebuilt it from the store, orphan and all.
    index = world.bio.indexes.rebuild(library_id, world.bio.algorithm_id, embedder.dimension, embedder.metric)
    assert "orphan-template" in index and template_id in index
    summary = _reconcile(world)
    assert summary.erased_total == 4 and not summary.failed
    index = world.bio.index(library_id)
    assert "orphan-template" not in index and template_id in index
    assert {h.template_id for h in index.search(_vector(world), 10)} == {template_id}


class _FailingErase:
    """The store, but erasing ``failing`` raises until ``failing`` is emptied."""

    def __init__(self, store: BiometricStore, failing: set[str]) -> None:
        self._store = store
        self.failing = failing

    def erase(self, record_id: str) -> bool:
        if record_id in self.failing:
            raise OSError("disk full")
        return self._store.erase(record_id)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


def test_a_record_that_could_not_be_erased_is_tried_again_next_round(world: World) -> None:
    _, library = world.library()
    library_id = str(library.id)
    _killed_enrolment(world, library_id, "orphan-image", "orphan-template")
    store = _FailingErase(world.bio.store, {library_face_record("orphan-image")})
    reconciliation = _reconciliation(world, store, timedelta(0))  # type: ignore[arg-type]
    failed = reconciliation.run()
    assert failed.erased == {"image": 1, "subject": 1, "template": 1}
    assert failed.failed == (f"record {library_face_record('orphan-image')}: OSError: disk full",)
    assert failed.position == 1  # the image's position: the face record is read again
    store.failing.clear()
    again = reconciliation.run()
    assert (again.erased, again.failed) == ({"analysis": 1}, ())
    assert _records(world) == set()
