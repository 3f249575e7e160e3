"""dlib's CNN (MMOD) face detector on onnxruntime: the default ``FaceDetector``.

It reproduces ``dlib.cnn_face_detection_model_v1(path)(image, upsample)`` exactly (same boxes,
same order, scores within float rounding): optional pyramid_up steps, the tiled pyramid
canvas, the network converted by ``rfr.infrastructure.dlib.mmod``, decoding, NMS and the map
back to the original image. Landmarks come from the injected ``LandmarkLocator``.

The detector window is 80x80 px and the pyramid only shrinks the image, so without
upsampling the smallest faces found are about 80 px wide; one upsampling step (the automatic
choice for images whose longer side is at most 400 px, as the reference does) takes that down
to about 40 px, at roughly four times the cost.

Bounded cost (``max_pixels``, set by the composition root from ``RFR_DETECTION_MAX_PIXELS``,
default ``DEFAULT_DETECTION_MAX_PIXELS`` = 2048 x 2048 = 4194304): the network's time and
memory grow with the area it is given (about 165 bytes and 0.6 us of CPU per pixel; a 36 Mpx
image took 6 GiB and 40 s), so the detector works on at most ``max_pixels`` pixels, counted
AFTER the upsampling. An image that fits, upsampled as chosen, is detected exactly as dlib
does. One that does not is not upsampled at all: a copy resized (OpenCV, area averaging when
shrinking) to the largest size within ``max_pixels`` with the same aspect ratio is detected,
so the smallest face found is about 80 px times the scale lost (an 8000x6000 photo is seen at
2364x1773: faces from about 270 px). The boxes are mapped back to the image's own pixel
grid, and the landmarks are then located on the ORIGINAL image, so every later step
(alignment from the full-quality pixels, quality measures, thumbnails) is unchanged.
``max_pixels=None`` (the constructor's default) detects at any size, as dlib does.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np

from rfr.adapters.detection.mmod_decoding import DecodingSpec, Detection, decode, map_down
from rfr.adapters.detection.pyramid import TiledPyramid, build_canvas, pyramid_up, pyramid_up_size
from rfr.adapters.onnx_session import cpu_session
from rfr.application.ports import DetectedFace, FaceBox, LandmarkLocator

# Written by rfr.infrastructure.dlib.mmod.build_mmod_onnx into the model's metadata.
_METADATA_KEY = "dlib_mmod"
AUTO_UPSAMPLE_MAX_SIDE = 400
# The default bound on the pixels the network is given (see the module notes): about 0.7 GiB
# of memory and 2.5 s of CPU; every reference image up to 4 Mpx is detected exactly.
DEFAULT_DETECTION_MAX_PIXELS = 2048 * 2048


class MmodFaceDetector:
    """``FaceDetector`` over the ONNX form of ``mmod_human_face_detector.dat``.

    ``upsample``: how many pyramid_up steps to take before detecting; None chooses per image
    (1 when the longer side is at most 400 px, else 0). ``threads``: onnxruntime intra-op
    threads. ``max_pixels``: the most pixels the network is given, upsampling included; a
    larger image is detected on a resized copy (module notes); None: no bound.
    """

    def __init__(
        self,
        model_path: Path,
        landmarks: LandmarkLocator,
        upsample: int | None = None,
        threads: int = 2,
        max_pixels: int | None = None,
    ) -> None:
        if upsample is not None and upsample < 0:
            raise ValueError(f"upsample must be None or >= 0, not {upsample}")
        if max_pixels is not None and max_pixels < 1:
            raise ValueError(f"max_pixels must be None or >= 1, not {max_pixels}")
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
        self.max_pixels = max_pixels
        self.algorithm_id = metadata.get("model_version", "dlib-mmod-v1")

    def upsample_for(self, image: np.ndarray) -> int:
        return self._upsample_for_size(image.shape[0], image.shape[1])

    def _upsample_for_size(self, rows: int, cols: int) -> int:
        if self.upsample is not None:
            return self.upsample
        return 1 if max(rows, cols) <= AUTO_UPSAMPLE_MAX_SIDE else 0

    def working_size(self, rows: int, cols: int) -> tuple[int, int] | None:
        """The (rows, cols) of the resized copy an image of ``rows`` x ``cols`` is detected on,
        or None when it is detected as it is (it fits ``max_pixels`` once upsampled)."""
        if self.max_pixels is None or rows * cols == 0:
            return None
        up_rows, up_cols = rows, cols
        for _ in range(self._upsample_for_size(rows, cols)):
            up_rows, up_cols = pyramid_up_size(up_rows, up_cols)
        if up_rows * up_cols <= self.max_pixels:
            return None
        scale = math.sqrt(self.max_pixels / (rows * cols))
        work_rows, work_cols = max(1, math.floor(rows * scale)), max(1, math.floor(cols * scale))
        while work_rows * work_cols > self.max_pixels:  # rounding of the square root
            if work_rows >= work_cols:
                work_rows -= 1
            else:
                work_cols -= 1
        return (work_rows, work_cols)

    def find_boxes(self, image: np.ndarray) -> list[tuple[FaceBox, float]]:
        """The detections ``detect`` reports (box in the image's coordinates, confidence),
        within the ``max_pixels`` bound, without landmarks."""
        rgb = as_rgb(image)
        rows, cols = rgb.shape[:2]
        work = self.working_size(rows, cols)
        if work is None:
            return self.detect_boxes(rgb, self.upsample_for(rgb))
        work_rows, work_cols = work
        shrinking = work_rows * work_cols < rows * cols
        resized = cv2.resize(
            np.ascontiguousarray(rgb),
            (work_cols, work_rows),
            interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
        )
        found = self.detect_boxes(resized, 0)
        return [(scale_box(box, cols / work_cols, rows / work_rows), score) for box, score in found]

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        rgb = as_rgb(image)
        found = self.find_boxes(rgb)
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
        """dlib's detections (box, confidence) in dlib's order, without landmarks, at any size
        (``max_pixels`` does not apply)."""
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


def scale_box(box: FaceBox, x_scale: float, y_scale: float) -> FaceBox:
    """A box found on a resized copy, in the pixel grid of the image ``x_scale`` / ``y_scale``
    times its size: pixel ``i`` of the copy covers ``[i, i + 1) * scale`` there, so the edges
    are scaled, then rounded to whole pixels (inclusive bounds, as dlib's)."""

    def edge(value: float) -> int:
        return math.floor(value + 0.5)

    return FaceBox(
        edge(box.left * x_scale),
        edge(box.top * y_scale),
        edge((box.right + 1) * x_scale) - 1,
        edge((box.bottom + 1) * y_scale) - 1,
    )
