"""Short videos without the models (ADR 0026): which frames are sampled, how faces are tracked
across them and which face of a track is offered, and how the OpenCV sampler refuses before
decoding and keeps its clear copy private and short-lived."""

from __future__ import annotations

import os
import stat
import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "http"))

from video_builders import grey, write_video

from rfr.adapters.video_decoding import TMP_PREFIX, OpenCvVideoSampler, sniff_container
from rfr.application.errors import ImageRejected
from rfr.application.face_engine import AnalysedFace
from rfr.application.ports import DetectedFace, FaceBox, QualityReport
from rfr.application.video_faces import FaceTracker, SampledFrame, VideoLimits, association_cost

SIZE = (96, 64)


def face(
    left: int, top: int, side: int = 40, flags: tuple[str, ...] = (), eyes: float = 20.0
) -> AnalysedFace:
    box = FaceBox(left, top, left + side - 1, top + side - 1)
    quality = QualityReport({"inter_eye_px": eyes, "sharpness": 100.0}, flags)
    return AnalysedFace(DetectedFace(box, 0.9, ((0, 0),) * 5), quality)


def frame(index: int) -> SampledFrame:
    return SampledFrame(index, index * 100, np.zeros((4, 4, 3), np.uint8))


def test_two_faces_walking_towards_each_other_stay_two_tracks():
    tracker = FaceTracker()
    for n in range(8):
        # 40 px faces, 15 px a sample each way; they end 50 px apart, centre to centre.
        tracker.add(frame(n * 5), [face(10 + 15 * n, 20), face(270 - 15 * n, 30)])
    best = tracker.best_faces()
    assert [t.track for t in best] == [1, 2]


def test_a_face_gone_for_more_than_two_samples_comes_back_as_a_new_track():
    tracker = FaceTracker()
    tracker.add(frame(0), [face(10, 10)])
    tracker.add(frame(5), [face(12, 10)])
    for n in (10, 15, 20):
        tracker.add(frame(n), [])
    tracker.add(frame(25), [face(14, 10)])
    assert len(tracker.best_faces()) == 2


def test_a_face_back_after_one_missed_sample_stays_on_its_track():
    tracker = FaceTracker()
    tracker.add(frame(0), [face(10, 10)])
    tracker.add(frame(5), [])
    tracker.add(frame(10), [face(20, 10)])
    assert len(tracker.best_faces()) == 1


def test_P10_the_face_offered_from_a_track_has_the_fewest_flags_then_the_most_detail():
    tracker = FaceTracker()
    tracker.add(frame(0), [face(10, 10, flags=("blurred",), eyes=40)])
    tracker.add(frame(5), [face(12, 10, eyes=18)])
    tracker.add(frame(10), [face(14, 10, eyes=22)])
    tracker.add(frame(15), [face(16, 10, flags=("dark",), eyes=60)])
    (best,) = tracker.best_faces()
    assert best.frame.index == 10


def test_a_face_twice_the_size_or_two_widths_away_is_another_face():
    base = FaceBox(0, 0, 39, 39)
    assert association_cost(base, FaceBox(20, 0, 59, 39)) == pytest.approx(0.5)
    assert association_cost(base, FaceBox(100, 0, 139, 39)) is None
    assert association_cost(base, FaceBox(0, 0, 89, 89)) is None


def test_no_more_tracks_than_the_limit_are_kept():
    tracker = FaceTracker(max_tracks=3)
    tracker.add(frame(0), [face(100 * n, 0) for n in range(5)])
    assert len(tracker.best_faces()) == 3


def test_samples_are_spread_over_the_video_and_bounded():
    limits = VideoLimits(samples_per_second=2, max_samples=40)
    assert limits.sample_step(frame_count=30, fps=10) == 5
    # 30 s at 30 fps: 2 a second would be 60 samples; 40 at most, so every 23rd frame.
    assert limits.sample_step(frame_count=900, fps=30) == 23
    assert limits.sample_step(frame_count=3, fps=1) == 1


