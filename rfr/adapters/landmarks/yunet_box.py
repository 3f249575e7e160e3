"""Landmarks for a box drawn by the user (P-11) when the algorithm is YuNet + SFace.

dlib's shape predictor places 5 points inside any box it is given; SFace's ArcFace chip needs
YuNet's points (eye centres, nose tip, mouth corners), which only YuNet's detector finds. So
for a drawn box this locator runs the YuNet detector on a crop of the image around the box
(the box widened by ``padding`` of its width and height on every side, clipped to the image:
YuNet needs the face's surroundings, and a box drawn tight would cut them off), maps the faces
found there back to image pixels and takes the one the user meant:

- only faces whose box centre lies inside the drawn box count (a neighbour's face in the
  padding is not the drawn face);
- of those, the one whose box overlaps the drawn box most (intersection over union).

If none counts, ``NoFaceInBox`` is raised: the face cannot be aligned, and templating it on a
guess would make a template of something that is not the face the user drew. The crop is only
padded to YuNet's canvas, never enlarged (rfr/adapters/detection/yunet_decoding.py), so a
drawn face needs roughly YuNet's own minimum size (about 10 px).

The detector given here is usually built with a lower score threshold than the one that
scans whole images (``YunetFaceDetector(..., score_threshold=0.5)`` in the composition root):
the user's box is strong evidence that a face is there, which is why they drew it.
"""

from __future__ import annotations

import numpy as np

from rfr.application.errors import NoFaceInBox
from rfr.application.ports import AlignmentPoint, DetectedFace, FaceBox, FaceDetector, Point

DEFAULT_PADDING = 0.5


def iou(a: FaceBox, b: FaceBox) -> float:
    """Intersection over union of two inclusive boxes."""
    width = min(a.right, b.right) - max(a.left, b.left) + 1
    height = min(a.bottom, b.bottom) - max(a.top, b.top) + 1
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a.width * a.height + b.width * b.height - inter)


def _centre_inside(face: FaceBox, box: FaceBox) -> bool:
    cx, cy = (face.left + face.right) / 2.0, (face.top + face.bottom) / 2.0
    return box.left <= cx <= box.right and box.top <= cy <= box.bottom


def _shifted(face: DetectedFace, dx: int, dy: int) -> DetectedFace:
    b = face.box
    return DetectedFace(
        box=FaceBox(b.left + dx, b.top + dy, b.right + dx, b.bottom + dy),
        score=face.score,
        landmarks=tuple((x + dx, y + dy) for x, y in face.landmarks),
        alignment_points=tuple((x + dx, y + dy) for x, y in face.alignment_points),
    )


class YunetBoxLocator:
    """``LandmarkLocator`` and ``AlignmentPointLocator`` over a YuNet detector (module notes)."""

    def __init__(self, detector: FaceDetector, *, padding: float = DEFAULT_PADDING) -> None:
        if not 0.0 <= padding <= 2.0:
            raise ValueError("padding must lie within [0, 2] (a share of the box's width and height)")
        self._detector = detector
        self.padding = padding
        # What shapes a drawn face's points: the detector, its threshold and the padding (T-01).
        threshold = getattr(detector, "score_threshold", None)
        scored = "" if threshold is None else f"/score{threshold:g}"
        self.algorithm_id = f"{detector.algorithm_id}/in-drawn-box/pad{padding:g}{scored}"

    def find(self, image: np.ndarray, box: FaceBox) -> DetectedFace:
        """The detector's face the user drew ``box`` around, in image pixels, or ``NoFaceInBox``."""
        height, width = image.shape[:2]
        pad_x, pad_y = round(box.width * self.padding), round(box.height * self.padding)
        left, top = max(0, box.left - pad_x), max(0, box.top - pad_y)
        right, bottom = min(width, box.right + 1 + pad_x), min(height, box.bottom + 1 + pad_y)
        if right <= left or bottom <= top:
            raise NoFaceInBox("the drawn box lies outside the image")
        crop = np.ascontiguousarray(image[top:bottom, left:right])
        found = [_shifted(face, left, top) for face in self._detector.detect(crop)]
        inside = [face for face in found if _centre_inside(face.box, box)]
        if not inside:
            raise NoFaceInBox(
                "no face was found inside the drawn box, so it cannot be aligned and templated "
                "with this algorithm; draw the box around one whole face"
            )
        return max(inside, key=lambda face: iou(face.box, box))

    def locate(self, image: np.ndarray, box: FaceBox) -> tuple[Point, ...]:
        return self.find(image, box).landmarks

    def locate_face(
        self, image: np.ndarray, box: FaceBox
    ) -> tuple[tuple[Point, ...], tuple[AlignmentPoint, ...]]:
        face = self.find(image, box)
        return face.landmarks, face.alignment_points
