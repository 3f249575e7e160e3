"""Replay rebuilds an aggregate as it was at a time, as predictable JSON-able data."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import time
import uuid
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from eventsourcing.application import AggregateNotFoundError
from rfr_audit_samples import Case, open_app

from rfr.infrastructure.audit import replay, to_jsonable


@pytest.mark.parametrize("persistence", ["sqlite", "memory"])
def test_replay_until_returns_the_state_as_it_was(data_dir: Path, persistence: str) -> None:
    app = open_app(data_dir, persistence)
    case = Case("C-7", "Okafor", "DS")
    app.save(case)
    for command in (lambda: case.add_note("witness"), lambda: case.tag("robbery"), lambda: case.close("nfa")):
        time.sleep(0.002)  # distinct timestamps, so "until" falls between events
        command()
        app.save(case)
    stamps = [e.timestamp for e in app.events.get(case.id)]
    assert stamps == sorted(set(stamps))

    at_note = replay(app, case.id, until=stamps[1])
    assert at_note["version"] == 2
    assert at_note["state"]["notes"] == ["witness"]
    assert at_note["state"]["tags"] == []
    assert at_note["state"]["status"] == "open"
    assert "closing_reason" not in at_note["state"]
    assert at_note["created_on"] == stamps[0].isoformat()
    assert at_note["modified_on"] == stamps[1].isoformat()
    assert at_note["id"] == str(case.id)
    assert at_note["topic"] == "rfr_audit_samples:Case"

    just_before_close = replay(app, case.id, until=stamps[3] - dt.timedelta(microseconds=1))
    assert just_before_close["version"] == 3

    latest = replay(app, case.id)
    assert latest["version"] == 4 and latest["state"]["closing_reason"] == "nfa"
    assert latest["until"] is None
    json.dumps(latest)  # everything is JSON-able as returned

    naive = stamps[1].astimezone(dt.UTC).replace(tzinfo=None)
    assert replay(app, case.id, until=naive)["version"] == 2

    with pytest.raises(AggregateNotFoundError, match="did not exist"):
        replay(app, case.id, until=stamps[0] - dt.timedelta(seconds=1))
    with pytest.raises(AggregateNotFoundError):
        replay(app, uuid.uuid4())
    app.close()


class Colour(enum.Enum):
    RED = "red"
    DEEP = ("deep", 2)


@attrs.frozen
class Box:
    left: int
    tags: frozenset[str]


@dataclasses.dataclass(frozen=True)
class Pair:
    a: object
    b: object


def test_to_jsonable_converts_predictably() -> None:
    moment = dt.datetime(2025, 3, 1, 12, 30, tzinfo=dt.UTC)
    uid = uuid.UUID(int=1)
    value = {
        "uuid": uid,
        "when": moment,
        "day": moment.date(),
        "span": dt.timedelta(minutes=2),
        "colour": Colour.RED,
        "deep": Colour.DEEP,
        "money": Decimal("1.10"),
        "raw": b"\x00\xff",
        "box": Box(3, frozenset({"b", "a"})),
        "pair": Pair((1, 2), {3}),
        "nan": float("nan"),
        uid: "uuid key",
        7: "int key",
    }
    assert to_jsonable(value) == {
        "uuid": "00000000-0000-0000-0000-000000000001",
        "when": "2025-03-01T12:30:00+00:00",
        "day": "2025-03-01",
        "span": 120.0,
        "colour": "red",
        "deep": ["deep", 2],
        "money": "1.10",
        "raw": "00ff",
        "box": {"left": 3, "tags": ["a", "b"]},
        "pair": {"a": [1, 2], "b": [3]},
        "nan": "nan",
        "00000000-0000-0000-0000-000000000001": "uuid key",
        "7": "int key",
    }
    # Set order must not depend on hashing: same output for the same members, always.
    assert to_jsonable(frozenset({"z", "y", "x"})) == ["x", "y", "z"]
    with pytest.raises(TypeError, match="no JSON rule"):
        to_jsonable(object())
