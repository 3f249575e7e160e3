"""Fixtures of the biometric engine tests; ``model_store`` (one per session) is tests/conftest.py's."""

from __future__ import annotations

import pytest

from rfr.adapters.embedding.dlib_resnet import DlibResnetEmbedder
from rfr.infrastructure.models import RESNET, ModelStore
from rfr.infrastructure.settings import Settings


@pytest.fixture(scope="session")
def resnet_embedder(model_store: ModelStore) -> DlibResnetEmbedder:
    threads = Settings.from_env({}).ort_threads
    return DlibResnetEmbedder(model_store.path(RESNET), threads=threads)
