"""Uploaded bytes -> RGB uint8, or a clear ImageRejected; every image is generated here."""

from __future__ import annotations

import io
import pickle
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from rfr.adapters.image_decoding import decode_image
from rfr.application.errors import IMAGE_REJECTION_HTTP_STATUS, ImageRejected, RfrError

RNG = np.random.default_rng(7)
PIXELS = RNG.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def rejected(data: bytes, **kwargs) -> ImageRejected:
    with pytest.raises(ImageRejected) as caught:
        decode_image(data, **kwargs)
    assert isinstance(caught.value, RfrError)
    assert caught.value.code in IMAGE_REJECTION_HTTP_STATUS
    return caught.value


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header announces ``width`` x ``height`` grey pixels but holds almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


# ---- accepted formats ---------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "options"), [("PNG", {}), ("WEBP", {"lossless": True})])
def test_lossless_formats_decode_to_the_exact_pixels(fmt, options):
    out = decode_image(encode(Image.fromarray(PIXELS), fmt, **options))
    np.testing.assert_array_equal(out, PIXELS)
    assert out.dtype == np.uint8 and out.flags.c_contiguous and out.flags.writeable


def test_jpeg_decodes_to_rgb_close_to_the_source():
    smooth = np.repeat(np.linspace(0, 255, 30, dtype=np.uint8)[None, :, None], 20, axis=0).repeat(3, axis=2)
    out = decode_image(encode(Image.fromarray(smooth), "JPEG", quality=95))
    assert out.shape == (20, 30, 3)
    assert np.abs(out.astype(int) - smooth).mean() < 3


def test_a_multi_picture_jpeg_from_a_phone_gives_its_first_picture():
    data = encode(
        Image.fromarray(PIXELS), "MPO", save_all=True, append_images=[Image.fromarray(255 - PIXELS)]
    )
    assert Image.open(io.BytesIO(data)).format == "MPO"
    out = decode_image(data)
    assert out.shape == PIXELS.shape
    assert np.abs(out.astype(int) - PIXELS).mean() < np.abs(out.astype(int) - (255 - PIXELS)).mean()


@pytest.mark.parametrize(("fmt", "options"), [("PNG", {}), ("WEBP", {"lossless": True})])
def test_animations_give_their_first_frame(fmt, options):
    frames = [Image.fromarray(PIXELS), Image.fromarray(255 - PIXELS)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], **options)
    np.testing.assert_array_equal(decode_image(data), PIXELS)


def test_bytearray_and_memoryview_are_accepted_but_text_is_a_caller_bug():
    data = encode(Image.fromarray(PIXELS), "PNG")
    np.testing.assert_array_equal(decode_image(bytearray(data)), PIXELS)
    np.testing.assert_array_equal(decode_image(memoryview(data)), PIXELS)
    with pytest.raises(TypeError):
        decode_image(data.decode("latin-1"))  # type: ignore[arg-type]


# ---- colour modes -------------------------------------------------------------------------


def test_grey_scale_becomes_three_equal_channels():
    grey = PIXELS[:, :, 0]
    out = decode_image(encode(Image.fromarray(grey, mode="L"), "PNG"))
    np.testing.assert_array_equal(out, np.repeat(grey[:, :, None], 3, axis=2))


def test_bilevel_becomes_black_and_white():
    bits = PIXELS[:, :, 0] > 127
    out = decode_image(encode(Image.fromarray(bits), "PNG"))
    np.testing.assert_array_equal(out[:, :, 1], np.where(bits, 255, 0))


def test_sixteen_bit_grey_is_scaled_to_eight_bits_not_clipped():
    samples = np.array([[0, 257 * 100, 65535, 257 * 200 + 100]], dtype=np.uint16)
    image = Image.fromarray(samples)
    assert image.mode == "I;16"
    out = decode_image(encode(image, "PNG"))
    np.testing.assert_array_equal(out[0, :, 0], [0, 100, 255, 200])
    assert (out[0, :, 0] == out[0, :, 2]).all()


def test_palette_images_keep_their_colours():
    palette_image = Image.fromarray(PIXELS).quantize(colors=16)
    expected = np.asarray(palette_image.convert("RGB"))
    np.testing.assert_array_equal(decode_image(encode(palette_image, "PNG")), expected)


def test_rgba_is_composited_over_white():
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, 0] = (10, 20, 30, 0)  # transparent: whatever colour is stored must not show
    rgba[0, 1] = (10, 20, 30, 255)
    rgba[0, 2] = (0, 100, 200, 128)
    out = decode_image(encode(Image.fromarray(rgba, mode="RGBA"), "PNG"))
    np.testing.assert_array_equal(out[0, 0], (255, 255, 255))
    np.testing.assert_array_equal(out[0, 1], (10, 20, 30))
    blend = np.array([0, 100, 200]) * 128 / 255 + 255 * (1 - 128 / 255)
    assert np.abs(out[0, 2].astype(float) - blend).max() <= 1


