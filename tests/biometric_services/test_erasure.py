"""Erasure (R-05): bytes, keys, templates and index entries gone, the fact kept; legal holds (R-04)."""

from __future__ import annotations

import sqlite3
from uuid import UUID

import numpy as np
import pytest
from domain_builders import form3
from service_builders import World, gallery_items, store_files

from rfr.application.errors import NotFound, RecordNotFound
from rfr.application.ports import RecordKind
from rfr.application.services.biometric_support import library_image_records
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.forms import LegalHold
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary


def _all_bytes(world: World) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(world.data_dir.rglob("*")) if p.is_file())


def _key_rows(world: World) -> int:
    with sqlite3.connect(world.data_dir / "biometrics" / "keys.sqlite3") as db:
        return db.execute("SELECT count(*) FROM biometric_records").fetchone()[0]


def test_R05_purging_a_library_image_erases_it_everywhere(world: World, photos):
    """R-05: image, face, subject and template records, key rows and files, and the index entry go."""
    _, library = world.library()
    report = world.enrolment.enrol(
        "admin", str(library.id), gallery_items(photos, ["adam_sandler", "bill_simon"])
    )
    victim = report.results[0]
    vector = world.bio.store.get_template(victim.template_id).vector
    files_before, rows_before = len(store_files(world)), _key_rows(world)
    assert victim.template_id in world.bio.index(str(library.id))

    destroyed = world.erasure.purge_library_images(
        "admin", str(library.id), [victim.image_id], "retention limit reached"
    )

    assert destroyed == (victim.template_id,)
    for record_id in (*library_image_records(victim.image_id), victim.template_id):
        assert not world.bio.store.exists(record_id)
    assert len(store_files(world)) == files_before - 4 and _key_rows(world) == rows_before - 4
    index = world.bio.index(str(library.id))
    assert victim.template_id not in index and len(index) == 3
    hits = index.search(vector, 4)
    assert victim.template_id not in {h.template_id for h in hits}
    assert vector.astype("<f4").tobytes() not in _all_bytes(world)
    stored = world.app.library_images.images([victim.image_id])[victim.image_id]
    assert stored.purged_at is not None and not stored.searchable_at(world.clock.now())
    assert world.bio.index(str(library.id)) is not None
    with pytest.raises(RecordNotFound):
        world.bio.store.get(victim.image_id)


def test_R04_a_legal_hold_stops_erasure(world: World, photos):
    """R-04: the domain refuses first, so nothing is destroyed while a hold is in place."""
    _, library = world.library()
    report = world.enrolment.enrol("admin", str(library.id), gallery_items(photos, ["adam_sandler"]))
    held = world.app.get(library.id, ReferenceLibrary)
    held.place_legal_hold(world.actor("sro"), world.clock.now(), LegalHold("complaint", "conduct matter"))
    world.app.save(held)
    files = len(store_files(world))

    with pytest.raises(PolicyRefusal) as refused:
        world.erasure.purge_library_images("admin", str(library.id), [report.results[0].image_id], "expired")

    assert "R-04" in refused.value.rule_ids
    assert len(store_files(world)) == files and world.bio.store.exists(report.results[0].image_id)
    assert report.results[0].template_id in world.bio.index(str(library.id))


def test_R05_purging_a_probe_erases_its_image_faces_and_templates(world: World, photos):
    """R-05: purging a probe erases its image faces and templates."""
    view = world.probes.submit("analyst", form3(), photos["carlos_moya"][2].read_bytes())
    world.probes.select_faces("analyst", view.probe_id, [view.faces[0].face_id], "the suspect")
    owned = world.bio.store.records(view.probe_id)
    assert sorted(i.kind for i in owned) == sorted(
        [RecordKind.IMAGE, RecordKind.ANALYSIS, RecordKind.TEMPLATE]
    )
    template = world.bio.store.get_template(next(i.record_id for i in owned if i.kind is RecordKind.TEMPLATE))

    erased = world.erasure.purge_probe("analyst", view.probe_id, "no longer needed (R-02)")

    assert sorted(erased) == sorted(i.record_id for i in owned)
    assert world.bio.store.records(view.probe_id) == [] and store_files(world) == []
    assert np.asarray(template.vector, "<f4").tobytes() not in _all_bytes(world)
    probe = world.app.get(UUID(view.probe_id), ProbeImage)
    assert probe.purged_at is not None and probe.templates == []
    with pytest.raises(NotFound):
        world.probes.thumbnail("analyst", view.probe_id, view.faces[0].face_id)
    assert world.probes.get("analyst", view.probe_id).purged
