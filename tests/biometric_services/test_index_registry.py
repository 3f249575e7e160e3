"""One index per (library, algorithm), rebuildable from the biometric store (projection, R-05, T-01)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rfr.adapters.biometric_store import EncryptedFileStore
from rfr.adapters.indexes.exact_numpy import ExactNumpyIndex
from rfr.adapters.indexes.registry import IndexRegistry
from rfr.adapters.indexes.usearch_index import UsearchIndex
from rfr.application.errors import IndexCorrupted
from rfr.application.ports import VectorIndexRegistry

DIM = 16


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def store(tmp_path: Path) -> EncryptedFileStore:
    opened = EncryptedFileStore.in_data_dir(tmp_path)
    yield opened
    opened.close()


@pytest.fixture(params=["usearch", "exact"])
def factory(request):
    if request.param == "usearch":
        return lambda path, dimension, metric: UsearchIndex(path, dimension, metric, threads=1)
    return ExactNumpyIndex


def _fill(store, library_id: str, algorithm_id: str, vectors: np.ndarray, prefix: str) -> list[str]:
    ids = [f"{prefix}-{i}" for i in range(len(vectors))]
    for template_id, vector in zip(ids, vectors, strict=True):
        store.put_template(template_id, vector, owner=library_id, algorithm_id=algorithm_id)
    return ids


def test_is_a_vector_index_registry(tmp_path, factory):
    assert isinstance(IndexRegistry(tmp_path, factory), VectorIndexRegistry)


def test_one_index_per_library_and_algorithm(tmp_path, factory):
    registry = IndexRegistry(tmp_path / "indexes", factory)
    rng = np.random.default_rng(0)
    a = registry.open("lib-1", "alg|v1", DIM, "euclidean")
    a.add(["t1"], _unit(rng, 1))
    a.save()
    b = registry.open("lib-1", "alg|v2", DIM, "euclidean")
    c = registry.open("lib-2", "alg|v1", DIM, "euclidean")
    assert len(b) == 0 and len(c) == 0
    assert registry.open("lib-1", "alg|v1", DIM, "euclidean") is a
    folders = {registry.folder(*k) for k in [("lib-1", "alg|v1"), ("lib-1", "alg|v2"), ("lib-2", "alg|v1")]}
    assert len(folders) == 3 and all("|" not in f.name for f in folders)


def test_an_index_reopens_from_its_files(tmp_path, factory):
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 5)
    first = IndexRegistry(tmp_path, factory)
    index = first.open("lib-1", "alg", DIM, "euclidean")
    index.add([f"t{i}" for i in range(5)], vectors)
    index.save()
    reopened = IndexRegistry(tmp_path, factory).open("lib-1", "alg", DIM, "euclidean")
    assert len(reopened) == 5
    assert reopened.search(vectors[3], 1)[0].template_id == "t3"


def test_another_process_saving_is_seen_on_the_next_open(tmp_path, factory):
    rng = np.random.default_rng(2)
    reader = IndexRegistry(tmp_path, factory)
    writer = IndexRegistry(tmp_path, factory)
    assert len(reader.open("lib-1", "alg", DIM, "euclidean")) == 0
    index = writer.open("lib-1", "alg", DIM, "euclidean")
    index.add(["t1", "t2"], _unit(rng, 2))
    index.save()
    assert len(reader.open("lib-1", "alg", DIM, "euclidean")) == 2


def test_T01_rebuild_holds_exactly_the_stores_templates_of_that_algorithm(tmp_path, store, factory):
    """T-01: templates of another algorithm never enter the index, even of the same library."""
    rng = np.random.default_rng(3)
    ours = _fill(store, "lib-1", "alg-a", _unit(rng, 6), "a")
    _fill(store, "lib-1", "alg-b", _unit(rng, 3), "b")
    _fill(store, "lib-2", "alg-a", _unit(rng, 2), "c")
    registry = IndexRegistry(tmp_path / "idx", factory, store=store)
    index = registry.rebuild("lib-1", "alg-a", DIM, "euclidean")
    assert len(index) == 6 and all(t in index for t in ours)
    probe = store.get_template("a-4").vector
    assert index.search(probe, 1)[0].template_id == "a-4"


def test_a_damaged_index_is_rebuilt_from_the_store(tmp_path, store, factory):
    rng = np.random.default_rng(4)
    ids = _fill(store, "lib-1", "alg-a", _unit(rng, 4), "a")
    registry = IndexRegistry(tmp_path / "idx", factory, store=store)
    registry.rebuild("lib-1", "alg-a", DIM, "euclidean")
    index_file = registry.folder("lib-1", "alg-a") / "templates.index"
    index_file.write_bytes(b"garbage")
    fresh = IndexRegistry(tmp_path / "idx", factory, store=store).open("lib-1", "alg-a", DIM, "euclidean")
    assert sorted(t for t in ids if t in fresh) == ids and len(fresh) == 4


def test_without_a_store_damage_is_reported(tmp_path, factory):
    registry = IndexRegistry(tmp_path, factory)
    index = registry.open("lib-1", "alg", DIM, "euclidean")
    index.add(["t1"], _unit(np.random.default_rng(5), 1))
    index.save()
    (registry.folder("lib-1", "alg") / "templates.index").write_bytes(b"garbage")
    with pytest.raises(IndexCorrupted):
        IndexRegistry(tmp_path, factory).open("lib-1", "alg", DIM, "euclidean")


def test_R05_a_rebuild_forgets_erased_templates(tmp_path, store, factory):
    """R-05: erased from the store means gone from the rebuilt index too."""
    rng = np.random.default_rng(6)
    ids = _fill(store, "lib-1", "alg-a", _unit(rng, 3), "a")
    registry = IndexRegistry(tmp_path / "idx", factory, store=store)
    registry.rebuild("lib-1", "alg-a", DIM, "euclidean")
    store.erase(ids[0])
    index = registry.rebuild("lib-1", "alg-a", DIM, "euclidean")
    assert ids[0] not in index and len(index) == 2


def test_the_shape_of_an_index_is_checked(tmp_path, factory):
    registry = IndexRegistry(tmp_path, factory)
    registry.open("lib-1", "alg", DIM, "euclidean")
    with pytest.raises(ValueError, match="16-d euclidean"):
        registry.open("lib-1", "alg", DIM, "cosine")
    with pytest.raises(ValueError, match="16-d euclidean"):
        IndexRegistry(tmp_path, factory).open("lib-1", "alg", 8, "euclidean")


def test_drop_deletes_the_files(tmp_path, factory):
    registry = IndexRegistry(tmp_path, factory)
    index = registry.open("lib-1", "alg", DIM, "euclidean")
    index.add(["t1"], _unit(np.random.default_rng(7), 1))
    index.save()
    registry.drop("lib-1", "alg")
    assert not registry.folder("lib-1", "alg").exists()
    assert len(registry.open("lib-1", "alg", DIM, "euclidean")) == 0
