"""Decoding of dlib's serialisation primitives (shared/spec/DLIB_MODEL_FORMAT.md, section 2).

dlib writes plain concatenated fields with no header; every model reader in this package
walks a file with one ``DlibReader`` and checks that it ends exactly at end of file.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import attrs
import numpy as np

T = TypeVar("T")

_INF, _NEG_INF, _NAN = 32000, 32001, 32002


class DlibFormatError(ValueError):
    """The bytes are not what the dlib format says they must be at this position."""


@attrs.frozen
class AliasTensor:
    """A view into a layer's flat params tensor: shape only, no data."""

    n: int
    k: int
    nr: int
    nc: int

    @property
    def size(self) -> int:
        return self.n * self.k * self.nr * self.nc


class DlibReader:
    """Sequential reader over the bytes of one dlib file."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self.pos = 0

    def __len__(self) -> int:
        return len(self._data)

    @property
    def at_end(self) -> bool:
        return self.pos == len(self._data)

    def expect_end(self) -> None:
        if not self.at_end:
            raise DlibFormatError(f"{len(self._data) - self.pos} unread bytes after position {self.pos}")

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self._data):
            raise DlibFormatError(f"unexpected end of file at {self.pos} (wanted {n} bytes)")
        chunk = self._data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def peek(self, n: int) -> bytes:
        return bytes(self._data[self.pos : self.pos + n])

    # -- integers and floats (2.1, 2.2) ---------------------------------------------------
    def read_int(self) -> int:
        start = self.pos
        control = self._take(1)[0]
        size = control & 0x0F
        if control & 0x70 or not 1 <= size <= 8:
            raise DlibFormatError(f"bad integer control byte 0x{control:02x} at {start}")
        magnitude = int.from_bytes(self._take(size), "little")
        return -magnitude if control & 0x80 else magnitude

    def read_uint(self) -> int:
        start = self.pos
        value = self.read_int()
        if value < 0:
            raise DlibFormatError(f"negative value {value} where unsigned expected at {start}")
        return value

    def read_float(self) -> float:
        start = self.pos
        if self._data[self.pos] & 0x70:
            raise DlibFormatError(f"legacy text float at {start} is not supported")
        mantissa = self.read_int()
        exponent = self.read_int()
        if exponent == _INF:
            return math.inf
        if exponent == _NEG_INF:
            return -math.inf
        if exponent == _NAN:
            return math.nan
        return math.ldexp(mantissa, exponent)

    # -- other primitives (2.3) ---------------------------------------------------------
    def read_bool(self) -> bool:
        byte = self._take(1)[0]
        if byte not in (0x30, 0x31):
            raise DlibFormatError(f"bad bool byte 0x{byte:02x} at {self.pos - 1}")
        return byte == 0x31

    def read_string(self) -> str:
        length = self.read_uint()
        return bytes(self._take(length)).decode("latin-1")

    def expect_string(self, *allowed: str) -> str:
        start = self.pos
        value = self.read_string()
        if value not in allowed:
            raise DlibFormatError(f"expected one of {allowed!r} at {start}, found {value!r}")
        return value

    def expect_int(self, expected: int, what: str) -> None:
        start = self.pos
        value = self.read_int()
        if value != expected:
            raise DlibFormatError(f"{what}: expected {expected} at {start}, found {value}")

    def read_vector(self, read_item: Callable[[], T]) -> list[T]:
        return [read_item() for _ in range(self.read_uint())]

    def read_matrix(self) -> np.ndarray:
        """A dlib::matrix of floats, as float32 of shape (rows, cols)."""
        start = self.pos
        rows, cols = self.read_int(), self.read_int()
        if rows > 0 or cols > 0:
            raise DlibFormatError(f"old-format matrix header at {start} is not supported")
        rows, cols = -rows, -cols
        values = [self.read_float() for _ in range(rows * cols)]
        return np.asarray(values, dtype=np.float32).reshape(rows, cols)

    def read_point(self) -> tuple[float, float]:
        return (self.read_float(), self.read_float())

    # -- DNN tensors (2.4) ------------------------------------------------------------
    def read_tensor(self) -> np.ndarray:
        """A resizable_tensor as float32 of shape (n, k, nr, nc)."""
        self.expect_int(2, "tensor version")
        n, k, nr, nc = (self.read_uint() for _ in range(4))
        count = n * k * nr * nc
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(n, k, nr, nc)

    def read_alias_tensor(self) -> AliasTensor:
        self.expect_int(1, "alias_tensor version")
        return AliasTensor(*(self.read_uint() for _ in range(4)))
