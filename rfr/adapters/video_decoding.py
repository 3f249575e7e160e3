"""A short video's sampled frames, by OpenCV (``VideoSampler``), or a clear refusal before work.

The checks run cheapest first, each raising ``ImageRejected`` (code in brackets):

- nothing uploaded [empty]; more bytes than ``max_bytes`` [too_large, 413], before anything
  is written or decoded;
- the container is sniffed from its first bytes: MP4/QuickTime (``ftyp``), WebM/Matroska
  (EBML), AVI (``RIFF....AVI ``); anything else is not a video this accepts [undecodable];
- OpenCV reads video from a file only, so the bytes go to a private file (mode 0600, created
  exclusively) in ``tmp/`` under the data folder, removed when the context ends. Files left
  there by a process that died are removed by the next upload once an hour old, so the clear
  video does not outlive its decoding; what is kept is the encrypted copy (ADR 0026);
- the container's own frame count, frame rate and frame size are checked before any frame is
  decoded: a frame larger than ``max_frame_pixels`` [too_many_pixels, 413], longer than
  ``max_seconds`` [too_long, 413], no frames or no rate [undecodable];
- the container may lie, so the decode loop is bounded too: it reads no more frames than the
  duration limit admits at the declared rate and refuses a video that has more [too_long],
  samples at most ``max_samples``, and refuses a frame whose size is not the one declared
  [too_many_pixels or undecodable]. A video that yields no frame at all is [undecodable].

Codecs are those this OpenCV build's FFmpeg decodes (MPEG-4 Part 2, Motion JPEG, VP8/VP9 and
H.264 among them); which ones its writer makes is what the tests use.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import cv2
import numpy as np

from rfr.application.errors import ImageRejected
from rfr.application.video_faces import SampledFrame, VideoFacts, VideoLimits

TMP_PREFIX = "rfr-video-"
# A clear copy older than this was left by a process that died while decoding it.
STALE_SECONDS = 3600


def sniff_container(data: bytes) -> str | None:
    """The container the first bytes name, as a file suffix FFmpeg recognises, or None."""
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return ".mp4"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return ".webm"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return ".avi"
    return None


@attrs.define
class _OpenVideo:
    facts: VideoFacts
    capture: cv2.VideoCapture
    limits: VideoLimits

    def frames(self) -> Iterator[SampledFrame]:
        """Every ``step``-th frame, at most ``max_samples``. Bounded whatever the container
        declared: no more frames are read than the duration limit admits (a video that has more
        is refused, too_long), and no more sampled than ``max_samples`` (a container that
        understates its length is sampled more densely, never more often)."""
        facts, limits = self.facts, self.limits
        step = limits.sample_step(facts.frame_count, facts.fps)
        allowed = math.floor(limits.max_seconds * facts.fps) + 1
        index = yielded = 0
        while index < allowed:
            if index % step == 0 and yielded < limits.max_samples:
                ok, bgr = self.capture.read()
                if not ok:
                    break
                yield SampledFrame(index, round(index * 1000 / facts.fps), self._checked(bgr))
                yielded += 1
            elif not self.capture.grab():
                break
            index += 1
        else:
            if self.capture.grab():
                raise ImageRejected(
                    f"the video has more frames than its header says; at most "
                    f"{limits.max_seconds} seconds are accepted",
                    "too_long",
                )
        if yielded == 0:
            raise ImageRejected("no frame of the video could be decoded", "undecodable")

    def _checked(self, bgr: np.ndarray | None) -> np.ndarray:
        if bgr is None or bgr.ndim != 3 or bgr.shape[2] != 3:
            raise ImageRejected("a frame of the video could not be decoded", "undecodable")
        height, width = bgr.shape[:2]
        if width * height > self.limits.max_frame_pixels:
            raise ImageRejected(
                f"a frame is {width}x{height} pixels; at most {self.limits.max_frame_pixels} "
                "pixels a frame are accepted",
                "too_many_pixels",
            )
        if (width, height) != (self.facts.width, self.facts.height):
            raise ImageRejected("a frame's size is not the one the video declares", "undecodable")
        return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


class OpenCvVideoSampler:
    """``VideoSampler`` with OpenCV's FFmpeg backend; clear copies live only in ``tmp_dir``."""

    def __init__(self, tmp_dir: Path, limits: VideoLimits | None = None) -> None:
        self.tmp_dir = tmp_dir
        self.limits = limits or VideoLimits()

    @contextlib.contextmanager
    def open(self, data: bytes) -> Iterator[_OpenVideo]:
        limits = self.limits
        if not data:
            raise ImageRejected("no video data was received", "empty")
        if len(data) > limits.max_bytes:
            raise ImageRejected(
                f"the video is {len(data)} bytes; at most {limits.max_bytes} are accepted", "too_large"
            )
        suffix = sniff_container(data)
        if suffix is None:
            raise ImageRejected("the data is not an MP4, WebM or AVI video", "undecodable")
        with self._private_copy(data, suffix) as path:
            capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
            try:
                if not capture.isOpened():
                    raise ImageRejected("the video cannot be decoded", "undecodable")
                yield _OpenVideo(self._facts(capture), capture, limits)
            finally:
                capture.release()

    def encode_frame(self, pixels: np.ndarray) -> bytes:
        ok, png = cv2.imencode(".png", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
        if not ok:
            raise ValueError("a frame could not be encoded as PNG")
        return png.tobytes()

    def _facts(self, capture: cv2.VideoCapture) -> VideoFacts:
        limits = self.limits
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        if width <= 0 or height <= 0 or frames <= 0 or not fps > 0 or fps > 1000:
            raise ImageRejected("the video declares no frames, size or frame rate", "undecodable")
        if width * height > limits.max_frame_pixels:
            raise ImageRejected(
                f"the video's frames are {width}x{height} pixels; at most "
                f"{limits.max_frame_pixels} pixels a frame are accepted",
                "too_many_pixels",
            )
        facts = VideoFacts(frames, fps, width, height)
        if facts.duration_ms > limits.max_seconds * 1000:
            raise ImageRejected(
                f"the video lasts {facts.duration_ms / 1000:.1f} seconds; at most "
                f"{limits.max_seconds} are accepted",
                "too_long",
            )
        return facts

    @contextlib.contextmanager
    def _private_copy(self, data: bytes, suffix: str) -> Iterator[Path]:
        self.tmp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._remove_stale()
        # mkstemp creates the file exclusively with mode 0600.
        fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=suffix, dir=self.tmp_dir)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            yield path
        finally:
            path.unlink(missing_ok=True)

    def _remove_stale(self) -> None:
        cutoff = time.time() - STALE_SECONDS
        for leftover in self.tmp_dir.glob(f"{TMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
