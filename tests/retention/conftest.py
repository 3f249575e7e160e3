"""Fixtures of the retention tests: the biometric service tests' real engine, store and photos.

``service_builders`` (tests/biometric_services) and ``domain_builders`` (tests/domain) are
reused, not copied; their folders and this one go on ``sys.path`` because
``--import-mode=importlib`` puts none of them there.
"""

from __future__ import annotations

import sys
from pathlib import Path

# onnxruntime before usearch, as in tests/biometric_services/conftest.py: the other order crashes.
import onnxruntime  # noqa: F401
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "biometric_services"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "domain"))

from retention_history import History
from service_builders import make_world, single_face_photos

from rfr.application.face_engine import FaceEngine
from rfr.entrypoints.composition import build_face_engine
from rfr.infrastructure.settings import Settings


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> FaceEngine:
    return build_face_engine(Settings(data_dir=tmp_path_factory.mktemp("rfr-engine")))


@pytest.fixture(scope="session")
def photos(shared_faces: Path) -> dict[str, list[Path]]:
    return single_face_photos(shared_faces)


@pytest.fixture
def history(tmp_path: Path, engine: FaceEngine, photos: dict[str, list[Path]]) -> History:
    return History(make_world(tmp_path, engine), photos)
