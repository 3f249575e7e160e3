"""The 112x112 ArcFace chip: a similarity transform of 5 landmarks onto the standard template.

SFace (and ArcFace-style embedders generally) were trained on chips cut this way: the least
squares similarity (rotation, uniform scale, translation; no reflection) taking the face's
eye centres, nose tip and mouth corners onto fixed points of a 112x112 chip (Umeyama's method,
as OpenCV's ``FaceRecognizerSF::alignCrop`` and insightface's ``norm_crop``), then a bilinear
``warpAffine`` with black outside the image. OpenCV computes the same transform in float32
with a rounded template mean; this one is float64 throughout, and the chips agree within a few
grey levels (tests/biometrics/test_opencv_zoo_parity.py).

Template order: the eye on the image's left, the eye on the image's right, nose tip, mouth
corner on the image's left, mouth corner on the image's right (the subject's right eye first,
YuNet's order).
"""

from __future__ import annotations

import cv2
import numpy as np

from rfr.application.ports import DetectedFace

SIZE = 112
ARCFACE_TEMPLATE_112 = np.asarray(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def similarity_matrix(points: np.ndarray, template: np.ndarray = ARCFACE_TEMPLATE_112) -> np.ndarray:
    """The 2x3 matrix of the least squares similarity taking ``points`` (5, 2) onto ``template``."""
    source = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    target = np.asarray(template, dtype=np.float64).reshape(-1, 2)
    if source.shape != target.shape:
        raise ValueError(f"{len(source)} points for a template of {len(target)}")
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centred, target_centred = source - source_mean, target - target_mean
    covariance = target_centred.T @ source_centred / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    signs = np.ones(2)
    if np.linalg.det(covariance) < 0:
        signs[1] = -1.0  # a reflection would fit better; a face chip must not be mirrored
    rotation = u @ np.diag(signs) @ vt
    variance = (source_centred**2).sum() / len(source)
    if variance == 0.0:
        raise ValueError("the landmarks coincide: no similarity transform")
    scale = float((singular * signs).sum() / variance)
    translation = target_mean - scale * rotation @ source_mean
    return np.concatenate([scale * rotation, translation[:, np.newaxis]], axis=1)


def warp_chip(image: np.ndarray, points: np.ndarray, size: int = SIZE) -> np.ndarray:
    """The ``size`` x ``size`` chip of ``image`` (any channel order, kept) for landmarks ``points``."""
    matrix = similarity_matrix(points, ARCFACE_TEMPLATE_112 * (size / SIZE))
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


class ArcFace112Aligner:
    """``FaceAligner`` cutting the 112 px ArcFace chip (RGB in, RGB out) for SFace.

    It needs the eye centres, the nose tip and both mouth corners, which a detector like YuNet
    gives as ``alignment_points`` on its faces (rfr/adapters/detection/yunet.py), and the YuNet
    box locator for a drawn box (rfr/adapters/landmarks/yunet_box.py). dlib's 5 points (eye
    corners and a point below the nose) have no mouth corners, so a face without 5
    ``alignment_points`` is refused rather than aligned on a guess.
    """

    algorithm_id = "arcface-5pt-112"
    size = SIZE

    def align(self, image: np.ndarray, face: DetectedFace) -> np.ndarray:
        points = face.alignment_points
        if len(points) != len(ARCFACE_TEMPLATE_112):
            raise ValueError(
                "the ArcFace chip needs the eye centres, nose tip and mouth corners (a face from "
                "the YuNet detector); dlib's 5 landmarks do not include the mouth"
            )
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape[2:] != (3,):
            raise ValueError("an image must be an RGB uint8 array of shape (H, W, 3)")
        return warp_chip(image, np.asarray(points, dtype=np.float64))
