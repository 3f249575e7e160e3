"""What bounds a worker round as of a time (ADR 0025), on memory, SQLite and PostgreSQL stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from app_world import FixedClock, World, memory_app, postgres_app, sqlite_app

from rfr.application.app import RfrApplication
from rfr.application.services.as_of import StillClock, as_of_refusal, latest_event_time

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def make_app(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], RfrApplication]:
    if request.param == "memory":
        return memory_app
    if request.param == "sqlite":
        return lambda: sqlite_app(tmp_path)
    request.getfixturevalue("postgres_store")
    return lambda: postgres_app(tmp_path)


def test_the_latest_event_time_is_that_of_the_last_event_stored(
    make_app: Callable[[], RfrApplication],
) -> None:
    app = make_app()
    assert latest_event_time(app) is None
    world = World(app, FixedClock()).populate()
    world.clock.advance(days=2)
    world.approved()
    assert latest_event_time(app) == world.clock.now()


def test_a_round_may_run_from_the_latest_event_to_now_and_later_only_when_allowed() -> None:
    latest = NOW - timedelta(days=3)
    assert as_of_refusal(latest, latest=latest, now=NOW, allow_future=False) is None
    assert as_of_refusal(NOW, latest=latest, now=NOW, allow_future=False) is None
    assert as_of_refusal(NOW, latest=None, now=NOW, allow_future=False) is None
    assert "go back in time" in as_of_refusal(latest - SECOND, latest=latest, now=NOW, allow_future=True)
    assert "--allow-future" in as_of_refusal(NOW + SECOND, latest=latest, now=NOW, allow_future=False)
    assert as_of_refusal(NOW + timedelta(days=4000), latest=latest, now=NOW, allow_future=True) is None
    assert "offset from UTC" in as_of_refusal(datetime(2030, 6, 1), latest=latest, now=NOW, allow_future=True)


def test_a_still_clock_stands_at_its_time_and_refuses_a_time_without_its_offset() -> None:
    clock = StillClock(NOW)
    assert clock.now() == clock.now() == NOW
    with pytest.raises(ValueError, match="offset from UTC"):
        StillClock(datetime(2030, 6, 1))
