"""OpenCV Zoo's YuNet (2023mar, int8) as a ``FaceDetector``, run with onnxruntime.

The graph is the store's ``yunet_2023mar.onnx`` (rfr.infrastructure.opencv_zoo); the canvas and
the decoding are OpenCV's ``FaceDetectorYN`` (yunet_decoding.py): images cross the port as RGB
and are turned to BGR here, larger ones are shrunk to fit 640x640, smaller ones only padded.

Landmarks. The port's 5 landmarks are dlib's: the two corners of the eye on the image's right,
the two corners of the eye on the image's left, and a point below the nose. YuNet finds other
points: the two eye centres, the nose tip and the two mouth corners. Nothing here pretends to
know eye corners; the port's landmarks are filled as
  0, 1 -> the centre of the eye on the image's right (YuNet's "left eye"), twice;
  2, 3 -> the centre of the eye on the image's left (YuNet's "right eye"), twice;
  4    -> the nose tip (dlib's point 4 lies a little lower, below the nose),
so whatever reads the port's landmarks as dlib's (the quality measures take each eye as the
mean of its two points, and the yaw from point 4) gets the eye centres exactly and the nose a
few pixels higher. The mouth corners have no slot: the five YuNet points, in float image
coordinates and the ArcFace template's order, travel as the port's ``DetectedFace.alignment_points``,
which the 112 px ArcFace aligner needs (rfr/adapters/alignment/arcface_112.py). A
``DetectedFace`` rebuilt from the port's landmarks alone has lost them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rfr.adapters.detection.yunet_decoding import (
    NMS_THRESHOLD,
    TOP_K,
    YunetFaces,
    canvas_for,
    decode,
)
from rfr.adapters.onnx_session import cpu_session
from rfr.application.ports import DetectedFace, FaceBox

ALGORITHM_ID = "opencv-zoo-yunet-2023mar-int8bq/canvas640"
# The score from which a detection is a face, measured on the shared LFW photos (ADR 0022):
# OpenCV's 0.9 missed the subject's face in 2 of 552 (lowest subject score 0.881, and 218 of them
# once shrunk to 0.4); every detection scoring 0.73 or more there and in the other shared photos
# was a human face but one dog's face (0.858), while arms, ears and the backs of heads scored up
# to 0.715. Changing it changes which faces are found, never a face's template, so it is not part
# of ALGORITHM_ID. OpenCV's own default stays yunet_decoding.SCORE_THRESHOLD (the parity tests).
DEFAULT_SCORE_THRESHOLD = 0.75
_HEADS = tuple(f"{head}_{stride}" for head in ("cls", "obj", "bbox", "kps") for stride in (8, 16, 32))


def _round(value: float) -> int:
    return int(np.floor(value + 0.5))


def faces_in_image(found: YunetFaces, scale: float) -> list[DetectedFace]:
    """Canvas-coordinate faces as the port's faces in the image's pixels."""
    faces = []
    for box, points, score in zip(found.boxes, found.landmarks, found.scores, strict=True):
        x, y, width, height = (float(v) / scale for v in box)
        image_points = [(float(px) / scale, float(py) / scale) for px, py in points]
        left, top = _round(x), _round(y)
        right = max(left, _round(x + width) - 1)  # inclusive, as the port's boxes are
        bottom = max(top, _round(y + height) - 1)
        # YuNet's order is the subject's right eye first, i.e. the eye on the image's left.
        image_left_eye, image_right_eye, nose = image_points[0], image_points[1], image_points[2]
        slots = (image_right_eye, image_right_eye, image_left_eye, image_left_eye, nose)
        faces.append(
            DetectedFace(
                box=FaceBox(left, top, right, bottom),
                score=float(score),
                landmarks=tuple((_round(px), _round(py)) for px, py in slots),
                alignment_points=tuple(image_points),
            )
        )
    return faces


class YunetFaceDetector:
    """``FaceDetector`` over the rebuilt YuNet graph. ``score_threshold``, ``nms_threshold`` and
    ``top_k`` are ``FaceDetectorYN``'s; the NMS threshold and top_k keep its defaults, the score
    threshold is ours (``DEFAULT_SCORE_THRESHOLD``, 0.75 where OpenCV has 0.9: YuNet's scores of
    LFW's faces sit near 0.9, ADR 0022)."""

    algorithm_id = ALGORITHM_ID

    def __init__(
        self,
        model_path: Path,
        threads: int = 2,
        *,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        nms_threshold: float = NMS_THRESHOLD,
        top_k: int = TOP_K,
    ) -> None:
        if not 0.0 <= score_threshold <= 1.0 or not 0.0 <= nms_threshold <= 1.0 or top_k < 1:
            raise ValueError("thresholds must lie within [0, 1] and top_k be at least 1")
        self._session = cpu_session(model_path, threads)
        outputs = tuple(o.name for o in self._session.get_outputs())
        if sorted(outputs) != sorted(_HEADS):
            raise ValueError(f"{model_path} has outputs {outputs}, not YuNet 2023mar's heads")
        self._outputs = list(outputs)
        self._input = self._session.get_inputs()[0].name
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape[2:] != (3,):
            raise ValueError("an image must be an RGB uint8 array of shape (H, W, 3)")
        if image.shape[0] == 0 or image.shape[1] == 0:
            return []
        canvas = canvas_for(np.ascontiguousarray(image[:, :, ::-1]))  # YuNet takes BGR
        arrays = self._session.run(self._outputs, {self._input: canvas.blob})
        heads = dict(zip(self._outputs, arrays, strict=True))
        found = decode(
            heads, score_threshold=self.score_threshold, nms_threshold=self.nms_threshold, top_k=self.top_k
        )
        return list(faces_in_image(found, canvas.scale))
