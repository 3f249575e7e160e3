"""Fixtures of the usage report tests (A-04).

The governance tests' world (``tests/application/app_world.py``: a real RfrApplication with
trained staff registered through the services) and the HTTP tests' server harness
(``tests/http/http_harness.py``) are reused, not copied; their folders and this one go on
``sys.path`` because ``--import-mode=importlib`` puts none of them there.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "application"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "http"))

from app_world import FixedClock, World, memory_app
from http_harness import LiveServer, start_with_admin


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def world(clock: FixedClock) -> World:
    return World(memory_app(), clock).populate()


@pytest.fixture(scope="session")
def reports_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real `rfr serve` process (sqlite) with its administrator; see tests/http/http_harness.py."""
    server = start_with_admin(tmp_path_factory.mktemp("reports-live") / "data")
    try:
        yield server
    finally:
        server.stop()