@pytest.mark.parametrize("container", ["mp4", "avi", "webm"])
def test_each_container_this_opencv_writes_is_sniffed_and_sampled(tmp_path, container):
    data = write_video(20, SIZE, grey(SIZE), fps=10, container=container)
    assert sniff_container(data) is not None
    sampler = OpenCvVideoSampler(tmp_path / "tmp", VideoLimits(samples_per_second=2))
    with sampler.open(data) as video:
        assert (video.facts.width, video.facts.height, video.facts.frame_count) == (*SIZE, 20)
        frames = list(video.frames())
    assert [f.index for f in frames] == [0, 5, 10, 15]
    assert [f.time_ms for f in frames] == [0, 500, 1000, 1500]
    assert frames[0].pixels.shape == (SIZE[1], SIZE[0], 3)


def test_the_clear_copy_is_private_while_decoded_and_gone_after(tmp_path):
    data = write_video(5, SIZE, grey(SIZE), fps=10)
    folder = tmp_path / "tmp"
    sampler = OpenCvVideoSampler(folder)
    with sampler.open(data) as video:
        (copy,) = list(folder.iterdir())
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        list(video.frames())
    assert list(folder.iterdir()) == []


def test_a_copy_left_by_a_dead_process_is_removed_once_an_hour_old(tmp_path):
    folder = tmp_path / "tmp"
    folder.mkdir()
    old, recent = folder / f"{TMP_PREFIX}old.mp4", folder / f"{TMP_PREFIX}recent.mp4"
    old.write_bytes(b"clear video")
    recent.write_bytes(b"being decoded by another request")
    hour_ago = time.time() - 3700
    os.utime(old, (hour_ago, hour_ago))
    with OpenCvVideoSampler(folder).open(write_video(2, SIZE, grey(SIZE))):
        pass
    assert sorted(p.name for p in folder.iterdir()) == [recent.name]


@pytest.mark.parametrize(
    ("limits", "code"),
    [
        (VideoLimits(max_bytes=1000), "too_large"),
        (VideoLimits(max_seconds=1), "too_long"),
        (VideoLimits(max_frame_pixels=SIZE[0] * SIZE[1] - 1), "too_many_pixels"),
    ],
)
def test_over_a_limit_is_refused_when_opened_before_any_frame_is_decoded(tmp_path, limits, code):
    data = write_video(20, SIZE, grey(SIZE), fps=10)
    assert len(data) > 1000
    with pytest.raises(ImageRejected) as refused, OpenCvVideoSampler(tmp_path, limits).open(data):
        pytest.fail("opened")
    assert refused.value.code == code


@pytest.mark.parametrize("data", [b"", b"\xff\xd8\xff\xe0 a JPEG", b"\x00\x00\x00\x18ftypisom" + bytes(2000)])
def test_what_is_not_a_decodable_video_is_refused(tmp_path, data):
    with pytest.raises(ImageRejected) as refused, OpenCvVideoSampler(tmp_path).open(data) as video:
        list(video.frames())
    assert refused.value.code in ("empty", "undecodable")


def understated(frames: int, declared: int) -> bytes:
    """An MJPG AVI of ``frames`` frames whose headers (avih, strh) say it has ``declared``."""
    data = bytearray(write_video(frames, SIZE, grey(SIZE), fps=10, container="avi"))
    avih, strh = data.find(b"avih"), data.find(b"strh")
    struct.pack_into("<I", data, avih + 8 + 16, declared)  # dwTotalFrames
    struct.pack_into("<I", data, strh + 8 + 32, declared)  # dwLength
    return bytes(data)


def test_a_container_that_understates_its_length_is_read_no_further_than_the_limit(tmp_path):
    lying = understated(frames=40, declared=5)
    limits = VideoLimits(max_seconds=2, samples_per_second=10, max_samples=6)
    with OpenCvVideoSampler(tmp_path, limits).open(lying) as video:
        assert video.facts.frame_count == 5, "the header passed the duration check"
        frames = []
        with pytest.raises(ImageRejected) as refused:
            for sampled in video.frames():
                frames.append(sampled.index)
    assert refused.value.code == "too_long"
    # Sampled no more often than max_samples, though the header made every frame a sample.
    assert frames == [0, 1, 2, 3, 4, 5]


def test_a_container_that_understates_its_length_within_the_limit_is_sampled_not_refused(tmp_path):
    lying = understated(frames=12, declared=5)
    limits = VideoLimits(max_seconds=2, samples_per_second=10, max_samples=40)
    with OpenCvVideoSampler(tmp_path, limits).open(lying) as video:
        assert [f.index for f in video.frames()] == list(range(12))