def test_grey_with_alpha_is_composited_over_white():
    la = np.array([[[50, 0], [50, 255]]], dtype=np.uint8)
    out = decode_image(encode(Image.fromarray(la, mode="LA"), "PNG"))
    np.testing.assert_array_equal(out[0], [(255, 255, 255), (50, 50, 50)])


def test_a_transparent_palette_entry_shows_white():
    image = Image.new("P", (2, 1))
    image.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    out = decode_image(encode(image, "PNG", transparency=0))
    np.testing.assert_array_equal(out[0], [(255, 255, 255), (200, 10, 10)])


def test_cmyk_jpeg_is_converted_to_rgb():
    data = encode(Image.new("CMYK", (8, 8), (255, 0, 0, 0)), "JPEG", quality=95)
    out = decode_image(data)
    assert out.shape == (8, 8, 3)
    assert np.abs(out[4, 4].astype(int) - (0, 255, 255)).max() <= 3


# ---- large images are converted a strip of rows at a time, with the same result ------------

BIG = np.random.default_rng(11).integers(0, 256, size=(1300, 1000, 4), dtype=np.uint8)  # 1.3 Mpx


def test_a_large_rgba_image_is_composited_over_white_exactly_as_a_whole():
    image = Image.fromarray(BIG, mode="RGBA")
    whole = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image)
    np.testing.assert_array_equal(decode_image(encode(image, "PNG")), np.asarray(whole.convert("RGB")))


def test_a_large_transparent_palette_image_is_converted_exactly_as_a_whole():
    image = Image.fromarray(BIG[:, :, :3]).quantize(colors=64)
    data = encode(image, "PNG", transparency=3)
    with Image.open(io.BytesIO(data)) as opened:
        rgba = opened.convert("RGBA")
    whole = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    np.testing.assert_array_equal(decode_image(data), np.asarray(whole.convert("RGB")))


