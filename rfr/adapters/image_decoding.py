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
  same code [too_many_pixels]; a zero-sized image [bad_shape]. The header's size is what
  each format decodes to (PNG's IHDR, JPEG's frame header, WebP's canvas; an APNG or
  animated WebP frame lies within it, an MPO's first picture is the one decoded), so the
  check bounds every accepted format. A WebP's size is read by this module, before Pillow
  opens it: libwebp reserves the canvas when the file is opened;
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

import contextlib
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
# Pixels converted to RGB at a time (see _to_rgb).
_STRIP_PIXELS = 1 << 20


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
    _check_pixels(width, height, max_pixels)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageRejected(
            f"the image is {width}x{height} pixels, more than the {max_pixels} allowed", "too_many_pixels"
        )


def _webp_canvas(data: bytes) -> tuple[int, int] | None:
    """The (width, height) a WebP file's first chunk declares, or None if it is not WebP.

    Pillow opens a WebP with libwebp's animation decoder, which reserves the whole canvas (two
    RGBA copies) when it is created, so this is read and checked before Pillow sees the file.
    """
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":  # extended format: 24-bit canvas width - 1 and height - 1
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # lossy key frame: 14-bit sizes
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:  # lossless: 14-bit width - 1, height - 1
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _orient(image: Image.Image) -> None:
    # In place: the usual image, with no orientation to apply, costs no copy; one that turns
    # holds its pixels twice only while it turns. Unreadable EXIF: keep the pixels as stored
    # rather than lose the image.
    with contextlib.suppress(Exception):
        ImageOps.exif_transpose(image, in_place=True)


def _to_rgb(image: Image.Image) -> np.ndarray:
    """The RGB array, filled a strip of rows at a time.

    Converting the whole image at once would hold it several times over (Pillow keeps RGB and
    RGBA at 4 bytes a pixel, compositing makes three such images, 16-bit samples widened to
    int64 take 8): 750 MiB for a 36 Mpx RGBA PNG. A strip at a time, the cost is the loaded
    image plus the 3 bytes a pixel of the result; every conversion here is pixel by pixel, so
    the result is the same.
    """
    width, height = image.size
    has_alpha = "A" in image.getbands() or "a" in image.getbands() or "transparency" in image.info
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    rows = max(1, _STRIP_PIXELS // width)
    for top in range(0, height, rows):
        bottom = min(top + rows, height)
        strip = image if rows >= height else image.crop((0, top, width, bottom))
        pixels[top:bottom] = _strip_to_rgb(strip, has_alpha)
    return pixels


def _strip_to_rgb(image: Image.Image, has_alpha: bool) -> np.ndarray:
    if image.mode in _SIXTEEN_BIT_MODES:
        samples = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
        grey = ((samples * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if has_alpha:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


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
    declared = _webp_canvas(data)
    if declared is not None:
        _check_pixels(*declared, max_pixels)
    image = _open(data)
    try:
        if image.format not in _DECODED_FORMATS:
            raise ImageRejected(f"{image.format} images are not accepted", "unsupported_type")
        _check_size(image, max_pixels)
        try:
            image.load()
            if apply_exif_orientation:
                _orient(image)
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
