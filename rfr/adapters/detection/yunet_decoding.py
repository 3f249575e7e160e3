"""YuNet 2023mar: from an image to its 640x640 canvas, and from the graph's heads to faces.

The rebuilt graph (rfr.infrastructure.opencv_zoo) takes a fixed 1x3x640x640 BGR canvas of 0-255
floats. An image larger than the canvas is shrunk to fit (aspect kept); a smaller one is never
enlarged (enlarging 150 px crops to 640 made YuNet miss every face, issue 11), only padded with
black on the right and at the bottom, as OpenCV's ``FaceDetectorYN`` pads to a multiple of 32.

The decoding is OpenCV's ``FaceDetectorYNImpl::postProcess`` (modules/objdetect/src/face_detect.cpp,
4.x and 5.x): for each stride S in (8, 16, 32) and each cell (row r, column c) of the
(640/S)x(640/S) grid, score = sqrt(clip(cls) * clip(obj)); the box centre is
((c + dx) * S, (r + dy) * S) and its size (exp(dw) * S, exp(dh) * S); landmark k is
((kx_k + c) * S, (ky_k + r) * S). Boxes at or above the threshold go through OpenCV's own
``NMSBoxes`` on their integer-truncated (x, y, w, h), as ``FaceDetectorYN`` does, so the kept
boxes and their order are OpenCV's.

YuNet's landmark order is its own: right eye, left eye, nose tip, right mouth corner, left mouth
corner, where "right" is the subject's right, i.e. the eye on the image's left.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import cv2
import numpy as np

CANVAS = 640
STRIDES = (8, 16, 32)
# FaceDetectorYN.create's defaults.
SCORE_THRESHOLD = 0.9
NMS_THRESHOLD = 0.3
TOP_K = 5000


@attrs.frozen(eq=False)
class Canvas:
    """The graph's input and how to map canvas coordinates back to the image (divide by ``scale``)."""

    blob: np.ndarray  # (1, 3, 640, 640) float32, BGR
    scale: float  # canvas pixels per image pixel, <= 1


def canvas_for(image_bgr: np.ndarray) -> Canvas:
    """Shrink ``image_bgr`` (H, W, 3 uint8) to fit 640x640 if needed, then pad it to 640x640."""
    height, width = image_bgr.shape[:2]
    scale = min(1.0, CANVAS / width, CANVAS / height)
    if scale < 1.0:
        size = (min(CANVAS, round(width * scale)), min(CANVAS, round(height * scale)))
        image_bgr = cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA)
    padded = np.zeros((CANVAS, CANVAS, 3), dtype=np.uint8)
    padded[: image_bgr.shape[0], : image_bgr.shape[1]] = image_bgr
    blob = padded.transpose(2, 0, 1)[np.newaxis].astype(np.float32)
    return Canvas(blob=np.ascontiguousarray(blob), scale=scale)


@attrs.frozen(eq=False)
class YunetFaces:
    """Faces in canvas coordinates, in OpenCV's order (best first after NMS)."""

    boxes: np.ndarray  # (n, 4) float32: x, y, width, height
    landmarks: np.ndarray  # (n, 5, 2) float32, YuNet's order
    scores: np.ndarray  # (n,) float32

    def __len__(self) -> int:
        return len(self.scores)

    def rows(self) -> np.ndarray:
        """The (n, 15) layout of ``FaceDetectorYN.detect``: box, 5 landmarks, score."""
        return np.concatenate(
            [self.boxes, self.landmarks.reshape(-1, 10), self.scores[:, np.newaxis]], axis=1
        ).astype(np.float32)


def decode(
    heads: Mapping[str, np.ndarray],
    *,
    score_threshold: float = SCORE_THRESHOLD,
    nms_threshold: float = NMS_THRESHOLD,
    top_k: int = TOP_K,
) -> YunetFaces:
    """``heads`` maps the graph's output names (``cls_8`` ... ``kps_32``) to their arrays."""
    boxes, landmarks, scores = [], [], []
    for stride in STRIDES:
        cells = CANVAS // stride
        cls = np.clip(heads[f"cls_{stride}"].reshape(-1), 0.0, 1.0)
        obj = np.clip(heads[f"obj_{stride}"].reshape(-1), 0.0, 1.0)
        score = np.sqrt(cls * obj)
        keep = np.flatnonzero(score >= score_threshold)
        bbox = heads[f"bbox_{stride}"].reshape(-1, 4)[keep]
        kps = heads[f"kps_{stride}"].reshape(-1, 5, 2)[keep]
        rows, cols = np.divmod(keep, cells)
        grid = np.stack([cols, rows], axis=1).astype(np.float32)
        centre = (grid + bbox[:, :2]) * stride
        size = np.exp(bbox[:, 2:]) * stride
        boxes.append(np.concatenate([centre - size / 2, size], axis=1))
        landmarks.append((kps + grid[:, np.newaxis, :]) * stride)
        scores.append(score[keep])
    all_boxes = np.concatenate(boxes).astype(np.float32)
    all_landmarks = np.concatenate(landmarks).astype(np.float32)
    all_scores = np.concatenate(scores).astype(np.float32)
    if len(all_scores) > 1:
        # OpenCV's NMS on the truncated integer boxes, as FaceDetectorYN (int() truncates to 0).
        integer_boxes = [[int(v) for v in box] for box in all_boxes.tolist()]
        kept = cv2.dnn.NMSBoxes(
            integer_boxes, all_scores.tolist(), score_threshold, nms_threshold, eta=1.0, top_k=top_k
        )
        order = np.asarray(kept, dtype=np.int64).reshape(-1)
        all_boxes, all_landmarks, all_scores = all_boxes[order], all_landmarks[order], all_scores[order]
    return YunetFaces(boxes=all_boxes, landmarks=all_landmarks, scores=all_scores)
