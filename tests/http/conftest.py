"""Fixtures of the HTTP tests: a real server process (``live_server``) and an in-process app.

The helpers live in ``http_harness`` beside this file (see its docstring to reuse them); the
folder goes on ``sys.path`` because ``--import-mode=importlib`` does not put it there.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_harness import LiveServer, start_with_admin


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_with_admin(tmp_path_factory.mktemp("live") / "data")
    try:
        yield server
    finally:
        server.stop()


@attrs.define
class SteppingClock:
    """A clock the test moves by hand (for expiry); starts at the real now, in UTC."""

    current: datetime = attrs.field(factory=lambda: datetime.now(UTC))

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> None:
        self.current += delta


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


# -- the workflow modules' server, photos and cast (workflow_builders) -------------------------


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A workflow server of the test module's own; at its end the hash chain must verify (A-02)."""
    from workflow_builders import audit_verify, start_workflow_server

    live, _ = start_workflow_server(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1]))
    try:
        yield live
        verified = audit_verify(live)
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        live.stop()


@pytest.fixture(scope="module")
def photos(shared_faces: Path) -> dict[str, list[Path]]:
    from workflow_builders import lfw_photos

    return lfw_photos(shared_faces)


@pytest.fixture(scope="module")
def people(server: LiveServer):
    from workflow_builders import cast

    return cast(server)
