"""Fixtures of the usage report tests (A-04).

The governance tests' world (``tests/application/app_world.py``: a real RfrApplication with
trained staff registered through the services) is reused, not copied; this folder and that
one go on ``sys.path`` because ``--import-mode=importlib`` puts neither there.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "application"))

from app_world import FixedClock, World, memory_app


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def world(clock: FixedClock) -> World:
    return World(memory_app(), clock).populate()
