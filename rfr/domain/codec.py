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
from collections.abc import Callable
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
    try:
        decode = _decoder(tp)
    except TypeError:  # a type that cannot be a cache key: build its decoder each time
        decode = _decoder.__wrapped__(tp)
    return decode(data)


def _same(data: Any) -> Any:
    return data


@functools.cache
def _decoder(tp: Any) -> Callable[[Any], Any]:
    """The function that rebuilds values of ``tp``, worked out once per type: loading an
    aggregate decodes every attribute of every event, and asking ``typing`` what each type is
    for each value was a fifth of a search's CPU (docs/benchmarks.md, PostgreSQL notes)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = _lazy(options[0])
        return lambda data: None if data is None else inner(data)
    if tp is Any:
        return _same
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            each = _lazy(args[0])
            return lambda data: tuple(each(v) for v in data)
        parts = [_lazy(a) for a in args]
        return lambda data: tuple(f(v) for f, v in zip(parts, data, strict=True))
    if origin is frozenset:
        (arg,) = typing.get_args(tp)
        each = _lazy(arg)
        return lambda data: frozenset(each(v) for v in data)
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        key, value = _lazy(key_tp), _lazy(value_tp)

        def pairs(data: Any) -> dict[Any, Any]:
            items = data.items() if isinstance(data, dict) else data
            return {key(k): value(v) for k, v in items}

        return pairs
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return tp
        if tp is datetime:
            return lambda data: data if isinstance(data, datetime) else datetime.fromisoformat(data)
        if tp is date:
            return lambda data: data if isinstance(data, date) else date.fromisoformat(data)
        if tp is UUID:
            return lambda data: data if isinstance(data, UUID) else UUID(data)
        if attrs.has(tp):
            return _attrs_decoder(tp)
        if tp is float:
            return lambda data: float(data) if isinstance(data, int) else data
    return _same


def _lazy(tp: Any) -> Callable[[Any], Any]:
    """``tp``'s decoder, looked up on first use (a type may name itself, or one not yet
    defined, among its attributes)."""
    found: list[Callable[[Any], Any]] = []

    def decode(data: Any) -> Any:
        if not found:
            found.append(_decoder(tp))
        return found[0](data)

    return decode


def _attrs_decoder(tp: type) -> Callable[[Any], Any]:
    fields: list[tuple[str, Callable[[Any], Any]]] = []

    def decode(data: Any) -> Any:
        if not fields:
            hints = _hints(tp)
            fields.extend((f.name, _lazy(hints[f.name])) for f in attrs.fields(tp) if f.init)
        # A field added later with a default is absent from events stored before it: its default.
        return tp(**{name: field(data[name]) for name, field in fields if name in data})

    return decode
