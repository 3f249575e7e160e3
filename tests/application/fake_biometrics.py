"""Biometrics for the governance service tests: a fake face engine over the real store and index.

Only the face engine is fake; everything around it is what production wires
(``rfr.entrypoints.composition.embedded_biometrics``): the encrypted file store, the index
registry (with the exact numpy index, which needs no native library) and the production
image decoder and JPEG encoder. So enrolment, probe templating and searching run the
production use cases end to end, in milliseconds, with no model file.

The images are tiny PNGs (``face_image``): a uniform grey square on a black background.
The fake engine sees one face wherever the pixels are not black, and its template is the
face's pixels, so two faces are as far apart as their greys: ``face_image(k)`` lies exactly
``k`` steps (``STEP``, in the embedder's Euclidean distance) from ``face_image(0)``. A
test places library images 1, 2, 3... steps from a probe of ``face_image(0)`` and knows
the ranks a search must return, and their scores (1 step scores 0.99, 2 steps 0.64,
3 steps 0.14 on the similarity scale, 0.5 being the embedder's threshold).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from rfr.adapters.biometric_store.encrypted_files import EncryptedFileStore
from rfr.adapters.biometric_store.thumbnails import encode_jpeg
from rfr.adapters.image_decoding import decode_image
from rfr.adapters.indexes.exact_numpy import ExactNumpyIndex
from rfr.adapters.indexes.registry import IndexRegistry
from rfr.application.face_engine import FaceEngine
from rfr.application.ports import DetectedFace, FaceBox, Point, QualityReport
from rfr.application.services.biometric_support import Biometrics

IMAGE_SIDE = 16
FACE_MARGIN = 4  # the face fills the image but for this black border: an 8x8 square
CHIP_SIDE = 4
BACKGROUND = 0
FIRST_GREY = 40
GREY_STEP = 10
MAX_STEPS = (255 - FIRST_GREY) // GREY_STEP
DIMENSION = CHIP_SIDE * CHIP_SIDE * 3
# One step of grey moves every template component by GREY_STEP / 255.
STEP = math.sqrt(DIMENSION) * GREY_STEP / 255
THRESHOLD = 0.6
MIN_FACE_PX = 4


def face_image(steps: int) -> bytes:
    """PNG of one face whose template lies ``steps`` steps from that of ``face_image(0)``."""
    if not 0 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be within 0..{MAX_STEPS}")
    pixels = np.full((IMAGE_SIDE, IMAGE_SIDE, 3), BACKGROUND, np.uint8)
    pixels[FACE_MARGIN:-FACE_MARGIN, FACE_MARGIN:-FACE_MARGIN] = FIRST_GREY + GREY_STEP * steps
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "PNG")
    return out.getvalue()


class BoxLandmarks:
    """Five landmarks (dlib's order) at fixed places in the box."""

    algorithm_id = "fake-box-landmarks/1"

    def locate(self, image: np.ndarray, box: FaceBox) -> tuple[Point, ...]:
        def at(fx: float, fy: float) -> Point:
            return (box.left + round(fx * (box.width - 1)), box.top + round(fy * (box.height - 1)))

        return (at(0.8, 0.3), at(0.6, 0.3), at(0.2, 0.3), at(0.4, 0.3), at(0.5, 0.65))


class NonBlackDetector:
    """One face: the box around every pixel that is not black (none in a black image)."""

    algorithm_id = "fake-non-black-detector/1"

    def __init__(self, landmarks: BoxLandmarks) -> None:
        self.landmarks = landmarks

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        mask = (image != BACKGROUND).any(axis=2)
        if not mask.any():
            return []
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        box = FaceBox(int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1]))
        return [DetectedFace(box, 0.99, self.landmarks.locate(image, box))]


class CropAligner:
    """The box, clipped to the image, sampled to a ``size`` x ``size`` chip (nearest pixel)."""

    algorithm_id = "fake-crop-aligner/1"

    def __init__(self, size: int = CHIP_SIDE) -> None:
        self.size = size

    def align(self, image: np.ndarray, face: DetectedFace) -> np.ndarray:
        height, width = image.shape[:2]
        box = face.box
        rows = np.clip(np.linspace(box.top, box.bottom, self.size).round().astype(int), 0, height - 1)
        cols = np.clip(np.linspace(box.left, box.right, self.size).round().astype(int), 0, width - 1)
        return np.ascontiguousarray(image[np.ix_(rows, cols)])


class PixelEmbedder:
    """The chip's pixels scaled to [0, 1] are the template; compared by Euclidean distance."""

    dimension = DIMENSION
    metric = "euclidean"
    threshold = THRESHOLD
    chip_size = CHIP_SIDE

    def __init__(self, version: str = "1") -> None:
        self.algorithm_id = f"fake-pixel-embedder/{version}"

    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        if not chips:
            return np.zeros((0, self.dimension), np.float32)
        return np.stack([np.asarray(c, np.float32).reshape(-1) / 255.0 for c in chips])


class BoxQuality:
    """Measures of the box; flags a face narrower than ``MIN_FACE_PX`` (P-10)."""

    def assess(self, image: np.ndarray, face: DetectedFace) -> QualityReport:
        eyes = face.landmarks
        inter_eye = abs((eyes[0][0] + eyes[1][0]) / 2 - (eyes[2][0] + eyes[3][0]) / 2)
        flags = ("face_too_small",) if face.box.width < MIN_FACE_PX else ()
        return QualityReport({"face_width_px": float(face.box.width), "inter_eye_px": inter_eye}, flags)


def fake_engine(version: str = "1") -> FaceEngine:
    """The fake engine; another ``version`` is another algorithm (T-01) with the same templates."""
    landmarks = BoxLandmarks()
    return FaceEngine(
        detector=NonBlackDetector(landmarks),
        landmarks=landmarks,
        aligner=CropAligner(),
        embedder=PixelEmbedder(version),
        quality=BoxQuality(),
    )


FAKE_ALGORITHM_ID = fake_engine().algorithm_id


def fake_biometrics(data_dir: Path, *, engine: FaceEngine | None = None, top_k: int = 2) -> Biometrics:
    """The fake engine over the real encrypted store (``biometrics/``, ``keys/``) and exact-numpy
    indexes (``indexes/``) under ``data_dir``, laid out as ``embedded_biometrics`` lays out its own."""
    store = EncryptedFileStore.in_data_dir(data_dir)
    return Biometrics(
        engine=engine or fake_engine(),
        store=store,
        indexes=IndexRegistry(data_dir / "indexes", ExactNumpyIndex, store=store),
        decode=decode_image,
        encode_jpeg=encode_jpeg,
        top_k=top_k,
    )
