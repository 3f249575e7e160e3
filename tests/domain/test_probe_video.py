"""A short video probe in the domain (ADR 0026): sampled once, before its faces are offered, and
each offered face keeps its frame and time; nothing of the pixels is in an event."""

from __future__ import annotations

from domain_builders import ANALYST, T0, form3, refused

from rfr.domain.codec import from_data, to_data
from rfr.domain.probe_image import FaceRegion, ProbeImage, VideoSampling

SAMPLING = VideoSampling(
    frame_count=30,
    fps=10.0,
    width=480,
    height=360,
    duration_ms=3000,
    sampled_frames=6,
    tracks=2,
    poster_frame=20,
)


def video_probe() -> ProbeImage:
    return ProbeImage.submit(ANALYST, T0, form3(), "sha256:video")


def test_P11_a_video_is_sampled_once_and_before_its_faces_are_offered():
    probe = video_probe()
    probe.record_video_sampled(ANALYST, T0, SAMPLING)
    assert probe.video == SAMPLING
    refused("P-11", lambda: probe.record_video_sampled(ANALYST, T0, SAMPLING), probe)

    faces = [
        FaceRegion("face-1", 270, 120, 370, 220, 0.9, frame_index=20, time_ms=2000),
        FaceRegion("face-2", 100, 120, 195, 220, 0.8, frame_index=15, time_ms=1500),
    ]
    probe.record_faces_detected(ANALYST, T0, "cnn-mmod-v1", faces)
    assert probe.faces["face-2"].frame_index == 15 and probe.faces["face-2"].time_ms == 1500
    assert probe.templates == [] and probe.selected == set()

    later = video_probe()
    later.record_faces_detected(ANALYST, T0, "cnn-mmod-v1", faces)
    refused("P-11", lambda: later.record_video_sampled(ANALYST, T0, SAMPLING), later)


def test_a_still_image_probe_has_no_video_and_its_faces_no_frame():
    probe = video_probe()
    probe.record_faces_detected(ANALYST, T0, "cnn-mmod-v1", [FaceRegion("face-1", 1, 1, 40, 40, 0.9)])
    assert probe.video is None and probe.faces["face-1"].frame_index is None


def test_a_face_region_stored_before_videos_reads_without_a_frame():
    old = {
        k: v
        for k, v in to_data(FaceRegion("face-1", 1, 2, 3, 4, 0.5)).items()
        if k not in ("frame_index", "time_ms")
    }
    assert from_data(FaceRegion, old) == FaceRegion("face-1", 1, 2, 3, 4, 0.5)
