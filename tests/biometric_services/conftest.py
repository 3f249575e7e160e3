"""Fixtures of the biometric service tests: the real engine, store and indexes over real photos.

The engine is built once per session (model conversion takes seconds) in a session folder.
Each test gets its own data folder, in-memory event store and users, so tests never share
state. The helpers live in ``service_builders`` beside this file; this folder goes on
``sys.path`` because ``--import-mode=importlib`` does not put it there.
"""

from __future__ import annotations

import sys
from pathlib import Path

# onnxruntime must be loaded before usearch: the other order crashes the interpreter
# (segmentation fault importing onnxruntime 1.32 after usearch 2.26). Test modules here
# import usearch when collected, so this conftest loads onnxruntime first.
import onnxruntime  # noqa: F401
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from service_builders import World, make_world, single_face_photos

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
def world(tmp_path: Path, engine: FaceEngine) -> World:
    return make_world(tmp_path, engine)
