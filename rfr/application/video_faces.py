"""Faces in a short video: sampled frames, faces tracked across them, one best face per track.

A short video (issue 13, item 6; policy 1.10 "or short video") is not searched frame by
frame. Its frames are sampled (``VideoLimits.samples_per_second``, at most
``VideoLimits.max_samples`` in all, spread evenly over the whole video), the deployment's
detector runs on each sampled frame, and the faces are tracked from one sampled frame to the
next (``FaceTracker``). Each track is one person as far as the geometry can tell, and the
face of best quality in it (``quality_rank``) is what the user is offered (P-10), nothing
being templated until the user selects (P-11).

This module knows no video library: the port ``VideoSampler`` (an adapter, with OpenCV)
turns the uploaded bytes into sampled frames, refusing over-limit or undecodable uploads
with ``ImageRejected`` before decoding them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

import attrs
import numpy as np

from rfr.application.face_engine import AnalysedFace, FaceEngine
from rfr.application.ports import FaceBox
from rfr.domain.probe_image import VideoSampling

# Defaults: a short clip, as the policy says, at the resolution CCTV exports and phones give.
# Under the HTTP request limit (RFR_MAX_REQUEST_BYTES, 20 MiB), so this is the limit a client meets.
DEFAULT_VIDEO_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_VIDEO_MAX_SECONDS = 30
DEFAULT_VIDEO_MAX_FRAME_PIXELS = 1920 * 1080
DEFAULT_VIDEO_SAMPLES_PER_SECOND = 2
DEFAULT_VIDEO_MAX_SAMPLES = 40
# More faces than this in one video are not tracked further (each track keeps one frame in
# memory until the upload is stored, so the number is bounded; the ADR says why 30).
DEFAULT_VIDEO_MAX_TRACKS = 30


@attrs.frozen
class VideoLimits:
    """What a deployment accepts as a short video, each refused before the frames are decoded.

    ``max_bytes``: the upload's size (413); ``max_seconds``: its duration (413);
    ``max_frame_pixels``: width x height of a frame (413); ``samples_per_second`` and
    ``max_samples``: how many frames are looked at, which bounds the detector's work whatever
    the video; ``max_tracks``: how many faces are followed and offered.
    """

    max_bytes: int = DEFAULT_VIDEO_MAX_BYTES
    max_seconds: int = DEFAULT_VIDEO_MAX_SECONDS
    max_frame_pixels: int = DEFAULT_VIDEO_MAX_FRAME_PIXELS
    samples_per_second: int = DEFAULT_VIDEO_SAMPLES_PER_SECOND
    max_samples: int = DEFAULT_VIDEO_MAX_SAMPLES
    max_tracks: int = DEFAULT_VIDEO_MAX_TRACKS

    def sample_step(self, frame_count: int, fps: float) -> int:
        """Every how many frames one is sampled: ``samples_per_second``, but never more than
        ``max_samples`` over the whole video."""
        by_rate = max(1, math.floor(fps / self.samples_per_second))
        by_count = max(1, math.ceil(frame_count / self.max_samples))
        return max(by_rate, by_count)


@attrs.frozen
class VideoFacts:
    """What the container says of a video (checked against ``VideoLimits``), and what was sampled."""

    frame_count: int
    fps: float
    width: int
    height: int

    @property
    def duration_ms(self) -> int:
        return round(self.frame_count * 1000 / self.fps)


@attrs.frozen(eq=False)
class SampledFrame:
    """One sampled frame: its index in the video (from 0), its time, its RGB pixels."""

    index: int
    time_ms: int
    pixels: np.ndarray


class SampledVideo(Protocol):
    facts: VideoFacts

    def frames(self) -> Iterator[SampledFrame]: ...


class VideoSampler(Protocol):
    """Uploaded bytes to sampled frames; ``ImageRejected`` for a refused upload (413/415/422)."""

    limits: VideoLimits

    def open(self, data: bytes) -> AbstractContextManager[SampledVideo]:
        """The video's facts, checked against the limits, and its sampled frames; any file the
        decoder needed is gone when the context ends."""
        ...

    def encode_frame(self, pixels: np.ndarray) -> bytes:
        """A frame as a lossless image the image decoder reads (PNG): what is stored of it."""
        ...


def quality_rank(face: AnalysedFace) -> tuple[float, ...]:
    """Lower is better: fewest P-10 flags, then the most pixels between the eyes (detail), then
    the sharpest. Flags first because they are what the user must otherwise decide on (P-10)."""
    measures = face.quality.measures
    return (
        float(len(face.quality.flags)),
        -float(measures.get("inter_eye_px", 0.0)),
        -float(measures.get("sharpness", 0.0)),
    )


@attrs.frozen(eq=False)
class TrackedFace:
    """The best face of one track so far, with the frame it is on."""

    track: int
    frame: SampledFrame
    face: AnalysedFace


@attrs.define
class _Track:
    number: int
    last_box: FaceBox
    last_sample: int
    best: TrackedFace


def _centre(box: FaceBox) -> tuple[float, float]:
    return (box.left + box.right) / 2.0, (box.top + box.bottom) / 2.0


def association_cost(a: FaceBox, b: FaceBox) -> float | None:
    """How far box ``b`` is from ``a``, in face widths between centres; None when ``b`` cannot
    be the same face: its centre more than ``MAX_STEP_WIDTHS`` widths away, or its size changed
    by more than ``MAX_SIZE_RATIO`` between two sampled frames."""
    wa, wb = max(1, a.width), max(1, b.width)
    if max(wa, wb) / min(wa, wb) > MAX_SIZE_RATIO:
        return None
    (ax, ay), (bx, by) = _centre(a), _centre(b)
    cost = math.hypot(ax - bx, ay - by) / max(wa, wb)
    return cost if cost <= MAX_STEP_WIDTHS else None


# At two samples a second a walking face moves well under a face width between samples; one
# and a half widths keeps a face that moves fast, and two people side by side (a width or
# more apart, centre to centre) are told apart by taking the nearest pairs first.
MAX_STEP_WIDTHS = 1.5
MAX_SIZE_RATIO = 2.0
# A track missing from this many sampled frames in a row ends (a face turned away, occluded).
MAX_MISSED_SAMPLES = 2


class FaceTracker:
    """Faces followed from one sampled frame to the next by their boxes' centres.

    Each sampled frame's faces are paired with the tracks seen in the last ``MAX_MISSED_SAMPLES``
    sampled frames, nearest pairs first (``association_cost``: centre distance in face widths,
    sizes alike); a face paired with no track starts one, while fewer than ``max_tracks`` exist.
    Geometry only, no appearance: two people who cross paths may swap tracks, which costs at
    most an extra offered face or a missed one, never a template (P-11: the user chooses).
    Only each track's best face and its frame are kept, so memory is bounded by the tracks.
    """

    def __init__(self, max_tracks: int = DEFAULT_VIDEO_MAX_TRACKS) -> None:
        self.max_tracks = max_tracks
        self._tracks: list[_Track] = []
        self._sample = -1

    def add(self, frame: SampledFrame, faces: Sequence[AnalysedFace]) -> None:
        self._sample += 1
        live = [t for t in self._tracks if self._sample - t.last_sample <= MAX_MISSED_SAMPLES]
        pairs = sorted(
            (cost, n, t.number)
            for n, face in enumerate(faces)
            for t in live
            if (cost := association_cost(t.last_box, face.face.box)) is not None
        )
        by_number = {t.number: t for t in live}
        placed: set[int] = set()
        taken: set[int] = set()
        for _, n, number in pairs:
            if n in placed or number in taken:
                continue
            placed.add(n)
            taken.add(number)
            self._extend(by_number[number], frame, faces[n])
        for n, face in enumerate(faces):
            if n not in placed and len(self._tracks) < self.max_tracks:
                number = len(self._tracks) + 1
                best = TrackedFace(number, frame, face)
                self._tracks.append(_Track(number, face.face.box, self._sample, best))

    def _extend(self, track: _Track, frame: SampledFrame, face: AnalysedFace) -> None:
        track.last_box = face.face.box
        track.last_sample = self._sample
        if quality_rank(face) < quality_rank(track.best.face):
            track.best = TrackedFace(track.number, frame, face)

    def best_faces(self) -> list[TrackedFace]:
        """One face per track, the best of it, in the order the tracks began."""
        return [t.best for t in self._tracks]


@attrs.frozen(eq=False)
class VideoFaces:
    """What a video offers: its sampling (for the probe's events), one best face per track in
    the order the tracks began, and the poster frame (the first offered face's, or the first
    sampled frame when no face was found)."""

    sampling: VideoSampling
    faces: tuple[TrackedFace, ...]
    poster: SampledFrame


def faces_in_video(engine: FaceEngine, video: SampledVideo, max_tracks: int) -> VideoFaces:
    """Every sampled frame through the detector, the faces tracked, one best face per track."""
    tracker = FaceTracker(max_tracks)
    first: SampledFrame | None = None
    sampled = 0
    for frame in video.frames():
        first = first or frame
        sampled += 1
        tracker.add(frame, engine.detect(frame.pixels))
    if first is None:  # the sampler refuses a video without frames; this keeps the type honest
        raise ValueError("the video gave no frame")
    best = tuple(tracker.best_faces())
    poster = best[0].frame if best else first
    facts = video.facts
    sampling = VideoSampling(
        frame_count=facts.frame_count,
        fps=float(facts.fps),
        width=facts.width,
        height=facts.height,
        duration_ms=facts.duration_ms,
        sampled_frames=sampled,
        tracks=len(best),
        poster_frame=poster.index,
    )
    return VideoFaces(sampling, best, poster)
