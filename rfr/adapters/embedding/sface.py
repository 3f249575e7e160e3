"""OpenCV Zoo's SFace (2021dec, int8) as a ``FaceEmbedder``, run with onnxruntime, batched.

The graph is the store's ``sface_2021dec.onnx`` (rfr.infrastructure.opencv_zoo), whose batch
axis is free. It takes 112x112 ArcFace chips (rfr/adapters/alignment/arcface_112.py) as RGB
0-255 floats, as OpenCV's ``FaceRecognizerSF::feature`` feeds it (``blobFromImage`` with
``swapRB``), and subtracts 127.5 and scales by 1/128 itself. Its 128 values are returned
L2-normalised: SFace compares by cosine, which normalising does not change.

The threshold is OpenCV Zoo's published cosine similarity of 0.363 for SFace, as a distance
(1 - 0.363); calibrating it per deployment is issue 11's part 4.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rfr.adapters.onnx_session import cpu_session

ALGORITHM_ID = "opencv-zoo-sface-2021dec-int8bq/arcface112"


class SFaceEmbedder:
    """``FaceEmbedder``: RGB uint8 chips of 112x112 in, L2-normalised float32 (n, 128) out."""

    algorithm_id = ALGORITHM_ID
    dimension = 128
    metric = "cosine"
    threshold = 1.0 - 0.363
    chip_size = 112
    batch_size = 32

    def __init__(self, model_path: Path, threads: int = 2) -> None:
        self._session = cpu_session(model_path, threads)
        (model_input,) = self._session.get_inputs()
        (model_output,) = self._session.get_outputs()
        if list(model_input.shape[1:]) != [3, self.chip_size, self.chip_size] or isinstance(
            model_input.shape[0], int
        ):
            raise ValueError(f"{model_path} takes {model_input.shape}, not a batch of 3x112x112 chips")
        if model_output.shape[-1] != self.dimension:
            raise ValueError(f"{model_path} outputs {model_output.shape}, not {self.dimension}-d features")
        self._input_name, self._output_name = model_input.name, model_output.name

    def _check(self, chips: Sequence[np.ndarray]) -> None:
        want = (self.chip_size, self.chip_size, 3)
        for index, chip in enumerate(chips):
            if not isinstance(chip, np.ndarray) or chip.shape != want or chip.dtype != np.uint8:
                raise ValueError(
                    f"chip {index} is not a {want} uint8 RGB array (an aligned 112 px ArcFace chip)"
                )

    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        self._check(chips)
        if len(chips) == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        parts = []
        for start in range(0, len(chips), self.batch_size):
            batch = np.stack(chips[start : start + self.batch_size]).transpose(0, 3, 1, 2)
            tensor = np.ascontiguousarray(batch, dtype=np.float32)
            parts.append(self._session.run([self._output_name], {self._input_name: tensor})[0])
        raw = np.concatenate(parts).astype(np.float64)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        if not (np.isfinite(norms).all() and (norms > 0).all()):
            raise RuntimeError("SFace produced a zero or non-finite feature")
        return np.ascontiguousarray(raw / norms, dtype=np.float32)
