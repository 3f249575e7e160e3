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
