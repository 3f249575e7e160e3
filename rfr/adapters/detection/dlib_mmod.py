"""dlib's CNN (MMOD) face detector on onnxruntime: the default ``FaceDetector``.

It reproduces ``dlib.cnn_face_detection_model_v1(path)(image, upsample)`` exactly (same boxes,
same order, scores within float rounding): optional pyramid_up steps, the tiled pyramid
canvas, the network converted by ``rfr.infrastructure.dlib.mmod``, decoding, NMS and the map
back to the original image. Landmarks come from the injected ``LandmarkLocator``.

The detector window is 80x80 px and the pyramid only shrinks the image, so without
upsampling the smallest faces found are about 80 px wide; one upsampling step (the automatic
choice for images whose longer side is at most 400 px, as the reference does) takes that down
to about 40 px, at roughly four times the cost.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rfr.adapters.detection.mmod_decoding import DecodingSpec, Detection, decode, map_down
from rfr.adapters.detection.pyramid import TiledPyramid, build_canvas, pyramid_up
from rfr.adapters.onnx_session import cpu_session
from rfr.application.ports import DetectedFace, FaceBox, LandmarkLocator

# Written by rfr.infrastructure.dlib.mmod.build_mmod_onnx into the model's metadata.
_METADATA_KEY = "dlib_mmod"
AUTO_UPSAMPLE_MAX_SIDE = 400


class MmodFaceDetector:
    """``FaceDetector`` over the ONNX form of ``mmod_human_face_detector.dat``.

    ``upsample``: how many pyramid_up steps to take before detecting; None chooses per image
    (1 when the longer side is at most 400 px, else 0). ``threads``: onnxruntime intra-op
    threads.
    """

    def __init__(
        self,
        model_path: Path,
        landmarks: LandmarkLocator,
        upsample: int | None = None,
        threads: int = 2,
    ) -> None:
        if upsample is not None and upsample < 0:
            raise ValueError(f"upsample must be None or >= 0, not {upsample}")
        self._session = cpu_session(model_path, threads)
        metadata = self._session.get_modelmeta().custom_metadata_map
        if _METADATA_KEY not in metadata:
            raise ValueError(
                f"{model_path} is not a converted dlib MMOD detector (no {_METADATA_KEY!r} metadata)"
            )
        spec = json.loads(metadata[_METADATA_KEY])
        self._mean_rgb = tuple(spec["mean_rgb"])
        self._padding = int(spec["pyramid_padding"])
        self._outer_padding = int(spec["pyramid_outer_padding"])
        self._rate = tuple(spec["pyramid_rate"])
        self._decoding = DecodingSpec(
            window=tuple(spec["window"]),
            output_scale=tuple(spec["output_scale"]),
            output_offset=tuple(spec["output_offset"]),
            pyramid_rate=self._rate,
            nms_iou=float(spec["nms_iou"]),
            nms_covered=float(spec["nms_covered"]),
        )
        self._min_input = tuple(spec["min_input"])
        self._input = self._session.get_inputs()[0].name
        self._landmarks = landmarks
        self.upsample = upsample
        self.algorithm_id = metadata.get("model_version", "dlib-mmod-v1")

    def upsample_for(self, image: np.ndarray) -> int:
        if self.upsample is not None:
            return self.upsample
        return 1 if max(image.shape[:2]) <= AUTO_UPSAMPLE_MAX_SIDE else 0

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        rgb = as_rgb(image)
        found = self.detect_boxes(rgb, self.upsample_for(rgb))
        boxes = [box for box, _ in found]
        # A locator that can take all faces of an image in one pass (the shape predictor) is
        # given them together; the port itself only promises one face at a time.
        locate_many = getattr(self._landmarks, "locate_many", None)
        if callable(locate_many) and boxes:
            landmarks = list(locate_many(rgb, boxes))
        else:
            landmarks = [self._landmarks.locate(rgb, box) for box in boxes]
        return [
            DetectedFace(box=box, score=score, landmarks=tuple(points))
            for (box, score), points in zip(found, landmarks, strict=True)
        ]

    def detect_boxes(self, image: np.ndarray, upsample: int) -> list[tuple[FaceBox, float]]:
        """dlib's detections (box, confidence) in dlib's order, without landmarks."""
        rgb = as_rgb(image)
        enlarged = rgb
        for _ in range(upsample):
            enlarged = pyramid_up(enlarged)
        found = map_down(self._detect_at_scale(enlarged), upsample)
        return [(FaceBox(d.left, d.top, d.right, d.bottom), d.score) for d in found]

    def _detect_at_scale(self, image: np.ndarray) -> list[Detection]:
        pyramid = TiledPyramid.plan(
            image.shape[0],
            image.shape[1],
            padding=self._padding,
            outer_padding=self._outer_padding,
            rate=self._rate,
        )
        if not pyramid.levels or not self._output_is_nonempty(pyramid):
            return []
        canvas = build_canvas(image, pyramid, self._mean_rgb)
        (scores,) = self._session.run(None, {self._input: canvas})
        return decode(scores[0, 0], pyramid.levels, self._decoding)

    def _output_is_nonempty(self, pyramid: TiledPyramid) -> bool:
        # A canvas smaller than the network's receptive field yields no score cell; dlib
        # then finds nothing, while onnxruntime would reject the shape.
        return pyramid.rows >= self._min_input[0] and pyramid.cols >= self._min_input[1]


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Check a detector input: uint8 (H, W, 3) RGB, or (H, W) grey copied into 3 channels."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, not {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, not {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB or (H, W) grey, not shape {image.shape}")
    return image
