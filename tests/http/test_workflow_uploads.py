"""Bad uploads and bad bodies are refused before any work, with a problem naming what is wrong,
and leave nothing behind: no event, no file in the biometric store."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from workflow_builders import (
    MAX_IMAGE_PIXELS,
    MAX_REQUEST_BYTES,
    Cast,
    application,
    approval_record,
    approved_library,
    blob_count,
    form3,
    form3_part,
    lfw_photos,
    ok,
    problem,
    stored_events,
    submitted_probe,
)

# Each test runs on both event stores (tests/http/conftest.py).
STORES = ("sqlite", "postgres")

# EXIF tag 0x0112: 6 means "rotate 90 degrees clockwise to display".
ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def photo(shared_faces: Path) -> Path:
    return lfw_photos(shared_faces)["colin_powell"][0]


@pytest.fixture
def unchanged(server):
    """Asserts, after the test, that the server stored no event and no biometric file."""
    before, blobs = stored_events(server), blob_count(server)
    yield
    assert stored_events(server) == before, "a refused request left events behind"
    assert blob_count(server) == blobs, "a refused request left files in the biometric store"


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def probe_upload(people: Cast, data: bytes, content_type: str = "image/jpeg", form=None):
    return people.analyst.client.post(
        "/probes", files=[("image", ("probe", data, content_type)), form3_part(form or form3())]
    )


def field_of(response, status: int = 400) -> set[str]:
    body = problem(response, status, "validation" if status == 400 else "unprocessable")
    return {e["field"] for e in body["errors"]}


def test_a_part_declared_as_another_type_is_415(people, photo, unchanged):
    body = problem(probe_upload(people, photo.read_bytes(), "text/plain"), 415, "image-rejected")
    assert body["code"] == "unsupported_type"


def test_an_image_format_we_do_not_take_is_415_whatever_it_is_called(people, photo, unchanged):
    gif = encoded(Image.open(photo), "GIF")
    body = problem(probe_upload(people, gif, "application/octet-stream"), 415, "image-rejected")
    assert body["code"] == "unsupported_type"


def test_a_damaged_or_empty_image_is_422(people, photo, unchanged):
    data = photo.read_bytes()
    body = problem(probe_upload(people, data[: len(data) // 2]), 422, "image-rejected")
    assert body["code"] == "undecodable"
    assert problem(probe_upload(people, b""), 422, "image-rejected")["code"] == "empty"


def test_a_decompression_bomb_is_refused_from_its_header_413(people, unchanged):
    side = int(MAX_IMAGE_PIXELS**0.5) + 100
    bomb = encoded(Image.new("L", (side, side), 128), "PNG", optimize=True)
    assert len(bomb) < 100_000, "small on the wire, huge once decoded"
    body = problem(probe_upload(people, bomb, "image/png"), 413, "image-rejected")
    assert body["code"] == "too_many_pixels"


def test_a_body_over_the_limit_is_413(people, unchanged):
    oversized = b"\xff\xd8\xff" + b"\0" * MAX_REQUEST_BYTES
    problem(probe_upload(people, oversized), 413, "request-too-large")


def test_exif_orientation_is_applied_before_faces_are_found(people, photo):
    upright = Image.open(photo).convert("RGB").crop((0, 0, 250, 210))
    straight = submitted_probe(people, photo)  # a reference run on the original photo
    assert straight["faces"]
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    # Stored lying on its side, with EXIF saying how to stand it up, as phones do.
    sideways = upright.transpose(Image.Transpose.ROTATE_90)
    turned = ok(
        people.analyst.client.post(
            "/probes",
            files=[
                ("image", ("phone.jpg", encoded(sideways, "JPEG", quality=95, exif=exif), "image/jpeg")),
                form3_part(form3()),
            ],
        ),
        201,
    )
    assert turned["faces"], "a sideways face would not be found: EXIF was not applied"
    box = turned["faces"][0]
    assert box["right"] < 250 and box["bottom"] < 210, "boxes are in the upright image's coordinates"
    reference = straight["faces"][0]
    assert abs(box["left"] - reference["left"]) <= 6 and abs(box["top"] - reference["top"]) <= 6


def test_an_invalid_form_3_names_its_field(people, photo, unchanged):
    data = photo.read_bytes()
    assert field_of(probe_upload(people, data, form=form3(perceived_age="toddler"))) == {
        "form3.perceived_age"
    }
    missing = form3()
    del missing["case_reference"]
    assert field_of(probe_upload(people, data, form=missing)) == {"form3.case_reference"}
    nested = form3(pre_rfr_checks={"tried": ["local_enquiries"]})
    assert field_of(probe_upload(people, data, form=nested)) == {"form3.pre_rfr_checks.why_insufficient"}
    assert field_of(probe_upload(people, data, form="{not json")) == {"form3"}
    without = people.analyst.client.post("/probes", files=[("image", ("p.jpg", data, "image/jpeg"))])
    assert field_of(without) == {"form3"}


def test_bad_json_bodies_name_the_field(people, unchanged):
    client = people.analyst.client
    missing = application()
    del missing["legal_basis"]
    assert field_of(client.post("/library-approvals", json=missing)) == {"legal_basis"}
    assert field_of(client.post("/library-approvals", json=application(kind="permanent"))) == {"kind"}
    unknown = {**application(), "approved": True}
    assert field_of(client.post("/library-approvals", json=unknown)) == {"approved"}
    broken = client.post(
        "/library-approvals", content=b'{"kind": ', headers={"content-type": "application/json"}
    )
    problem(broken, 400, "validation")

    applied_id = "6f1c1f51-2f0e-4c86-9a55-5f5a3c7c1d11"
    record = approval_record("team")
    del record["access"]
    response = people.sro.client.post(f"/library-approvals/{applied_id}/approval", json={"record": record})
    assert field_of(response) == {"record.access"}
    naive = approval_record("team", review_due="2030-01-01T00:00:00")
    response = people.sro.client.post(f"/library-approvals/{applied_id}/approval", json={"record": naive})
    assert field_of(response) == {"record.review_due"}
    search = {"probe_id": applied_id, "libraries": [{"library_id": "nope", "relevance": "x"}]}
    assert field_of(client.post("/searches", json=search)) == {"libraries[0].library_id"}
    assert field_of(client.post("/searches", json={"probe_id": applied_id, "libraries": []})) == {"libraries"}


def test_a_drawn_box_must_be_a_box(server, people, photo):
    probe = submitted_probe(people, photo)
    before = stored_events(server)
    url = f"/probes/{probe['probe_id']}/drawn-faces"
    # Within the schema, but not a box, or not inside this image: 422 (the schema cannot say it).
    box = {"left": 100, "top": 50, "right": 90, "bottom": 150, "reason": "missed"}
    assert field_of(people.analyst.client.post(url, json=box), 422) == {"right"}
    outside = {"left": 5000, "top": 5000, "right": 5100, "bottom": 5100, "reason": "missed"}
    assert field_of(people.analyst.client.post(url, json=outside), 422) == {"left"}
    assert stored_events(server) == before


def test_one_bad_file_refuses_the_whole_enrolment_and_nothing_is_enrolled(server, people, photo):
    library = approved_library(people, name="LFW uploads")
    before, blobs = stored_events(server), blob_count(server)
    good = photo.read_bytes()
    files = [
        ("files", ("good.jpg", good, "image/jpeg")),
        ("files", ("bad.jpg", good[:500], "image/jpeg")),
    ]
    facts = {"capture_date": "2022-05-01", "age_band": "18_plus", "mopi_group": "2"}
    url = f"/libraries/{library['id']}/images"
    body = problem(people.lead.client.post(url, files=files, data=facts), 422, "image-rejected")
    assert "files[1] (bad.jpg)" in body["detail"]
    assert field_of(
        people.lead.client.post(url, files=files[:1], data={**facts, "capture_date": ["2022-05-01"] * 2}),
        422,
    ) == {"capture_date"}
    assert field_of(
        people.lead.client.post(url, files=files[:1], data={**facts, "capture_date": "2099-01-01"}), 422
    ) == {"capture_date[0]"}
    assert field_of(
        people.lead.client.post(url, files=files[:1], data={**facts, "capture_date": " 2022-05-01"})
    ) == {"capture_date[0]"}
    assert field_of(people.lead.client.post(url, files=files[:1], data={**facts, "age_band": "ancient"})) == {
        "age_band[0]"
    }
    assert field_of(people.lead.client.post(url, files=files[:1], data={**facts, "mopi_group": "7"})) == {
        "mopi_group[0]"
    }
    only_facts = [(name, (None, value)) for name, value in facts.items()]
    assert field_of(people.lead.client.post(url, files=only_facts)) == {"files"}
    assert stored_events(server) == before and blob_count(server) == blobs
    assert ok(people.lead.client.get(f"/libraries/{library['id']}"))["images_enrolled"] == 0
    accepted = ok(people.lead.client.post(url, files=files[:1], data=facts))
    assert accepted["enrolled"] == 1 and accepted["results"][0]["name"] == "good.jpg"


@pytest.mark.parametrize(("fmt", "content_type"), [("PNG", "image/png"), ("WEBP", "image/webp")])
def test_png_and_webp_are_taken_like_jpeg(people, photo, fmt, content_type):
    reference = submitted_probe(people, photo)["faces"][0]
    lossless = {"lossless": True} if fmt == "WEBP" else {}
    data = encoded(Image.open(photo).convert("RGB"), fmt, **lossless)
    probe = ok(probe_upload(people, data, content_type), 201)
    face = probe["faces"][0]
    assert all(abs(face[k] - reference[k]) <= 3 for k in ("left", "top", "right", "bottom")), (
        face,
        reference,
    )