def test_a_large_sixteen_bit_image_is_scaled_exactly_as_a_whole():
    samples = np.random.default_rng(12).integers(0, 65536, size=(1300, 1000), dtype=np.uint16)
    out = decode_image(encode(Image.fromarray(samples), "PNG"))
    expected = ((samples.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)
    np.testing.assert_array_equal(out, np.repeat(expected[:, :, None], 3, axis=2))


@pytest.mark.parametrize("orientation", [1, 6, 7])
def test_a_large_image_is_turned_as_its_exif_says(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    rgb = BIG[:, :, :3]
    data = encode(Image.fromarray(rgb), "PNG", exif=exif)
    np.testing.assert_array_equal(decode_image(data), ORIENTED[orientation](rgb))


# ---- EXIF orientation ---------------------------------------------------------------------

ORIENTED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", sorted(ORIENTED))
def test_exif_orientation_is_applied_as_the_exif_standard_defines(orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(Image.fromarray(PIXELS), "PNG", exif=exif)
    np.testing.assert_array_equal(decode_image(data), ORIENTED[orientation](PIXELS))
    np.testing.assert_array_equal(decode_image(data, apply_exif_orientation=False), PIXELS)


def test_a_broken_exif_block_does_not_lose_the_image():
    data = encode(Image.fromarray(PIXELS), "JPEG", exif=b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\xff\xff")
    with pytest.warns(UserWarning, match="EXIF"):
        out = decode_image(data)
    assert out.shape == PIXELS.shape


# ---- refusals -----------------------------------------------------------------------------


def test_empty_upload():
    assert rejected(b"").code == "empty"


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "PPM", "ICO"])
def test_other_image_formats_are_unsupported_and_named(fmt):
    error = rejected(encode(Image.fromarray(PIXELS), fmt))
    assert error.code == "unsupported_type"
    assert fmt in error.reason
    assert IMAGE_REJECTION_HTTP_STATUS[error.code] == 415


@pytest.mark.parametrize("data", [b"not an image at all", b"\x00" * 100, b"%PDF-1.7\n" + b"x" * 50])
def test_data_that_is_no_image_is_undecodable(data):
    assert rejected(data).code == "undecodable"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("keep", [0.3, 0.8])
def test_truncated_files_are_undecodable(fmt, keep):
    data = encode(Image.fromarray(PIXELS), fmt)
    assert rejected(data[: int(len(data) * keep)]).code == "undecodable"


def test_a_png_with_damaged_pixel_data_is_undecodable():
    data = bytearray(encode(Image.fromarray(PIXELS), "PNG"))
    start = data.index(b"IDAT") + 4
    data[start + 10 : start + 30] = bytes(20)
    assert rejected(bytes(data)).code == "undecodable"


def test_more_pixels_than_allowed_is_refused_and_the_limit_itself_is_allowed():
    data = encode(Image.fromarray(PIXELS), "PNG")
    assert rejected(data, max_pixels=20 * 30 - 1).code == "too_many_pixels"
    assert decode_image(data, max_pixels=20 * 30).shape == PIXELS.shape


def test_a_decompression_bomb_is_refused_from_its_header_before_any_pixel_is_decoded():
    # 30000 x 1000 announced, 64 bytes of data: decoding would fail ("undecodable"), so the
    # "too_many_pixels" answer proves the size was checked first. Below Pillow's own limit.
    bomb = png_header_only(30_000, 1_500)
    start = time.perf_counter()
    error = rejected(bomb)
    assert time.perf_counter() - start < 0.5
    assert error.code == "too_many_pixels"
    assert "30000x1500" in error.reason
    assert IMAGE_REJECTION_HTTP_STATUS["too_many_pixels"] == 413
    assert rejected(bomb, max_pixels=50_000_000).code == "undecodable"


def jpeg_announcing(width: int, height: int) -> bytes:
    """A 16x16 JPEG whose frame header (SOF0) is rewritten to announce ``width`` x ``height``."""
    data = bytearray(encode(Image.fromarray(PIXELS[:16, :16]), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_announcing(width: int, height: int) -> bytes:
    """A WebP whose extended header (VP8X) announces a ``width`` x ``height`` canvas."""
    data = bytearray(encode(Image.fromarray(PIXELS), "WEBP", lossless=True, exif=Image.Exif()))
    assert data[12:16] == b"VP8X"  # an EXIF chunk needs the extended format
    data[24:27] = (width - 1).to_bytes(3, "little")
    data[27:30] = (height - 1).to_bytes(3, "little")
    return bytes(data)


@pytest.mark.parametrize("announcing", [png_header_only, jpeg_announcing, webp_announcing])
def test_every_format_is_refused_from_its_header_when_it_announces_too_many_pixels(announcing):
    # 9000 x 5000 = 45 Mpx: over the default 40 Mpx, under Pillow's own limits. None of these
    # files holds that many pixels, so a "too_many_pixels" answer shows the header was read
    # and nothing was decoded (WebP's canvas is checked before libwebp reserves it).
    bomb = announcing(9_000, 5_000)
    start = time.perf_counter()
    error = rejected(bomb)
    assert time.perf_counter() - start < 0.5
    assert error.code == "too_many_pixels"
    assert "9000x5000" in error.reason


def test_a_tiny_jpeg_announcing_a_large_frame_decodes_to_that_size_within_the_limit():
    # libjpeg fills what the data does not cover: a few hundred bytes give a full image. The
    # pixel limit is what bounds it (tests/biometrics/test_bounded_cost.py for the cost).
    data = jpeg_announcing(640, 480)
    assert len(data) < 2_000
    assert decode_image(data).shape == (480, 640, 3)
    assert rejected(data, max_pixels=640 * 480 - 1).code == "too_many_pixels"


def test_pillows_own_bomb_limit_is_a_second_guard_with_the_same_answer():
    bomb = png_header_only(20_000, 20_000)  # over twice Image.MAX_IMAGE_PIXELS
    assert rejected(bomb, max_pixels=10**12).code == "too_many_pixels"


def test_max_pixels_must_be_positive():
    with pytest.raises(ValueError):
        decode_image(b"x", max_pixels=0)


def test_a_rejection_crosses_a_process_boundary_intact():
    error = pickle.loads(pickle.dumps(ImageRejected("too big", "too_many_pixels")))
    assert (error.reason, error.code, str(error)) == ("too big", "too_many_pixels", "too big")


def test_unknown_rejection_codes_cannot_be_raised():
    with pytest.raises(ValueError):
        ImageRejected("nope", "teapot")


# ---- nothing crashes ----------------------------------------------------------------------

SEEDS = {
    "jpeg": encode(Image.fromarray(PIXELS), "JPEG"),
    "png": encode(Image.fromarray(PIXELS), "PNG"),
    "webp": encode(Image.fromarray(PIXELS), "WEBP"),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(sorted(SEEDS)),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_damaged_files_give_an_image_or_a_rejection_never_another_error(seed, edits, cut):
    data = bytearray(SEEDS[seed])
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    try:
        out = decode_image(bytes(data), max_pixels=4_000_000)
    except ImageRejected as error:
        assert error.code in IMAGE_REJECTION_HTTP_STATUS
    else:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=512))
def test_arbitrary_bytes_give_a_rejection_never_another_error(data):
    try:
        decode_image(data)
    except ImageRejected as error:
        assert error.code in IMAGE_REJECTION_HTTP_STATUS
