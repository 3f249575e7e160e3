"""Shared fixtures.

Tests that need the face photos or dlib's reference outputs use ``shared_faces``: they skip
where ../shared is absent, but fail when CI=true, because CI always has it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("RFR_SHARED_DIR", REPO_ROOT.parent / "shared"))
FACES = SHARED / "datasets" / "faces"
REFERENCE_JSONL = FACES / "reference" / "dlib-20.0.1.jsonl"
POLICY_TEXT = SHARED / "spec" / "rfr-policy.txt"


def _require(path: Path) -> Path:
    if path.exists():
        return path
    message = f"{path} is missing: the shared face dataset lives beside the checkout"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_faces() -> Path:
    """Root of shared/datasets/faces (folder-per-identity photos and the manifest)."""
    return _require(FACES)


@pytest.fixture(scope="session")
def dlib_reference() -> list[dict]:
    """The original dlib's outputs for every image of the dataset, one dict per image."""
    path = _require(REFERENCE_JSONL)
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture(scope="session")
def policy_text() -> str:
    """The policy document, read for verbatim text (S-06)."""
    return _require(POLICY_TEXT).read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A ``ModelStore`` in ``<session data dir>/models``, shared by every test of the session: each
    artefact is converted once, when first asked for. Its parent is a ``Settings.data_dir`` whose
    ``models_dir`` is this store (the contract suites build engines from it)."""
    from rfr.infrastructure.models import ModelStore

    models = tmp_path_factory.mktemp("data") / "models"
    # Made now, as the store's folder always was: tests link to it before anything is built.
    models.mkdir()
    return ModelStore(models)


# -- PostgreSQL (issue 10) -----------------------------------------------------------------------


def _load_beside(name: str) -> ModuleType:
    # ``--import-mode=importlib`` puts no test folder on sys.path; load the module by its file.
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The DSN of a private PostgreSQL cluster on loopback, started once for the session.

    Skips where no server binaries can be had, but fails when CI=true: ``make test`` installs
    Debian's ``postgresql`` package when they are missing.
    """
    postgres_cluster = _load_beside("postgres_cluster")
    if postgres_cluster.server_binaries() is None:
        message = "no PostgreSQL server binaries: `make test` installs Debian's postgresql package"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    cluster = postgres_cluster.start()
    try:
        yield cluster.dsn
    finally:
        cluster.stop()


@pytest.fixture
def private_postgres(postgres_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A cluster of the test's own (``tests/postgres_cluster.Cluster``), named in RFR_POSTGRES_DSN,
    for a test that restarts or stops the server; ``postgres_server`` decides skip or fail."""
    del postgres_server
    cluster = _load_beside("postgres_cluster").start()
    monkeypatch.setenv("RFR_POSTGRES_DSN", cluster.dsn)
    monkeypatch.setenv("RFR_POSTGRES_SCHEMA", "public")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def postgres_store(postgres_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new empty schema for one test, named in RFR_POSTGRES_DSN and RFR_POSTGRES_SCHEMA (which
    subprocesses inherit); ``Settings.from_env`` with RFR_PERSISTENCE=postgres opens it."""
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:16]
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    monkeypatch.setenv("RFR_POSTGRES_DSN", postgres_server)
    monkeypatch.setenv("RFR_POSTGRES_SCHEMA", schema)
    return schema
