"""Turning uploaded bytes into the RGB uint8 array every biometric port takes, or a clear refusal.

Uploads come from officers' phones, CCTV exports and scanners, so anything may arrive. The
rules, each raising ``ImageRejected`` with the code in brackets:

- nothing uploaded [empty];
- only JPEG (MPO, the multi-picture JPEG phones write, included), PNG and WebP are accepted;
  another image format [unsupported_type]; bytes no decoder recognises or that fail to
  decode, truncated files included [undecodable];
- the pixel count is read from the header and checked against ``max_pixels`` BEFORE any
  pixel is decoded, so a small file announcing a huge image costs nothing (a decompression
  bomb). Pillow's own ``MAX_IMAGE_PIXELS`` check stays as a second guard and maps to the
  same code [too_many_pixels]; a zero-sized image [bad_shape];
- EXIF orientation is applied (phones store portraits sideways and say so in EXIF), unless
  the caller asks not to; a broken EXIF block is ignored rather than refusing the evidence;
- grey-scale (1, L, I;16, I) and palette images are expanded to three equal channels;
  16-bit samples are scaled to 8 bits (Pillow's own conversion would clip them to white);
  CMYK and YCbCr are converted with Pillow's plain formulas (no ICC colour management);
- transparency (RGBA, LA, PA, or a palette/grey-scale transparency entry) is composited
  over WHITE. Dropping the alpha channel instead would show whatever colour the encoder left
  under transparent pixels (often black or stale data), so the result would depend on the
  tool that wrote the file; over white, a cut-out face looks like a passport photograph and
  half-transparent edges look as a viewer shows them.

Animated files (APNG, animated WebP) give their first frame.

Pillow's own warnings (``DecompressionBombWarning`` above ``MAX_IMAGE_PIXELS``, "Corrupt EXIF
data") are left to propagate: silencing them needs ``warnings.catch_warnings``, which swaps
process-wide state and is not safe in a threaded server, and every such case already ends
in a decision here (rejected, or decoded without the broken EXIF).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from rfr.application.errors import ImageRejected

DEFAULT_MAX_PIXELS = 40_000_000
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
# Pillow opens a multi-picture JPEG (phones' stereo/depth photos) as MPO; its first frame is a JPEG.
_DECODED_FORMATS = frozenset({*ACCEPTED_FORMATS, "MPO"})
_SIXTEEN_BIT_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
_WHITE = (255, 255, 255, 255)


def _open(data: bytes) -> Image.Image:
    """Open (read the header only) as one of the accepted formats."""
    try:
        return Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageRejected("the image has too many pixels", "too_many_pixels") from exc
    except UnidentifiedImageError:
        pass
    except Exception as exc:
        raise ImageRejected("the image header is damaged", "undecodable") from exc
    # Not one we accept: say whether it is another image format or not an image at all.
    try:
        with Image.open(io.BytesIO(data)) as other:
            kind = other.format
    except Exception:
        kind = None
    if kind:
        raise ImageRejected(f"{kind} images are not accepted; send JPEG, PNG or WebP", "unsupported_type")
    raise ImageRejected("the data is not a JPEG, PNG or WebP image", "undecodable")


def _check_size(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageRejected(f"the image is {width}x{height} pixels", "bad_shape")
    if width * height > max_pixels:
        raise ImageRejected(
            f"the image is {width}x{height} pixels, more than the {max_pixels} allowed", "too_many_pixels"
        )


def _orient(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        # Unreadable EXIF: keep the pixels as stored rather than lose the image.
        return image


def _to_rgb(image: Image.Image) -> np.ndarray:
    if image.mode in _SIXTEEN_BIT_MODES:
        samples = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
        grey = ((samples * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    has_alpha = "A" in image.getbands() or "a" in image.getbands() or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba)
    return np.array(image.convert("RGB"), dtype=np.uint8)


def decode_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, apply_exif_orientation: bool = True
) -> np.ndarray:
    """Decode an uploaded JPEG, PNG or WebP into a writable RGB uint8 array of shape (H, W, 3).

    Raises ``ImageRejected`` for every kind of bad input (see the module notes); any other
    exception would be a bug here, not in the upload.
    """
    if max_pixels < 1:
        raise ValueError("max_pixels must be positive")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise ImageRejected("no image data was received", "empty")
    image = _open(data)
    try:
        if image.format not in _DECODED_FORMATS:
            raise ImageRejected(f"{image.format} images are not accepted", "unsupported_type")
        _check_size(image, max_pixels)
        try:
            image.load()
            if apply_exif_orientation:
                image = _orient(image)
            pixels = _to_rgb(image)
        except ImageRejected:
            raise
        except Exception as exc:
            raise ImageRejected("the image data is damaged or incomplete", "undecodable") from exc
    finally:
        image.close()
    if pixels.ndim != 3 or pixels.shape[2] != 3 or 0 in pixels.shape:
        raise ImageRejected(f"the decoded image has shape {pixels.shape}", "bad_shape")
    return pixels
