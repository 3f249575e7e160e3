"""Fixtures of the governance service tests; the world they run in is built in ``app_world``.

This folder and the domain tests' folder go on ``sys.path`` because ``--import-mode=importlib``
does not put them there; tests import ``app_world`` (and through it ``domain_builders``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from app_world import FixedClock, World, memory_app


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def world(clock: FixedClock) -> World:
    return World(memory_app(), clock).populate()
