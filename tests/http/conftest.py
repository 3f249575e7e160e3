"""Fixtures of the HTTP tests: a real server process (``live_server``) and an in-process app.

The helpers live in ``http_harness`` beside this file (see its docstring to reuse them); the
folder goes on ``sys.path`` because ``--import-mode=importlib`` does not put it there.

A workflow module runs on SQLite; one that sets ``STORES = ("sqlite", "postgres")`` runs all its
tests once on each event store (issue 10): its ``server`` is then started on a new schema of the
session's private PostgreSQL cluster (``postgres_server``, tests/conftest.py) for the second round,
and the test ids end in ``[sqlite]`` or ``[postgres]``.
"""

from __future__ import annotations

import sys
import uuid
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

STORE_CHOICES = ("sqlite", "postgres")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A module's ``STORES`` runs its tests on each store named, with a ``server`` for each."""
    stores = getattr(metafunc.module, "STORES", None)
    if stores is None or "server" not in metafunc.fixturenames:
        return
    unknown = set(stores) - set(STORE_CHOICES)
    assert not unknown, f"{metafunc.module.__name__}.STORES: no store {sorted(unknown)}"
    metafunc.parametrize("server", list(stores), indirect=True, scope="module")


def _store_env(request: pytest.FixtureRequest, store: str) -> dict[str, str]:
    """The server's persistence variables: SQLite under its data folder, or a new empty schema
    of the session's cluster (skips where no PostgreSQL can be had, fails so under CI=true)."""
    if store == "sqlite":
        return {"RFR_PERSISTENCE": "sqlite"}
    import psycopg

    dsn = request.getfixturevalue("postgres_server")
    schema = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return {"RFR_PERSISTENCE": "postgres", "RFR_POSTGRES_DSN": dsn, "RFR_POSTGRES_SCHEMA": schema}


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A workflow server of the test module's own, on SQLite or, for a module whose ``STORES``
    names it, on PostgreSQL too; at its end the hash chain must verify (A-02)."""
    from workflow_builders import audit_verify, start_workflow_server

    store = getattr(request, "param", "sqlite")
    env = _store_env(request, store)
    name = request.module.__name__.rsplit(".", 1)[-1]
    live, _ = start_workflow_server(tmp_path_factory.mktemp(f"{name}-{store}"), env=env)
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
