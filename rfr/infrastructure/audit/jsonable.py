"""Predictable conversion of aggregate state to JSON-able data, for replay output."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any
from uuid import UUID

import attrs


def to_jsonable(value: Any) -> Any:
    """Converts ``value`` recursively; raises ``TypeError`` for a type it has no rule for.

    Rules: UUID -> canonical text; datetime/date/time -> ISO 8601; timedelta -> seconds;
    Enum -> its value (converted); Decimal -> text; bytes -> hex; attrs and dataclass
    instances -> dict of fields; mappings -> dict with text keys; tuples and lists -> lists;
    sets -> lists sorted by their JSON text; non-finite floats -> "nan", "inf", "-inf".
    Refusing unknown types beats a silent ``repr`` an auditor might misread.
    """
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, PurePath):
        return str(value)
    if attrs.has(type(value)):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in attrs.fields(type(value))}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {_key(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    raise TypeError(f"no JSON rule for {type(value).__module__}.{type(value).__qualname__}")


def _key(key: Any) -> str:
    converted = to_jsonable(key)
    return converted if isinstance(converted, str) else json.dumps(converted, sort_keys=True)
