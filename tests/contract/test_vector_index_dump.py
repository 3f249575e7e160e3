"""What ``IndexRegistry`` needs of an adapter beyond the port: ``dump``, ``load``, ``purge_removed``.

The registry encrypts what ``dump`` returns (ADR 0014), so a dump must hold no removed
vector (R-05) and ``load`` must give back an index that answers as the dumped one did.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rfr.adapters.indexes.exact_numpy import ExactNumpyIndex
from rfr.adapters.indexes.usearch_index import UsearchIndex
from rfr.application.errors import IndexCorrupted

ADAPTERS = [UsearchIndex, ExactNumpyIndex]
DIM = 8


@pytest.fixture(params=ADAPTERS, ids=lambda cls: cls.__name__)
def adapter(request):
    return request.param


@pytest.fixture(params=["euclidean", "cosine"])
def metric(request):
    return request.param


def vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def _joined(index) -> bytes:
    return b"".join(bytes(part) for part in index.dump())


def test_a_loaded_dump_answers_as_the_dumped_index(adapter, metric, tmp_path):
    data = vectors(50)
    index = adapter(tmp_path / "a", DIM, metric)
    index.add([f"t{i}" for i in range(50)], data)
    index.remove(["t3", "t30"])
    copy = adapter(tmp_path / "b", DIM, metric)
    copy.load(_joined(index))
    assert len(copy) == 48 and "t3" not in copy and "t4" in copy
    for query in vectors(5, seed=1):
        assert copy.search(query, 5) == index.search(query, 5)
    copy.add(["t3"], vectors(1, seed=2))  # a removed id may come back, as a new template
    assert copy.search(vectors(1, seed=2)[0], 1)[0].template_id == "t3"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_empty_index_dumps_and_loads(adapter, metric, tmp_path):
    copy = adapter(tmp_path / "b", DIM, metric)
    copy.load(_joined(adapter(tmp_path / "a", DIM, metric)))
    assert len(copy) == 0 and copy.search(vectors(1)[0], 3) == []


def test_R05_a_dump_holds_no_removed_vector(adapter, metric, tmp_path):
    data = vectors(40, seed=3)
    index = adapter(tmp_path / "a", DIM, metric)
    index.add([f"t{i}" for i in range(40)], data)
    index.remove(["t5", "t17"])
    dumped = _joined(index)
    assert data[5].tobytes() not in dumped and data[17].tobytes() not in dumped
    assert data[6].tobytes() in dumped  # the check can see a vector that is there
    # Removed vectors stay out of later dumps too, after adds that reuse their slots.
    index.add(["x", "y"], vectors(2, seed=4))
    index.remove(["t6"])
    dumped = _joined(index)
    assert all(data[i].tobytes() not in dumped for i in (5, 6, 17))


def test_load_refuses_what_is_not_a_dump_of_this_index(adapter, metric, tmp_path):
    index = adapter(tmp_path / "a", DIM, metric)
    index.add(["t0"], vectors(1))
    dumped = _joined(index)
    fresh = adapter(tmp_path / "b", DIM, metric)
    with pytest.raises(IndexCorrupted):
        fresh.load(b"garbage" * 10)
    with pytest.raises(IndexCorrupted):
        fresh.load(dumped[:-20])
    with pytest.raises(ValueError, match="holds"):
        adapter(tmp_path / "c", DIM + 1, metric).load(dumped)
    assert len(fresh) == 0


def test_usearch_overwrites_removed_slots_rather_than_rebuilding(tmp_path: Path):
    """The cheap purge: fillers take every deleted slot, so the graph is not rebuilt."""
    index = UsearchIndex(tmp_path / "a", DIM, "euclidean")
    index.add([f"t{i}" for i in range(100)], vectors(100, seed=5))
    graph = index._index
    index.remove(["t1", "t2"])
    index.purge_removed()
    assert index._index is graph and len(index) == 98
    assert int(graph.stats.nodes) == 100  # the two slots stay, holding copies of live vectors


def test_each_adapter_refuses_the_other_adapters_dump_and_a_damaged_header(metric, tmp_path):
    """Both read their header with one reader (``read_dump_head``), each under its own magic."""
    dumps = {}
    for cls in ADAPTERS:
        index = cls(tmp_path / cls.__name__, DIM, metric)
        index.add(["t0"], vectors(1))
        dumps[cls] = _joined(index)
    for cls in ADAPTERS:
        other = next(c for c in ADAPTERS if c is not cls)
        with pytest.raises(IndexCorrupted, match="not a"):
            cls(tmp_path / "x", DIM, metric).load(dumps[other])
        own = dumps[cls]
        damaged = own[:12] + b"[" + own[13:]  # the header opens a list: no longer JSON
        with pytest.raises(IndexCorrupted, match="damaged"):
            cls(tmp_path / "x", DIM, metric).load(damaged)
