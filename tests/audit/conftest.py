"""Fixtures for the audit tests: applications on a real SQLite file or in memory."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rfr.application.app import RfrApplication

HERE = Path(__file__).resolve().parent


def _load_samples() -> None:
    # A fixed module name gives the sample events stable topics, here and in subprocesses.
    if "rfr_audit_samples" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location("rfr_audit_samples", HERE / "rfr_audit_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["rfr_audit_samples"] = module
    spec.loader.exec_module(module)


_load_samples()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def sqlite_app(data_dir: Path) -> Iterator[RfrApplication]:
    from rfr_audit_samples import open_app

    app = open_app(data_dir)
    yield app
    app.close()
