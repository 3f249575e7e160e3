"""The contract every VectorIndex adapter keeps. A new adapter is proven by adding it to ADAPTERS."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfr.adapters.indexes.exact_numpy import ExactNumpyIndex
from rfr.adapters.indexes.usearch_index import UsearchIndex
from rfr.application.errors import DuplicateTemplateId, IndexCorrupted, InvalidVector
from rfr.application.ports import VectorIndex


class UsearchGraphOnly(UsearchIndex):
    """usearch searched through its HNSW graph at every size: the default searches small
    indexes exhaustively (``exact_search_limit``), which would leave the graph walk untested here."""

    def __init__(self, path: Path, dimension: int, metric: str) -> None:
        super().__init__(path, dimension, metric, exact_search_limit=0)


ADAPTERS = [UsearchIndex, UsearchGraphOnly, ExactNumpyIndex]
METRICS = ["euclidean", "cosine"]
DIM = 8


@pytest.fixture(params=ADAPTERS, ids=lambda cls: cls.__name__)
def adapter(request):
    return request.param


@pytest.fixture(params=METRICS)
def metric(request):
    return request.param


@pytest.fixture
def index_path(tmp_path: Path) -> Path:
    return tmp_path / "library" / "templates.index"


def vectors(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def ids(n: int, prefix: str = "t") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def reference_distance(a: np.ndarray, b: np.ndarray, metric: str) -> float:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if metric == "cosine":
        return float(1 - a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)))
    return float(np.linalg.norm(a64 - b64))


def test_adapter_satisfies_the_port(adapter, metric, index_path):
    index = adapter(index_path, DIM, metric)
    assert isinstance(index, VectorIndex)
    assert index.dimension == DIM
    assert index.metric == metric


def test_empty_index_finds_nothing(adapter, metric, index_path):
    index = adapter(index_path, DIM, metric)
    assert len(index) == 0
    assert index.search(vectors(1)[0], 5) == []
    assert "t0" not in index


def test_search_returns_hits_in_ascending_true_distance(adapter, metric, index_path):
    data = vectors(30)
    index = adapter(index_path, DIM, metric)
    index.add(ids(30), data)
    query = vectors(1, seed=9)[0]
    hits = index.search(query, 5)
    expected = sorted((reference_distance(row, query, metric), f"t{i}") for i, row in enumerate(data))[:5]
    assert [h.template_id for h in hits] == [tid for _, tid in expected]
    np.testing.assert_allclose([h.distance for h in hits], [d for d, _ in expected], rtol=1e-4, atol=1e-5)


def test_a_stored_vector_is_its_own_nearest_at_distance_zero(adapter, metric, index_path):
    data = vectors(20)
    index = adapter(index_path, DIM, metric)
    index.add(ids(20), data)
    hit = index.search(data[7], 1)[0]
    assert hit.template_id == "t7"
    assert hit.distance == pytest.approx(0.0, abs=1e-3)
    assert hit.distance >= 0.0


def test_k_beyond_size_returns_every_template(adapter, metric, index_path):
    index = adapter(index_path, DIM, metric)
    index.add(ids(4), vectors(4))
    hits = index.search(vectors(1, seed=3)[0], 50)
    assert sorted(h.template_id for h in hits) == ids(4)
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)


def test_query_may_be_a_single_row_matrix(adapter, metric, index_path):
    index = adapter(index_path, DIM, metric)
    index.add(ids(5), vectors(5))
    query = vectors(1, seed=4)
    assert index.search(query, 3) == index.search(query[0], 3)


def test_len_and_contains_follow_adds_and_removes(adapter, metric, index_path):
    index = adapter(index_path, DIM, metric)
    index.add(ids(3), vectors(3))
    index.add(["x"], vectors(1, seed=1))
    assert len(index) == 4
    assert "x" in index and "t2" in index
    assert "nope" not in index and 17 not in index
    index.remove(["t1", "x"])
    assert len(index) == 2
    assert "t1" not in index and "x" not in index
    assert {h.template_id for h in index.search(vectors(1)[0], 10)} == {"t0", "t2"}


def test_removing_unknown_ids_is_a_no_op_so_erasure_can_be_retried(adapter, metric, index_path):
    index = adapter(index_path, DIM, metric)
    index.add(ids(3), vectors(3))
    index.remove(["t1"])
    index.remove(["t1", "never-added"])
    assert len(index) == 2


def test_a_removed_id_can_be_added_again_and_the_old_vector_is_not_found(adapter, metric, index_path):
    old, new, other = vectors(3, seed=5)
    index = adapter(index_path, DIM, metric)
    index.add(["a", "b"], np.stack([old, other]))
    index.remove(["a"])
    index.add(["a"], new[None, :])
    hit = index.search(new, 1)[0]
    assert hit.template_id == "a" and hit.distance == pytest.approx(0.0, abs=1e-3)
    found = {h.template_id: h.distance for h in index.search(old, 2)}
    assert found["a"] == pytest.approx(reference_distance(old, new, metric), rel=1e-4)


def test_persisted_index_reopens_with_the_same_answers(adapter, metric, index_path):
    data = vectors(40)
    index = adapter(index_path, DIM, metric)
    index.add(ids(40), data)
    index.remove(["t3"])
    index.save()
    query = vectors(1, seed=11)[0]
    before = index.search(query, 10)
    reopened = adapter(index_path, DIM, metric)
    assert len(reopened) == 39
    assert "t3" not in reopened and "t4" in reopened
    after = reopened.search(query, 10)
    assert [h.template_id for h in after] == [h.template_id for h in before]
    np.testing.assert_allclose([h.distance for h in after], [h.distance for h in before], rtol=1e-6)


def test_a_reopened_index_accepts_writes_and_persists_them(adapter, metric, index_path):
    index = adapter(index_path, DIM, metric)
    index.add(ids(10), vectors(10))
    index.save()
    reopened = adapter(index_path, DIM, metric)
    extra = vectors(1, seed=42)
    reopened.add(["late"], extra)
    reopened.remove(["t0"])
    assert reopened.search(extra[0], 1)[0].template_id == "late"
    reopened.save()
    third = adapter(index_path, DIM, metric)
    assert len(third) == 10 and "late" in third and "t0" not in third
    assert third.search(extra[0], 1)[0].template_id == "late"


def test_unsaved_changes_are_not_on_disk(adapter, metric, index_path):
    index = adapter(index_path, DIM, metric)
    index.add(ids(3), vectors(3))
    index.save()
    index.add(["unsaved"], vectors(1, seed=2))
    assert "unsaved" not in adapter(index_path, DIM, metric)


def test_saving_an_empty_index_round_trips(adapter, metric, index_path):
    adapter(index_path, DIM, metric).save()
    reopened = adapter(index_path, DIM, metric)
    assert len(reopened) == 0
    assert reopened.search(vectors(1)[0], 3) == []
    reopened.add(["a"], vectors(1))
    assert len(reopened) == 1


def test_R05_removed_vectors_leave_no_bytes_in_the_saved_files(adapter, metric, index_path):
    """R-05: erasure removes templates from the index irrecoverably, not just from results."""
    data = vectors(6, seed=21)
    index = adapter(index_path, DIM, metric)
    index.add(ids(6), data)
    index.save()
    reopened = adapter(index_path, DIM, metric)
    reopened.remove(["t2"])
    reopened.save()
    on_disk = b"".join(p.read_bytes() for p in index_path.parent.iterdir())
    assert data[2].tobytes() not in on_disk
    assert data[3].tobytes() in on_disk  # the check would see a live vector, so it can fail
    assert not any(p.name.endswith(".tmp") for p in index_path.parent.iterdir())


def test_duplicate_ids_are_refused_and_nothing_is_added(adapter, metric, index_path):
    index = adapter(index_path, DIM, metric)
    index.add(["a", "b"], vectors(2))
    with pytest.raises(DuplicateTemplateId, match="already"):
        index.add(["c", "a"], vectors(2, seed=1))
    with pytest.raises(DuplicateTemplateId, match="repeated"):
        index.add(["d", "d"], vectors(2, seed=2))
    assert len(index) == 2 and "c" not in index and "d" not in index


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.zeros((1, DIM + 1), np.float32) + 1, "shape"),
        (np.ones((1, DIM), np.float64), "float32"),
        (np.ones((DIM,), np.float32), "shape"),
        (np.ones((2, DIM), np.float32), "2 vectors"),
        (np.full((1, DIM), np.nan, np.float32), "finite"),
        ([[1.0] * DIM], "numpy array"),
    ],
    ids=["dimension", "dtype", "not-2d", "count", "nan", "list"],
)
def test_bad_vectors_are_refused_clearly(adapter, metric, index_path, bad, message):
    index = adapter(index_path, DIM, metric)
    with pytest.raises(InvalidVector, match=message):
        index.add(["a"], bad)
    assert len(index) == 0


def test_a_zero_vector_is_refused_under_cosine(adapter, index_path):
    index = adapter(index_path, DIM, "cosine")
    with pytest.raises(InvalidVector, match="zero"):
        index.add(["z"], np.zeros((1, DIM), np.float32))
    index.add(["a"], vectors(1))
    with pytest.raises(InvalidVector, match="zero"):
        index.search(np.zeros(DIM, np.float32), 1)


def test_bad_queries_and_ids_are_refused(adapter, metric, index_path):
    index = adapter(index_path, DIM, metric)
    index.add(ids(2), vectors(2))
    with pytest.raises(InvalidVector):
        index.search(np.ones(DIM + 1, np.float32), 1)
    with pytest.raises(InvalidVector):
        index.search(np.ones(DIM, np.float64), 1)
    with pytest.raises(ValueError, match="k must"):
        index.search(np.ones(DIM, np.float32), 0)
    with pytest.raises(TypeError):
        index.add("ab", vectors(2))
    with pytest.raises(TypeError):
        index.add(["", "b"], vectors(2))


def test_reopening_with_another_dimension_or_metric_is_refused(adapter, metric, index_path):
    index = adapter(index_path, DIM, metric)
    index.add(ids(2), vectors(2))
    index.save()
    other = "cosine" if metric == "euclidean" else "euclidean"
    with pytest.raises(ValueError, match="holds"):
        adapter(index_path, DIM + 1, metric)
    with pytest.raises(ValueError, match="holds"):
        adapter(index_path, DIM, other)


def test_damaged_or_half_written_files_are_reported_not_trusted(adapter, metric, index_path):
    index = adapter(index_path, DIM, metric)
    index.add(ids(3), vectors(3))
    index.save()
    sidecar = next(p for p in index_path.parent.iterdir() if p != index_path)
    good = sidecar.read_bytes()

    meta = json.loads(good)
    listed = meta.get("ids") or meta.get("keys")
    if isinstance(listed, list):
        listed.pop()
    else:
        listed.pop(next(iter(listed)))
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(IndexCorrupted):
        adapter(index_path, DIM, metric)

    sidecar.write_bytes(b"{not json")
    with pytest.raises(IndexCorrupted):
        adapter(index_path, DIM, metric)

    sidecar.unlink()
    with pytest.raises(IndexCorrupted, match="missing"):
        adapter(index_path, DIM, metric)

    sidecar.write_bytes(good)
    index_path.write_bytes(b"garbage" * 20)
    with pytest.raises(IndexCorrupted):
        adapter(index_path, DIM, metric)


def test_unknown_metric_or_dimension_is_refused(adapter, index_path):
    with pytest.raises(ValueError, match="metric"):
        adapter(index_path, DIM, "manhattan")
    with pytest.raises(ValueError, match="dimension"):
        adapter(index_path, 0, "cosine")


def _clustered(draw_seed: int, clusters: int, per_cluster: int, dim: int, metric: str):
    rng = np.random.default_rng(draw_seed)
    centres = rng.normal(size=(clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    # Spread the centres far apart relative to the within-cluster noise, so the nearest
    # neighbour is unambiguous at the cluster level.
    scale = 1.0 if metric == "cosine" else 20.0
    points = np.repeat(centres, per_cluster, axis=0) * scale
    points += rng.normal(scale=0.01 * scale, size=points.shape)
    labels = np.repeat(np.arange(clusters), per_cluster)
    return centres * scale, points.astype(np.float32), labels


# Derandomized: the same examples on every run, so a failure is reproduced by running again.
@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    seed=st.integers(0, 2**32 - 1),
    clusters=st.integers(2, 24),
    per_cluster=st.integers(1, 12),
    dim=st.sampled_from([8, 32, 128]),
    metric=st.sampled_from(METRICS),
)
def test_usearch_top1_agrees_with_exact_search_on_separated_data(
    tmp_path_factory, seed, clusters, per_cluster, dim, metric
):
    folder = tmp_path_factory.mktemp("agree")
    centres, points, labels = _clustered(seed, clusters, per_cluster, dim, metric)
    names = [f"c{label}-{i}" for i, label in enumerate(labels)]
    approx = UsearchIndex(folder / "u.index", dim, metric)
    exact = ExactNumpyIndex(folder / "e.index", dim, metric)
    approx.add(names, points)
    exact.add(names, points)
    rng = np.random.default_rng(seed + 1)
    for centre in centres:
        query = (centre + rng.normal(scale=0.005 * np.linalg.norm(centre), size=dim)).astype(np.float32)
        got, want = approx.search(query, 1)[0], exact.search(query, 1)[0]
        # A graph built by two threads once left cluster 5 unreachable ('c12' == 'c5'): indexes
        # this small are searched exhaustively, so the very template agrees, unless two members
        # are equally near at float32 precision.
        assert got.template_id.split("-")[0] == want.template_id.split("-")[0]
        assert got.template_id == want.template_id or got.distance == pytest.approx(want.distance, rel=1e-5)


# ---- usearch specifics: what the adapter promises beyond the port -------------------------


def _mapped_files() -> str:
    maps = Path("/proc/self/maps")
    if not maps.exists():
        pytest.skip("needs Linux /proc to see memory maps")
    return maps.read_text()


def test_usearch_opens_a_saved_index_memory_mapped_and_loads_it_only_to_write(index_path):
    index = UsearchIndex(index_path, DIM, "cosine")
    index.add(ids(50), vectors(50))
    index.save()
    reopened = UsearchIndex(index_path, DIM, "cosine")
    assert str(index_path.resolve()) in _mapped_files()
    assert reopened.search(vectors(1)[0], 1)[0].template_id == "t0"
    reopened.add(["late"], vectors(1, seed=8))
    gc.collect()
    assert str(index_path.resolve()) not in _mapped_files()  # the view was dropped to write
    assert reopened.search(vectors(1, seed=8)[0], 1)[0].template_id == "late"


def test_usearch_never_reuses_a_key_after_removal(index_path):
    index = UsearchIndex(index_path, DIM, "euclidean")
    index.add(["a", "b"], vectors(2))
    index.remove(["b"])
    index.add(["b"], vectors(1, seed=3))
    index.save()
    sidecar = json.loads(index_path.with_name(index_path.name + ".ids.json").read_text())
    assert sidecar["keys"] == {"a": 0, "b": 2}
    assert sidecar["next_key"] == 3
