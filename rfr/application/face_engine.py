"""The biometric process of policy 1.10 as one service: detect -> select -> template.

Privacy by design (P-11): ``detect`` makes no templates; ``template`` is called only with the
faces a user selected (or a box the user drew), so unselected faces are never templated.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence

import attrs
import numpy as np

from rfr.application.ports import (
    AlignmentPointLocator,
    DetectedFace,
    FaceAligner,
    FaceBox,
    FaceDetector,
    FaceEmbedder,
    LandmarkLocator,
    QualityAssessor,
    QualityReport,
)


@attrs.frozen
class AnalysedFace:
    """A detected face and its quality assessment (P-10): what a user chooses from."""

    face: DetectedFace
    quality: QualityReport


class FaceEngine:
    """Composes the ports; knows no model, runtime or file."""

    def __init__(
        self,
        detector: FaceDetector,
        landmarks: LandmarkLocator,
        aligner: FaceAligner,
        embedder: FaceEmbedder,
        quality: QualityAssessor,
    ) -> None:
        if aligner.size != embedder.chip_size:
            raise ValueError(
                f"aligner makes {aligner.size}px chips but the embedder takes {embedder.chip_size}px"
            )
        self.detector = detector
        self.landmarks = landmarks
        self.aligner = aligner
        self.embedder = embedder
        self.quality = quality

    @property
    def algorithm_id(self) -> str:
        """Every stage that shapes a template, with versions (T-01)."""
        return "|".join(
            (
                self.detector.algorithm_id,
                self.landmarks.algorithm_id,
                self.aligner.algorithm_id,
                self.embedder.algorithm_id,
            )
        )

    def detect(self, image: np.ndarray) -> list[AnalysedFace]:
        return [AnalysedFace(face, self.quality.assess(image, face)) for face in self.detector.detect(image)]

    def face_from_box(self, image: np.ndarray, box: FaceBox) -> AnalysedFace:
        """A face the user drew because none was detected (P-11); it has no detector score.

        The box is kept as drawn; its landmarks (and, from a locator that offers them, the
        aligner's points) come from the landmark locator. A ValueError means the box cannot
        be used: it leaves the image, or the algorithm finds no face in it (NoFaceInBox).
        """
        height, width = image.shape[:2]
        if box.right < box.left or box.bottom < box.top:
            raise ValueError("a drawn box needs right >= left and bottom >= top")
        if box.right < 0 or box.bottom < 0 or box.left >= width or box.top >= height:
            raise ValueError("a drawn box must overlap the image")
        if isinstance(self.landmarks, AlignmentPointLocator):
            # The aligner needs the algorithm's own points (SFace's ArcFace chip); the locator
            # finds them or refuses the box (NoFaceInBox, a ValueError).
            landmarks, points = self.landmarks.locate_face(image, box)
            face = DetectedFace(box=box, score=math.nan, landmarks=landmarks, alignment_points=points)
        else:
            face = DetectedFace(box=box, score=math.nan, landmarks=self.landmarks.locate(image, box))
        return AnalysedFace(face, self.quality.assess(image, face))

    def template(self, image: np.ndarray, faces: Sequence[DetectedFace]) -> np.ndarray:
        """Templates of exactly the given faces, one row each, in one batch."""
        if not faces:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        chips = [self.aligner.align(image, self._with_alignment_points(image, face)) for face in faces]
        return self.embedder.embed(chips)

    def template_located(self, image: np.ndarray, faces: Sequence[DetectedFace]) -> np.ndarray:
        """Templates of faces another algorithm found (re-templating, T-02; a probe searched
        against a library of another algorithm): only their boxes are taken, and this algorithm
        finds its own landmarks (and aligner's points) in each, as for a drawn box, since one
        algorithm's points are not what another's aligner expects. ``NoFaceInBox`` when this
        algorithm finds no face in a box."""
        return self.template(image, [self._located(image, face) for face in faces])

    def _located(self, image: np.ndarray, face: DetectedFace) -> DetectedFace:
        if isinstance(self.landmarks, AlignmentPointLocator):
            landmarks, points = self.landmarks.locate_face(image, face.box)
            return attrs.evolve(face, landmarks=landmarks, alignment_points=points)
        return attrs.evolve(face, landmarks=self.landmarks.locate(image, face.box), alignment_points=())

    def _with_alignment_points(self, image: np.ndarray, face: DetectedFace) -> DetectedFace:
        """``face``, with the aligner's points found in its box when it has none but this
        algorithm's locator offers them: a face another algorithm's detector found (a probe
        detected before the deployment changed algorithm, ADR 0018). As for a drawn box,
        ``NoFaceInBox`` when this algorithm finds no face there."""
        if face.alignment_points or not isinstance(self.landmarks, AlignmentPointLocator):
            return face
        _, points = self.landmarks.locate_face(image, face.box)
        return attrs.evolve(face, alignment_points=points)


class UnknownAlgorithm(LookupError):
    """An algorithm this deployment cannot build (by name or id)."""


class FaceEngines:
    """The engines a deployment can template with (T-01, T-02): its default, and any other it can
    build by name, each built once, when first needed (its models take memory and time to load).

    ``build``: name -> engine, for the ``names`` the deployment knows (``Settings.algorithm_names``);
    ``default_name``: the default's name among them.
    """

    def __init__(
        self,
        default: FaceEngine,
        *,
        default_name: str = "default",
        names: Sequence[str] = (),
        build: Callable[[str], FaceEngine] | None = None,
    ) -> None:
        self.default = default
        self.default_name = default_name
        self.names = tuple(dict.fromkeys((default_name, *names)))
        self._build = build
        # Not seeded with the default: a caller may pass an engine that is not the named one's
        # (tests); the builder caches, so the configured default is not loaded twice.
        self._by_name: dict[str, FaceEngine] = {}
        self._lock = threading.Lock()

    def named(self, name: str) -> FaceEngine:
        with self._lock:
            if name not in self._by_name:
                if self._build is None and name == self.default_name:
                    return self.default
                if name not in self.names or self._build is None:
                    known = list(self.names)
                    raise UnknownAlgorithm(f"no algorithm named {name!r}; this deployment has {known}")
                self._by_name[name] = self._build(name)
            return self._by_name[name]

    def name_of(self, algorithm_id: str) -> str:
        """The name of the algorithm whose engine has ``algorithm_id``; builds engines to find it."""
        for name in self.names:
            if self.named(name).algorithm_id == algorithm_id:
                return name
        raise UnknownAlgorithm(f"this deployment cannot build the algorithm {algorithm_id}")

    def for_algorithm(self, algorithm_id: str) -> FaceEngine:
        if algorithm_id == self.default.algorithm_id:
            return self.default
        return self.named(self.name_of(algorithm_id))


def face_nearest_centre(faces: Sequence[DetectedFace], width: int, height: int) -> int:
    """Index of the face whose box centre is nearest the image centre (evaluation protocol)."""
    if not faces:
        raise ValueError("no faces")
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0

    def distance(face: DetectedFace) -> float:
        bx = (face.box.left + face.box.right) / 2.0
        by = (face.box.top + face.box.bottom) / 2.0
        return (bx - cx) ** 2 + (by - cy) ** 2

    return min(range(len(faces)), key=lambda i: distance(faces[i]))
