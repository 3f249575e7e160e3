"""Fixtures of the domain tests; the builders live in ``domain_builders`` beside this file.

The folder goes on ``sys.path`` because ``--import-mode=importlib`` does not put it there, and
test modules import the builders by name.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def policy_text() -> str:
    """The policy document, read for verbatim text (S-06); skips without ../shared, fails in CI."""
    root = Path(os.environ.get("RFR_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"))
    path = root / "spec" / "rfr-policy.txt"
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{path} is missing")
        pytest.skip(f"{path} is missing")
    return path.read_text(encoding="utf-8")
