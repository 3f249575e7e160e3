import math

import pytest

from rfr.infrastructure.dlib.serialization import DlibFormatError, DlibReader


def test_integers_are_sign_magnitude_little_endian():
    reader = DlibReader(bytes([0x01, 0x02, 0x01, 0x15, 0x81, 0x11, 0x02, 0x00, 0x01, 0x01, 0x00]))
    assert [reader.read_int() for _ in range(5)] == [2, 21, -17, 256, 0]
    reader.expect_end()


def test_float_is_mantissa_then_exponent():
    # The red mean of the dlib models, as the spec gives it.
    reader = DlibReader(bytes([0x03, 0x62, 0x90, 0xF5, 0x81, 0x11]))
    assert reader.read_float() == pytest.approx(122.78199768, abs=1e-7)


def test_special_exponents():
    inf = bytes([0x01, 0x01, 0x02]) + (32000).to_bytes(2, "little")
    nan = bytes([0x01, 0x01, 0x02]) + (32002).to_bytes(2, "little")
    assert DlibReader(inf).read_float() == math.inf
    assert math.isnan(DlibReader(nan).read_float())


def test_unsigned_refuses_negative_and_truncation_is_an_error():
    with pytest.raises(DlibFormatError):
        DlibReader(bytes([0x81, 0x11])).read_uint()
    with pytest.raises(DlibFormatError):
        DlibReader(bytes([0x02, 0x01])).read_int()


def test_string_bool_and_matrix():
    data = bytes([0x01, 0x03]) + b"abc" + b"1" + bytes([0x81, 0x02, 0x81, 0x01]) + bytes(
        [0x01, 0x01, 0x01, 0x00, 0x01, 0x03, 0x01, 0x00]
    )
    reader = DlibReader(data)
    assert reader.read_string() == "abc"
    assert reader.read_bool() is True
    assert reader.read_matrix().ravel().tolist() == [1.0, 3.0]
    reader.expect_end()
