"""One journal entry's plaintext: the changes one committed write made, in order, and a position.

Layout: header length (u32) | header (JSON: ``{"ops": [{"op": "add"|"remove", "ids": [...]}],
"position": int}``, position only when the write set one) | the float32 rows of every add,
in op order. The entry is encrypted as a whole (``sealed_files.append_entry``).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence

import attrs
import numpy as np

from rfr.application.errors import IndexCorrupted

_U32 = struct.Struct(">I")
ADD = "add"
REMOVE = "remove"


@attrs.frozen(eq=False)
class Change:
    """Templates added (with their vectors) or removed; vectors is None for a removal."""

    op: str
    ids: tuple[str, ...]
    vectors: np.ndarray | None = None


def encode(changes: Sequence[Change], position: int | None) -> bytes:
    head: dict = {"ops": [{"op": c.op, "ids": list(c.ids)} for c in changes]}
    if position is not None:
        head["position"] = position
    header = json.dumps(head).encode()
    rows = [np.ascontiguousarray(c.vectors, dtype="<f4").tobytes() for c in changes if c.op == ADD]
    return b"".join([_U32.pack(len(header)), header, *rows])


def decode(data: bytes, dimension: int) -> tuple[list[Change], int | None]:
    """The changes and position of an entry; ``IndexCorrupted`` if it does not parse."""
    try:
        (length,) = _U32.unpack_from(data, 0)
        head = json.loads(data[_U32.size : _U32.size + length])
        ops = head["ops"]
        position = head.get("position")
        offset = _U32.size + length
        changes = []
        for op in ops:
            ids = tuple(str(i) for i in op["ids"])
            if op["op"] == ADD:
                size = 4 * dimension * len(ids)
                if offset + size > len(data):
                    raise ValueError("fewer vector bytes than ids")
                matrix = np.frombuffer(data[offset : offset + size], dtype="<f4")
                changes.append(Change(ADD, ids, matrix.astype(np.float32).reshape(len(ids), dimension)))
                offset += size
            elif op["op"] == REMOVE:
                changes.append(Change(REMOVE, ids))
            else:
                raise ValueError(f"unknown op {op['op']!r}")
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise IndexCorrupted(f"a journal entry does not parse ({exc}); rebuild the index") from exc
    if offset != len(data) or not (position is None or isinstance(position, int)):
        raise IndexCorrupted("a journal entry does not parse; rebuild the index")
    return changes, position
