"""A short video as a probe, over a real server (issue 13, item 6; ADR 0026).

A video made here (OpenCV's writer, two people's faces from the shared photos moving across a
background) offers one face per person, each with its frame and time; nothing is templated
until one is selected (P-11), and the selected face's template finds that person first in a
library of their other photos. A corrupt, over-long, over-resolution or over-size video, or one
of a type not accepted, is refused with a problem before any work and leaves nothing behind;
purging the probe erases the video with its frames (R-05). A library item may be a video of one
subject: its best face is enrolled from its frame, found by a search, and erased with the video.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from video_builders import CONTENT_TYPES, Walker, face_of, grey, noise, walking_faces, write_video
from workflow_builders import (
    Cast,
    approved_library,
    audit_verify,
    blob_count,
    enrol,
    form3,
    form3_part,
    ok,
    open_search,
    problem,
    start_workflow_server,
    stored_events,
)

from rfr.adapters.biometric_store.encrypted_files import EncryptedFileStore
from rfr.application.services.biometric_support import library_video_record, probe_video_record

ENROLLED = ("adam_sandler", "andy_roddick", "anne_mclellan", "bill_simon")
LEFT, RIGHT = ENROLLED[0], ENROLLED[1]

# Small limits, so each refusal is cheap to provoke (and under the workflow server's 2 MiB body).
MAX_SECONDS = 6
MAX_FRAME_PIXELS = 640 * 480
MAX_BYTES = 600_000
SIZE = (480, 360)
FPS = 10.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    live, _ = start_workflow_server(
        tmp_path_factory.mktemp("video-probes"),
        env={
            "RFR_VIDEO_MAX_SECONDS": str(MAX_SECONDS),
            "RFR_VIDEO_MAX_FRAME_PIXELS": str(MAX_FRAME_PIXELS),
            "RFR_VIDEO_MAX_BYTES": str(MAX_BYTES),
        },
    )
    try:
        yield live
        verified = audit_verify(live)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        live.stop()


@pytest.fixture(scope="module")
def walkers(photos: dict[str, list[Path]]) -> dict[str, Walker]:
    """Two people 3 seconds long: one walks right and down on the left, the other left and up on
    the right; never closer than a face width. Their third photos, not enrolled."""
    return {
        LEFT: Walker(face_of(photos[LEFT][2]), (10, 60), (4, 2)),
        RIGHT: Walker(face_of(photos[RIGHT][2]), (300, 140), (-3, -2)),
    }


def two_people(walkers: dict[str, Walker], container: str = "mp4") -> bytes:
    return write_video(30, SIZE, walking_faces(list(walkers.values()), SIZE), fps=FPS, container=container)


def upload(people: Cast, data: bytes, content_type: str = "video/mp4"):
    return people.analyst.client.post(
        "/probes", files=[("image", ("clip", data, content_type)), form3_part(form3())]
    )


def person_at(walkers: dict[str, Walker], face: dict) -> str:
    """Whose walker was nearest the face's box centre in the face's frame."""
    cx, cy = (face["left"] + face["right"]) / 2, (face["top"] + face["bottom"]) / 2

    def distance(who: str) -> float:
        wx, wy = walkers[who].centre(face["frame_index"])
        return (wx - cx) ** 2 + (wy - cy) ** 2

    return min(walkers, key=distance)


def no_clear_copies(server) -> None:
    tmp = server.data_dir / "tmp"
    left = sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []
    assert not left, f"clear copies of videos left in {tmp}: {left}"


@pytest.mark.parametrize("container", ["mp4", "avi", "webm"])
def test_P11_a_video_of_two_people_offers_one_face_each_with_its_frame_and_time_none_templated(
    server, people, walkers, container
):
    probe = ok(upload(people, two_people(walkers, container), CONTENT_TYPES[container]), 201)

    faces = probe["faces"]
    assert len(faces) == 2, faces
    assert sorted(person_at(walkers, f) for f in faces) == sorted(walkers)
    for face in faces:
        assert face["frame_index"] is not None and 0 <= face["frame_index"] < 30
        assert face["time_ms"] == round(face["frame_index"] * 1000 / FPS)
        assert not face["selected"] and not face["templated"]
    video = probe["video"]
    assert (video["frame_count"], video["width"], video["height"]) == (30, *SIZE)
    assert video["duration_ms"] == 3000 and video["tracks"] == 2
    # Two a second over three seconds: frames 0, 5, ..., 25.
    assert video["sampled_frames"] == 6
    assert probe["template_count"] == 0 and not probe["ready_for_search"]
    no_clear_copies(server)


def test_a_face_selected_from_a_video_is_templated_from_its_frame_and_finds_that_person_first(
    server, people, photos, walkers
):
    library = approved_library(people, name="LFW custody images (video)")
    report = enrol(people, library["id"], [(who, p) for who in ENROLLED for p in photos[who][:2]])
    assert report["enrolled"] == 2 * len(ENROLLED), report["results"]

    probe = ok(upload(people, two_people(walkers)), 201)
    client = people.analyst.client
    for who in (LEFT, RIGHT):
        face = next(f for f in probe["faces"] if person_at(walkers, f) == who)
        thumb = client.get(f"/probes/{probe['probe_id']}/faces/{face['face_id']}/thumbnail")
        assert thumb.status_code == 200 and thumb.content.startswith(b"\xff\xd8\xff")

    face = next(f for f in probe["faces"] if person_at(walkers, f) == RIGHT)
    chosen = ok(
        client.post(
            f"/probes/{probe['probe_id']}/selection",
            json={"face_ids": [face["face_id"]], "reason": "the suspect, walking left"},
        )
    )
    templated = [f["face_id"] for f in chosen["faces"] if f["templated"]]
    assert templated == [face["face_id"]], "only the selected face is templated (P-11)"
    if chosen["quality_flags"]:
        chosen = ok(
            client.post(
                f"/probes/{probe['probe_id']}/quality-decision",
                json={"proceed": True, "reason": "features still clear"},
            )
        )
    assert chosen["ready_for_search"], chosen["not_ready_because"]

    search = ok(open_search(people, probe["probe_id"], library["id"]), 201)
    run = ok(client.post(f"/searches/{search['id']}/runs"))
    assert run["candidates"][0]["subject"] == RIGHT, run["candidates"][:3]


def test_P11_a_box_drawn_on_a_video_probe_is_drawn_on_its_poster_frame(server, people, walkers):
    probe = ok(upload(people, two_people(walkers)), 201)
    poster = probe["video"]["poster_frame"]
    on_poster = next(f for f in probe["faces"] if f["frame_index"] == poster)
    box = {k: on_poster[k] for k in ("left", "top", "right", "bottom")}
    drawn = ok(
        people.analyst.client.post(
            f"/probes/{probe['probe_id']}/drawn-faces", json={**box, "reason": "the face, drawn by hand"}
        )
    )
    (face,) = [f for f in drawn["faces"] if f["drawn"]]
    assert face["selected"] and face["templated"] and face["frame_index"] is None
    picture = people.analyst.client.get(f"/probes/{probe['probe_id']}/faces/{face['face_id']}/thumbnail")
    assert picture.status_code == 200


def test_R05_purging_a_video_probe_erases_the_video_and_its_frames(server, people, walkers):
    probe = ok(upload(people, two_people(walkers)), 201)
    probe_id = probe["probe_id"]
    store = EncryptedFileStore.in_data_dir(server.data_dir)
    records = {r.record_id for r in store.records(probe_id)}
    assert probe_video_record(probe_id) in records
    # The video, the poster, and per offered face its frame and analysis.
    assert len(records) == 2 + 2 * len(probe["faces"]), records

    erased = ok(people.lead.client.post(f"/probes/{probe_id}/purge", json={"reason": "purpose resolved"}))
    assert erased["records_erased"] == len(records), erased
    assert store.records(probe_id) == []
    gone = people.analyst.client.get(f"/probes/{probe_id}/faces/face-1/thumbnail")
    assert gone.status_code == 404


@pytest.fixture
def unchanged(server):
    """Asserts, after the test, that the server stored no event and no biometric file."""
    before, blobs = stored_events(server), blob_count(server)
    yield
    assert stored_events(server) == before, "a refused video left events behind"
    assert blob_count(server) == blobs, "a refused video left files in the biometric store"
    no_clear_copies(server)


def test_a_corrupt_video_is_refused_422_and_leaves_nothing(server, people, walkers, unchanged):
    good = two_people(walkers)
    # An MP4's header, then noise: the container names itself but cannot be decoded.
    corrupt = good[:32] + os.urandom(len(good) - 32)
    body = problem(upload(people, corrupt), 422, "image-rejected")
    assert body["code"] == "undecodable"
    # Not a video at all, declared as one.
    body = problem(upload(people, b"GIF89a" + bytes(500), "video/webm"), 422, "image-rejected")
    assert "MP4, WebM or AVI" in body["detail"]


def test_an_over_long_video_is_refused_413_before_decoding_and_leaves_nothing(server, people, unchanged):
    small = (64, 48)
    long = write_video(int(FPS * (MAX_SECONDS + 1)), small, grey(small), fps=FPS)
    body = problem(upload(people, long), 413, "image-rejected")
    assert body["code"] == "too_long" and f"at most {MAX_SECONDS} are accepted" in body["detail"]


def test_an_over_resolution_video_is_refused_413_and_leaves_nothing(server, people, unchanged):
    large = (800, 600)
    body = problem(upload(people, write_video(3, large, grey(large), fps=FPS)), 413, "image-rejected")
    assert body["code"] == "too_many_pixels" and "800x600" in body["detail"]


def test_an_over_size_video_is_refused_413_and_leaves_nothing(server, people, unchanged):
    size = (320, 240)
    big = write_video(15, size, noise(size), fps=FPS, container="avi")
    assert MAX_BYTES < len(big) < 2 * 1024 * 1024, len(big)
    body = problem(upload(people, big, "video/x-msvideo"), 413, "image-rejected")
    assert body["code"] == "too_large" and str(MAX_BYTES) in body["detail"]


def test_a_video_type_not_accepted_is_refused_415_and_leaves_nothing(server, people, walkers, unchanged):
    body = problem(upload(people, two_people(walkers), "video/quicktime"), 415, "image-rejected")
    assert "MP4, WebM or AVI" in body["detail"]


# -- library items -------------------------------------------------------------------------


def enrol_files(people: Cast, library_id: str, files: list[tuple[str, bytes, str, str]]):
    """(subject, bytes, content type, file name) in one request, the facts given once."""
    return people.lead.client.post(
        f"/libraries/{library_id}/images",
        files=[("files", (name, data, kind)) for _, data, kind, name in files],
        data={
            "capture_date": "2022-05-01",
            "age_band": "18_plus",
            "mopi_group": "2",
            "subject": [s for s, *_ in files],
        },
    )


def test_a_video_of_one_subject_enrols_its_best_face_which_a_search_then_finds_and_a_purge_erases(
    server, people, photos
):
    library = approved_library(people, name="custody videos")
    walker = Walker(face_of(photos[LEFT][0]), (40, 40), (5, 3))
    clip = write_video(30, SIZE, walking_faces([walker], SIZE), fps=FPS)
    files = [(LEFT, clip, "video/mp4", "custody.mp4")]
    files += [(who, photos[who][0].read_bytes(), "image/jpeg", photos[who][0].name) for who in ENROLLED[1:]]
    report = ok(enrol_files(people, library["id"], files))
    assert [r["enrolled"] for r in report["results"]] == [True] * len(files), report["results"]
    video_image = report["results"][0]["image_id"]

    store = EncryptedFileStore.in_data_dir(server.data_dir)
    assert store.exists(library_video_record(video_image)) and store.exists(video_image)
    # The library image of a video is the frame its subject's face was taken from (PNG).
    assert store.get(video_image).startswith(b"\x89PNG")

    client = people.analyst.client
    probe = ok(
        client.post(
            "/probes",
            files=[("image", ("probe.jpg", photos[LEFT][2].read_bytes(), "image/jpeg")), form3_part(form3())],
        ),
        201,
    )
    face = max(probe["faces"], key=lambda f: (f["right"] - f["left"]) * (f["bottom"] - f["top"]))
    chosen = ok(
        client.post(
            f"/probes/{probe['probe_id']}/selection",
            json={"face_ids": [face["face_id"]], "reason": "suspect"},
        )
    )
    if chosen["quality_flags"]:
        ok(
            client.post(
                f"/probes/{probe['probe_id']}/quality-decision", json={"proceed": True, "reason": "clear"}
            )
        )
    search = ok(open_search(people, probe["probe_id"], library["id"]), 201)
    run = ok(client.post(f"/searches/{search['id']}/runs"))
    assert run["candidates"][0]["subject"] == LEFT, run["candidates"][:3]
    assert run["candidates"][0]["image_id"] == video_image

    ok(
        people.lead.client.post(
            f"/libraries/{library['id']}/images/purge",
            json={"image_ids": [video_image], "reason": "subject acquitted"},
        )
    )
    assert not store.exists(library_video_record(video_image)) and not store.exists(video_image)


def test_a_video_of_two_people_is_not_enrolled_as_one_subject(server, people, walkers):
    library = approved_library(people, name="custody videos, two people")
    report = ok(enrol_files(people, library["id"], [(LEFT, two_people(walkers), "video/mp4", "two.mp4")]))
    (result,) = report["results"]
    assert not result["enrolled"] and result["code"] == "several_faces", result


def test_an_over_long_library_video_refuses_the_whole_upload_413(server, people, photos, unchanged):
    # No such library: the files are checked before anything is looked up, so 413, not 404.
    library_id = "00000000-0000-4000-8000-000000000000"
    small = (64, 48)
    long = write_video(int(FPS * (MAX_SECONDS + 1)), small, grey(small), fps=FPS)
    response = enrol_files(people, library_id, [(LEFT, long, "video/mp4", "long.mp4")])
    body = problem(response, 413, "image-rejected")
    assert body["code"] == "too_long" and "files[0] (long.mp4)" in body["detail"]
