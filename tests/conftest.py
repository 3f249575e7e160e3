"""Shared fixtures.

Tests that need the face photos or dlib's reference outputs use ``shared_faces``: they skip
where ../shared is absent, but fail when CI=true, because CI always has it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

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
