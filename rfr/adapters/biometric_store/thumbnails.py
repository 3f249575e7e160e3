"""JPEG thumbnails of face crops, the only images the services hand out."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

THUMBNAIL_SIDE = 256
JPEG_QUALITY = 88


def encode_jpeg(image: np.ndarray, *, max_side: int = THUMBNAIL_SIDE, quality: int = JPEG_QUALITY) -> bytes:
    """An RGB uint8 array as JPEG bytes, shrunk to fit ``max_side``, without EXIF or other metadata."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or 0 in image.shape:
        raise ValueError(f"expected a non-empty RGB uint8 image, got {image.shape} {image.dtype}")
    picture = Image.fromarray(image, "RGB")
    picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=quality)
    return out.getvalue()
