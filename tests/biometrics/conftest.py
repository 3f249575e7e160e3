"""Fixtures of the biometric engine tests: one model store per session, built on first use."""

from __future__ import annotations

import pytest

from rfr.adapters.embedding.dlib_resnet import DlibResnetEmbedder
from rfr.infrastructure.models import RESNET, ModelStore
from rfr.infrastructure.settings import Settings


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """A store in a session temporary folder; each artefact is converted once, when first asked for."""
    return ModelStore(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def resnet_embedder(model_store: ModelStore) -> DlibResnetEmbedder:
    threads = Settings.from_env({}).ort_threads
    return DlibResnetEmbedder(model_store.path(RESNET), threads=threads)
