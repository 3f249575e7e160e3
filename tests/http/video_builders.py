"""Short videos made by the tests with OpenCV's own writer: faces pasted from the shared photos
onto a plain background, moving from frame to frame, or frames of noise and colour.

Which codecs this OpenCV build both writes and reads (checked when this was written):
``mp4v`` in .mp4, ``MJPG`` in .avi, ``VP80`` in .webm. H.264 (``avc1``) it does not write.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import cv2
import numpy as np

CODECS = {"mp4": ("mp4v", ".mp4"), "avi": ("MJPG", ".avi"), "webm": ("VP80", ".webm")}
CONTENT_TYPES = {"mp4": "video/mp4", "avi": "video/x-msvideo", "webm": "video/webm"}


def write_video(
    frames: int,
    size: tuple[int, int],
    draw: Callable[[int], np.ndarray],
    *,
    fps: float = 10.0,
    container: str = "mp4",
) -> bytes:
    """``frames`` frames of ``size`` (width, height), each ``draw(n)`` (BGR), as a video file's bytes."""
    fourcc, suffix = CODECS[container]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"clip{suffix}"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
        assert writer.isOpened(), f"this OpenCV cannot write {fourcc}"
        for n in range(frames):
            writer.write(draw(n))
        writer.release()
        return path.read_bytes()


@attrs.frozen
class Walker:
    """A face (BGR, square) pasted with its top-left corner at ``start`` + n * ``step``."""

    face: np.ndarray
    start: tuple[int, int]
    step: tuple[int, int]

    def at(self, n: int) -> tuple[int, int]:
        return self.start[0] + n * self.step[0], self.start[1] + n * self.step[1]

    def centre(self, n: int) -> tuple[float, float]:
        x, y = self.at(n)
        side = self.face.shape[1]
        return x + side / 2, y + side / 2


def face_of(photo: Path, side: int = 160) -> np.ndarray:
    """The middle of an LFW photo (250 x 250, the face centred), resized to ``side`` pixels."""
    image = cv2.imread(str(photo))
    assert image is not None, photo
    height, width = image.shape[:2]
    crop = image[height // 5 : height - height // 5, width // 5 : width - width // 5]
    return cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)


def walking_faces(walkers: Sequence[Walker], size: tuple[int, int]) -> Callable[[int], np.ndarray]:
    width, height = size
    background = np.zeros((height, width, 3), np.uint8)
    background[:] = np.linspace(70, 150, width, dtype=np.uint8)[None, :, None]

    def draw(n: int) -> np.ndarray:
        frame = background.copy()
        for walker in walkers:
            x, y = walker.at(n)
            side = walker.face.shape[0]
            frame[y : y + side, x : x + side] = walker.face
        return frame

    return draw


def noise(size: tuple[int, int], seed: int = 7) -> Callable[[int], np.ndarray]:
    """Frames of random noise: they compress badly, so the file is large for its length."""
    width, height = size
    rng = np.random.default_rng(seed)
    return lambda n: rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def grey(size: tuple[int, int]) -> Callable[[int], np.ndarray]:
    width, height = size
    return lambda n: np.full((height, width, 3), 40 + n % 100, np.uint8)
