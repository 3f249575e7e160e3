"""What the biometric use cases share: their ports, face analyses at rest, crops and hashes.

The use cases take every technical capability through ``Biometrics``, built by the
composition root: the face engine, the encrypted store, the index registry, and two plain
functions for the image formats (decoding uploads, encoding JPEG thumbnails), so this layer
imports no image library.

A face analysis (box, detector score, 5 landmarks, the aligner's points when the detector
gives them, quality measures and flags) is kept in
the biometric store, not in events: landmarks describe a face, and the analysis is what
the later steps need exactly as the detector produced it (a template is made from the
detector's own landmarks, P-11), so it is erased with the image (R-05).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import attrs
import numpy as np

from rfr.application.face_engine import AnalysedFace, FaceEngine, FaceEngines, UnknownAlgorithm
from rfr.application.heavy_work import HeavyWork
from rfr.application.ports import (
    BiometricStore,
    DetectedFace,
    FaceBox,
    QualityReport,
    RecordKind,
    VectorIndex,
    VectorIndexRegistry,
)
from rfr.application.similarity import SimilarityScale
from rfr.application.video_faces import VideoSampler
from rfr.domain.probe_image import ProbeImage

ImageDecoder = Callable[[bytes], np.ndarray]
JpegEncoder = Callable[[np.ndarray], bytes]

DEFAULT_TOP_K = 20
ANALYSIS_FORMAT = "rfr-face-analysis/1"


@attrs.frozen
class Biometrics:
    """The biometric capabilities of the use cases, chosen by the composition root.

    ``top_k``: candidates returned per library searched (S-04). ``ucc_min_score`` and
    ``ucc_top_k``: a new library image is queued for a cached probe (U-02) only at or above
    this score (0.5 is the algorithm's own decision threshold) and at most this many per
    probe and enrolment, so re-searching does not flood adjudicators with non-matches.
    ``import_root``: the server folder bulk enrolment may read from (None: no bulk import).
    ``heavy``: admission to decoding, detection and templating (one pool per process).
    """

    engine: FaceEngine
    store: BiometricStore
    indexes: VectorIndexRegistry
    decode: ImageDecoder
    encode_jpeg: JpegEncoder
    top_k: int = DEFAULT_TOP_K
    ucc_min_score: float = 0.5
    ucc_top_k: int = 5
    import_root: Path | None = None
    heavy: HeavyWork = attrs.field(factory=HeavyWork)
    # Every engine the deployment can build, the default ``engine`` among them (T-02); None: that one.
    engines: FaceEngines | None = None
    # Short videos' frames (issue 13); None: this deployment takes still images only (415).
    video: VideoSampler | None = None

    @property
    def algorithm_id(self) -> str:
        """The deployment's default algorithm: of new libraries and of probes' first templates."""
        return self.engine.algorithm_id

    @property
    def catalogue(self) -> FaceEngines:
        return self.engines if self.engines is not None else FaceEngines(self.engine)

    def engine_for(self, algorithm_id: str) -> FaceEngine:
        """The engine that makes templates of ``algorithm_id`` (``UnknownAlgorithm`` if none)."""
        if algorithm_id == self.engine.algorithm_id:
            return self.engine
        return self.catalogue.for_algorithm(algorithm_id)

    def buildable(self, algorithm_ids: Iterable[str]) -> tuple[str, ...]:
        """Of ``algorithm_ids``, those this deployment can template with (in the order given)."""
        found = []
        for algorithm_id in algorithm_ids:
            try:
                self.engine_for(algorithm_id)
            except UnknownAlgorithm:
                continue
            found.append(algorithm_id)
        return tuple(found)

    def scale_for(self, algorithm_id: str) -> SimilarityScale:
        return SimilarityScale.for_embedder(self.engine_for(algorithm_id).embedder)

    def index_for(self, library_id: str, algorithm_id: str) -> VectorIndex:
        embedder = self.engine_for(algorithm_id).embedder
        return self.indexes.open(library_id, algorithm_id, embedder.dimension, embedder.metric)

    @property
    def scale(self) -> SimilarityScale:
        return SimilarityScale.for_embedder(self.engine.embedder)

    def index(self, library_id: str) -> VectorIndex:
        embedder = self.engine.embedder
        return self.indexes.open(library_id, self.algorithm_id, embedder.dimension, embedder.metric)


# Record ids in the store. A library image's records are named after its image id and a
# probe's after the probe id; templates are named by their own template id (the id events
# carry), with the library or probe as owner.


def library_face_record(image_id: str) -> str:
    return f"{image_id}:face"


def library_subject_record(image_id: str) -> str:
    return f"{image_id}:subject"


def library_video_record(image_id: str) -> str:
    """A library item enrolled from a short video: the video as uploaded (its image record holds
    the frame the subject's face was taken from)."""
    return f"{image_id}:video"


def library_image_records(image_id: str) -> tuple[str, ...]:
    """A library image's records apart from its templates: all erased with it (R-05)."""
    return (
        image_id,
        library_face_record(image_id),
        library_subject_record(image_id),
        library_video_record(image_id),
    )


def probe_image_record(probe_id: object) -> str:
    return f"probe:{probe_id}:image"


def probe_face_record(probe_id: object, face_id: str) -> str:
    return f"probe:{probe_id}:face:{face_id}"


def probe_video_record(probe_id: object) -> str:
    """A video probe's video as uploaded (its ``probe_image_record`` holds its poster frame)."""
    return f"probe:{probe_id}:video"


def probe_frame_record(probe_id: object, face_id: str) -> str:
    """The frame (PNG) a face offered from a video probe is on: what its template is made from."""
    return f"probe:{probe_id}:frame:{face_id}"


def probe_face_picture_record(probe: ProbeImage, face_id: str) -> str:
    """The stored picture a probe's face is on: the frame of a face offered from a video, else
    the probe image (a box drawn on a video probe is drawn on its poster frame, that image)."""
    region = probe.faces.get(face_id)
    if probe.video is not None and region is not None and not region.drawn:
        return probe_frame_record(probe.id, face_id)
    return probe_image_record(probe.id)


def template_on_pictures(
    probe: ProbeImage,
    face_ids: Sequence[str],
    faces: Sequence[DetectedFace],
    picture: Callable[[str], np.ndarray],
    make: Callable[[np.ndarray, list[DetectedFace]], np.ndarray],
) -> np.ndarray:
    """Templates of ``faces`` (of ``face_ids``), one row each in that order, each made (``make``)
    on the picture its face is on (``picture`` of ``probe_face_picture_record``), decoded once."""
    groups: dict[str, list[int]] = {}
    for n, face_id in enumerate(face_ids):
        groups.setdefault(probe_face_picture_record(probe, face_id), []).append(n)
    rows: list[np.ndarray | None] = [None] * len(face_ids)
    for record, positions in groups.items():
        vectors = make(picture(record), [faces[n] for n in positions])
        for n, vector in zip(positions, vectors, strict=True):
            rows[n] = vector
    return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)


def content_hash(data: bytes) -> str:
    """The hash events carry: SHA-256 of the bytes as uploaded (ADR 0004)."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@attrs.frozen
class FaceAnalysis:
    """One face as the engine saw it, kept encrypted in the store beside its image."""

    face_id: str
    face: DetectedFace
    quality: QualityReport
    drawn: bool = False

    @classmethod
    def of(cls, face_id: str, analysed: AnalysedFace, *, drawn: bool = False) -> FaceAnalysis:
        return cls(face_id, analysed.face, analysed.quality, drawn)

    @property
    def box(self) -> FaceBox:
        return self.face.box

    @property
    def score(self) -> float | None:
        return None if self.drawn or math.isnan(self.face.score) else float(self.face.score)

    def to_bytes(self) -> bytes:
        box = self.face.box
        return json.dumps(
            {
                "format": ANALYSIS_FORMAT,
                "face_id": self.face_id,
                "box": [box.left, box.top, box.right, box.bottom],
                "score": self.score,
                "landmarks": [list(p) for p in self.face.landmarks],
                "measures": {k: float(v) for k, v in self.quality.measures.items()},
                "flags": list(self.quality.flags),
                "drawn": self.drawn,
                # Only when the detector gave them (YuNet for SFace); a dlib analysis is unchanged.
                **(
                    {"alignment_points": [[float(x), float(y)] for x, y in self.face.alignment_points]}
                    if self.face.alignment_points
                    else {}
                ),
            }
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> FaceAnalysis:
        item = json.loads(data)
        if item.get("format") != ANALYSIS_FORMAT:
            raise ValueError("not a face analysis record")
        score = item["score"]
        face = DetectedFace(
            FaceBox(*item["box"]),
            math.nan if score is None else float(score),
            tuple((int(x), int(y)) for x, y in item["landmarks"]),
            # Records written before alignment points were kept have none: ().
            tuple((float(x), float(y)) for x, y in item.get("alignment_points", ())),
        )
        return cls(
            item["face_id"], face, QualityReport(item["measures"], tuple(item["flags"])), item["drawn"]
        )

    def put(self, store: BiometricStore, record_id: str, owner: str) -> None:
        store.put(record_id, RecordKind.ANALYSIS, self.to_bytes(), owner=owner)


def load_analysis(store: BiometricStore, record_id: str) -> FaceAnalysis:
    return FaceAnalysis.from_bytes(store.get(record_id))


def face_crop(image: np.ndarray, box: FaceBox, *, margin: float = 0.3) -> np.ndarray:
    """The face with a margin around it, clipped to the image: what a thumbnail shows."""
    height, width = image.shape[:2]
    pad_x, pad_y = round(box.width * margin), round(box.height * margin)
    left, top = max(0, box.left - pad_x), max(0, box.top - pad_y)
    right, bottom = min(width, box.right + 1 + pad_x), min(height, box.bottom + 1 + pad_y)
    if right <= left or bottom <= top:
        raise ValueError("the face box lies outside the image")
    return np.ascontiguousarray(image[top:bottom, left:right])


def distances(probes: np.ndarray, gallery: np.ndarray, metric: str) -> np.ndarray:
    """Exact distances, shape (len(probes), len(gallery)), in the embedder's metric."""
    probes = np.asarray(probes, dtype=np.float64)
    gallery = np.asarray(gallery, dtype=np.float64)
    if metric == "euclidean":
        diff = probes[:, None, :] - gallery[None, :, :]
        return np.sqrt(np.einsum("pgd,pgd->pg", diff, diff))
    if metric == "cosine":
        p = probes / np.linalg.norm(probes, axis=1, keepdims=True)
        g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
        return np.clip(1.0 - p @ g.T, 0.0, 2.0)
    raise ValueError(f"unknown metric {metric!r}")
