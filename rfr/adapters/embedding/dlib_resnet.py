"""dlib's 128-d face descriptor, run with onnxruntime on a graph converted by rfr.

Its output equals dlib's ``compute_face_descriptor`` on the same chip (within about 1e-6), so it
is returned raw, unnormalised, and compared with Euclidean distance at dlib's threshold of 0.6.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rfr.adapters.onnx_session import cpu_session

# Written by rfr.infrastructure.dlib.resnet into the model (its META_* names). Not imported from
# there: that module loads the onnx converter, which a service that only runs models never needs.
_META_MEAN_RGB = "rfr.input.mean_rgb"
_META_DIVISOR = "rfr.input.divisor"
_META_CHIP_SIZE = "rfr.input.chip_size"


class DlibResnetEmbedder:
    """``FaceEmbedder`` over dlib's ResNet: RGB uint8 chips of 150x150 in, float32 (n, 128) out."""

    algorithm_id = "dlib-resnet-v1/chip150-pad0.25"
    dimension = 128
    metric = "euclidean"
    threshold = 0.6
    chip_size = 150
    # Larger runs gain nothing on CPU (measured: 4.0 ms/chip at 32) and cost memory.
    batch_size = 32

    def __init__(self, model_path: Path, threads: int = 2) -> None:
        self._session = cpu_session(model_path, threads)
        meta = self._session.get_modelmeta().custom_metadata_map
        missing = {_META_MEAN_RGB, _META_DIVISOR, _META_CHIP_SIZE} - meta.keys()
        if missing:
            raise ValueError(
                f"{model_path} lacks the input metadata {sorted(missing)}: not a converted dlib ResNet"
            )
        if int(meta[_META_CHIP_SIZE]) != self.chip_size:
            raise ValueError(f"{model_path} expects {meta[_META_CHIP_SIZE]} px chips, not {self.chip_size}")
        self._mean = np.asarray([float(v) for v in meta[_META_MEAN_RGB].split(",")], dtype=np.float32)
        self._divisor = np.float32(float(meta[_META_DIVISOR]))
        (model_input,) = self._session.get_inputs()
        (model_output,) = self._session.get_outputs()
        self._input_name, self._output_name = model_input.name, model_output.name
        if model_output.shape[-1] != self.dimension:
            raise ValueError(f"{model_path} outputs {model_output.shape}, not {self.dimension}-d vectors")

    def _check(self, chips: Sequence[np.ndarray]) -> None:
        want = (self.chip_size, self.chip_size, 3)
        for index, chip in enumerate(chips):
            if not isinstance(chip, np.ndarray):
                raise ValueError(f"chip {index} is a {type(chip).__name__}, not a numpy array")
            if chip.shape != want or chip.dtype != np.uint8:
                raise ValueError(
                    f"chip {index} has shape {chip.shape} and dtype {chip.dtype}; "
                    f"expected {want} uint8 RGB (an aligned {self.chip_size}px face chip)"
                )

    def _to_tensor(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        # dlib: (pixel - channel mean) / 256 in float32, RGB, planar.
        pixels = np.stack(chips).astype(np.float32)
        pixels -= self._mean
        pixels /= self._divisor
        return np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))

    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        self._check(chips)
        if len(chips) == 0:
            return np.empty((0, self.dimension), dtype=np.float32)
        parts = [
            self._session.run(
                [self._output_name], {self._input_name: self._to_tensor(chips[i : i + self.batch_size])}
            )[0]
            for i in range(0, len(chips), self.batch_size)
        ]
        return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
