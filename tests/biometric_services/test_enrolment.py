"""Enrolment item by item and in bulk: what is enrolled, what is not and why, and nothing kept of the rest."""

from __future__ import annotations

import struct
import zlib
from datetime import date
from pathlib import Path
from uuid import UUID

import pytest
from domain_builders import form3
from service_builders import World, item, store_files

from rfr.application.app import ConcurrentModification
from rfr.application.errors import ImageRejected
from rfr.application.ports import RecordKind
from rfr.application.services.base import list_ids
from rfr.application.services.biometric_support import content_hash
from rfr.application.services.enrolment import ManifestError
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.enrolment_batch import EnrolmentBatch, LibraryImage
from rfr.domain.images import MopiGroup, PerceivedAgeBand
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary


def huge_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A valid PNG header announcing a huge image over a few bytes of data (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_R01_each_item_is_enrolled_or_told_why_not(world: World, photos, shared_faces: Path):
    """R-01 refusals are the domain's (in the event); no face, bad bytes and duplicates are reported."""
    _, library = world.library()
    good = photos["adam_sandler"][0]
    items = [
        item(good, subject="custody 1"),
        item(photos["andy_roddick"][0], age_at_capture=PerceivedAgeBand.UNDER_13),
        item(photos["andy_roddick"][1], captured_on=date(1990, 1, 1)),
        item(shared_faces / "dlib" / "_noface" / "dog.jpg"),
        item(good),
        item(good, data=b"not an image at all"),
    ]
    report = world.enrolment.enrol("admin", str(library.id), items)

    codes = [r.code for r in report.results]
    assert codes == [None, "R-01", "R-01", "no_face", "duplicate", "undecodable"]
    assert report.results[1].rule_ids == ("R-01",) and "not enrolled" in report.results[1].reason
    assert "retention limit" in report.results[2].reason
    images = world.app.library_images
    (stored,) = images.page(str(library.id), 0, 10)
    assert stored.image_id == report.results[0].image_id
    assert images.totals(str(library.id), world.clock.now()).searchable_with == (world.bio.algorithm_id,)
    batch = world.app.get(UUID(stored.holder_id), EnrolmentBatch)
    assert batch.library_id == str(library.id) and len(batch.refused) == 2
    kinds = sorted(i.kind.value for i in world.bio.store.records(str(library.id)))
    assert kinds == ["analysis", "image", "subject", "template"]
    assert len(store_files(world)) == 4
    assert world.bio.store.get(report.results[0].image_id) == good.read_bytes()
    assert report.results[0].content_hash == stored.content_hash


def test_each_items_bytes_are_hashed_once(world: World, photos, monkeypatch: pytest.MonkeyPatch):
    """The hash that finds duplicates is the one the image is enrolled and reported with."""
    from rfr.application.services import enrolment

    hashed: list[bytes] = []

    def counted(data: bytes) -> str:
        hashed.append(data)
        return content_hash(data)

    monkeypatch.setattr(enrolment, "content_hash", counted)
    _, library = world.library()
    good = photos["adam_sandler"][0]
    items = [item(good), item(good), item(good, data=b"not an image at all")]
    report = world.enrolment.enrol("admin", str(library.id), items)
    assert [r.code for r in report.results] == [None, "duplicate", "undecodable"]
    assert sorted(hashed) == sorted(i.data for i in items)
    digest = content_hash(good.read_bytes())
    assert [r.content_hash for r in report.results] == [digest, digest, None]


def test_a_face_among_others_of_similar_size_is_not_guessed(world: World, photos, shared_faces):
    _, library = world.library()
    crowd = shared_faces / "deepface" / "_multi" / "selfie-many-people.jpg"
    report = world.enrolment.enrol("admin", str(library.id), [item(crowd)])
    assert report.results[0].code == "several_faces" and not world.bio.store.records(str(library.id))


def test_corrupt_and_huge_probe_images_are_rejected_and_nothing_is_kept(world: World, photos):
    with pytest.raises(ImageRejected) as corrupt:
        world.probes.submit("analyst", form3(), photos["adam_sandler"][0].read_bytes()[:400])
    assert corrupt.value.code == "undecodable"
    with pytest.raises(ImageRejected) as huge:
        world.probes.submit("analyst", form3(), huge_png())
    assert huge.value.code == "too_many_pixels"
    assert store_files(world) == []
    assert list_ids(world.app, ProbeImage.Submitted)[0] == []


def test_a_failed_save_keeps_nothing_of_the_batch(world: World, photos):
    """Another writer saves the library meanwhile: the enrolment is not stored, nor its bytes."""
    _, library = world.library()

    photo = photos["bill_simon"][0]
    approval = world.app.get(world.app.get(library.id, ReferenceLibrary).approval_id, LibraryApproval)

    def interfere(done: int, total: int) -> None:
        # Another enrolment of the same image lands first (its batch only: no bytes stored).
        if done == 1:
            rival = world.app.get(library.id, ReferenceLibrary)
            same = LibraryImage(
                "rival",
                content_hash(photo.read_bytes()),
                date(2022, 1, 1),
                PerceivedAgeBand.ADULT,
                MopiGroup.GROUP_2,
            )
            world.app.save(
                rival.enrol(world.actor("admin"), world.clock.now(), [same], approval, world.config)
            )

    with pytest.raises(ConcurrentModification):
        world.enrolment.enrol("admin", str(library.id), [item(photo)], progress=interfere)
    assert world.bio.store.records(str(library.id)) == [] and store_files(world) == []
    assert [r.image_id for r in world.app.library_images.page(str(library.id), 0, 10)] == ["rival"]


def test_refused_enrolment_keeps_nothing(world: World, photos):
    """A-05: only library managers enrol; the refusal is recorded and no bytes are stored."""
    _, library = world.library()
    with pytest.raises(PolicyRefusal) as refused:
        world.enrolment.enrol("analyst", str(library.id), [item(photos["bill_simon"][0])])
    assert refused.value.rule_ids == ("A-05",)
    assert store_files(world) == []


def test_bulk_enrolment_from_a_server_folder(world: World, photos, tmp_path: Path):
    _, library = world.library()
    folder = tmp_path / "imports" / "batch-1"
    folder.mkdir(parents=True)
    (tmp_path / "imports" / "outside.jpg").write_bytes(photos["clare_short"][0].read_bytes())
    names = []
    for identity in ("adam_sandler", "bob_graham", "carlos_moya"):
        for n, photo in enumerate(photos[identity][:2]):
            name = f"{identity}_{n}.jpg"
            (folder / name).write_bytes(photo.read_bytes())
            names.append((name, identity))
    lines = ["file,capture_date,age_band,mopi_group,subject"]
    lines += [f"{name},2021-06-0{n % 9 + 1},18_plus,2,{who}" for n, (name, who) in enumerate(names)]
    lines += [
        "../outside.jpg,2021-06-01,18_plus,2,",
        "missing.jpg,2021-06-01,18_plus,2,",
        f"{names[0][0]},June,18_plus,2,",
    ]
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    seen = []

    report = world.enrolment.enrol_folder(
        "admin",
        str(library.id),
        folder,
        batch_size=4,
        progress=lambda done, total: seen.append((done, total)),
    )

    assert [r.enrolled for r in report.results] == [True] * 6 + [False] * 3
    assert all(r.code == "manifest" for r in report.results[6:])
    assert seen == [(4, 9), (8, 9), (9, 9)]
    assert world.app.library_images.templated(str(library.id), world.bio.algorithm_id) == 6
    subjects = sorted(
        world.bio.store.get(i.record_id).decode()
        for i in world.bio.store.records(str(library.id), RecordKind.SUBJECT)
    )
    assert subjects == sorted(who for _, who in names)


def test_bulk_enrolment_reads_only_inside_the_import_root(world: World, tmp_path: Path):
    _, library = world.library()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "manifest.csv").write_text("file,capture_date,age_band,mopi_group\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="outside the import root"):
        world.enrolment.enrol_folder("admin", str(library.id), elsewhere)
    inside = tmp_path / "imports" / "bad"
    inside.mkdir(parents=True)
    (inside / "manifest.csv").write_text("file,when\n", encoding="utf-8")
    with pytest.raises(ManifestError, match="lacks the columns"):
        world.enrolment.enrol_folder("admin", str(library.id), inside)
