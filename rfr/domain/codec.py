"""Value objects to and from plain data, for event attributes.

Events hold only JSON-native data (plus ``UUID`` and ``datetime``, which eventsourcing's
default transcoder handles), so the stored form needs no custom transcodings and an
``upcast_vX_vY`` can edit it as a plain dict. Dicts become lists of pairs because JSON
would turn non-string keys into strings.
"""

from __future__ import annotations

import enum
import functools
import types
import typing
from datetime import date, datetime
from typing import Any
from uuid import UUID

import attrs

_PASS_THROUGH = (str, int, float, bool, type(None), UUID, datetime)


def to_data(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, _PASS_THROUGH):
        return value
    if isinstance(value, date):
        return value.isoformat()
    if attrs.has(type(value)):
        return {f.name: to_data(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if isinstance(value, dict):
        return [[to_data(k), to_data(v)] for k, v in value.items()]
    if isinstance(value, frozenset | set):
        return sorted((to_data(v) for v in value), key=repr)
    if isinstance(value, tuple | list):
        return [to_data(v) for v in value]
    raise TypeError(f"cannot turn {type(value).__name__} into event data")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_data(tp: Any, data: Any) -> Any:
    """Rebuild a value of type ``tp`` from ``to_data`` output (lists of pairs for dicts)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return from_data(options[0], data)
    if tp is Any:
        return data
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_data(args[0], v) for v in data)
        return tuple(from_data(a, v) for a, v in zip(args, data, strict=True))
    if origin is frozenset:
        (arg,) = typing.get_args(tp)
        return frozenset(from_data(arg, v) for v in data)
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        pairs = data.items() if isinstance(data, dict) else data
        return {from_data(key_tp, k): from_data(value_tp, v) for k, v in pairs}
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return tp(data)
        if tp is datetime:
            return data if isinstance(data, datetime) else datetime.fromisoformat(data)
        if tp is date:
            return data if isinstance(data, date) else date.fromisoformat(data)
        if tp is UUID:
            return data if isinstance(data, UUID) else UUID(data)
        if attrs.has(tp):
            hints = _hints(tp)
            return tp(**{f.name: from_data(hints[f.name], data[f.name]) for f in attrs.fields(tp) if f.init})
        if tp is float and isinstance(data, int):
            return float(data)
    return data
