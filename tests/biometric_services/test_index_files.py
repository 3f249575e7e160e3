"""Index files at rest (ADR 0014): encrypted, changed by appending, erased on removal, crash-safe.

Real usearch, real files, real encryption: nothing here is mocked. Faults are injected by
damaging files, by killing a writer process with SIGKILL, and (once) by making a write fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rfr.adapters.biometric_store import EncryptedFileStore, MasterKey
from rfr.adapters.indexes import registry as registry_module
from rfr.adapters.indexes import sealed_files, usearch_index
from rfr.adapters.indexes.exact_numpy import ExactNumpyIndex
from rfr.adapters.indexes.registry import INDEX_FILE, JOURNAL_FILE, IndexRegistry
from rfr.adapters.indexes.usearch_index import UsearchIndex
from rfr.application.errors import IndexCorrupted

DIM = 16
METRIC = "euclidean"
LIB = "lib-1"
ALG = "alg|v1"

FACTORIES = {
    "usearch": lambda path, dimension, metric: UsearchIndex(path, dimension, metric, threads=1),
    "exact": ExactNumpyIndex,
}


@pytest.fixture(params=sorted(FACTORIES))
def kind(request) -> str:
    return request.param


@pytest.fixture
def store(tmp_path: Path):
    opened = EncryptedFileStore.in_data_dir(tmp_path)
    yield opened
    opened.close()


def _vectors(n: int, seed: int, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def _registry(root: Path, kind: str, **options) -> IndexRegistry:
    return IndexRegistry(root, FACTORIES[kind], **options)


def _encodings(vector: np.ndarray) -> list[bytes]:
    """Every way a template could sit in a file: float32 (what the index keeps), and f16/f64."""
    v = np.asarray(vector)
    return [v.astype("<f4").tobytes(), v.astype("<f2").tobytes(), v.astype("<f8").tobytes()]


def _clear_text_holders(root: Path, vectors: dict[str, np.ndarray]) -> list[tuple[str, str]]:
    """(template, file) for every template whose bytes any file under ``root`` holds as is."""
    files = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    return [
        (t, str(p.relative_to(root)))
        for t, v in vectors.items()
        for p, data in files.items()
        if any(e in data for e in _encodings(v))
    ]


def _decrypted_holders(registry: IndexRegistry, vectors: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """Template id -> the files holding its float32 bytes once every file is decrypted."""
    contents = registry.decrypted_files()
    found: dict[str, list[str]] = {}
    for t, v in vectors.items():
        needle = v.astype("<f4").tobytes()
        found[t] = [str(p.relative_to(registry.root)) for p, data in contents.items() if needle in data]
    return found


def _written(root: Path, before: dict[Path, tuple[int, int]]) -> int:
    """Bytes written under ``root`` since ``before`` was taken: a file that kept its inode wrote
    what it grew by (files here are appended to or replaced whole), a new file all of it."""
    total = 0
    for path, (ino, size) in _stat_all(root).items():
        old = before.get(path)
        total += size - old[1] if old and old[0] == ino else size
    return total


def _stat_all(root: Path) -> dict[Path, tuple[int, int]]:
    return {p: (p.stat().st_ino, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


# -- nothing in clear -------------------------------------------------------------------------


def test_no_index_file_ever_holds_a_template_in_clear(tmp_path, kind):
    """After adds, removes, compactions and a reopen, no file holds a vector's bytes in clear;
    decrypted with the master key, the files do hold the live ones (the scan can see them)."""
    root = tmp_path / "indexes"
    registry = _registry(root, kind, journal_min_bytes=1_000, journal_max_bytes=1_000)
    vectors = {f"t{i}": v for i, v in enumerate(_vectors(20, seed=1))}
    ids = list(vectors)
    seen_generations = set()
    for start in range(0, 20, 4):
        batch = ids[start : start + 4]
        with registry.writing(LIB, ALG, DIM, METRIC) as index:
            index.add(batch, np.stack([vectors[t] for t in batch]))
        assert _clear_text_holders(root, vectors) == []
        snapshot = registry.folder(LIB, ALG) / INDEX_FILE
        seen_generations.add(sealed_files.peek_generation(snapshot, sealed_files.SNAPSHOT_MAGIC))
    assert len(seen_generations) > 1, "the journal should have been compacted at least once"
    registry.open(LIB, ALG, DIM, METRIC).remove(["t3", "t7"])
    assert _clear_text_holders(root, vectors) == []
    reopened = _registry(root, kind).open(LIB, ALG, DIM, METRIC)
    assert len(reopened) == 18 and reopened.search(vectors["t11"], 1)[0].template_id == "t11"
    assert _clear_text_holders(root, vectors) == []
    holders = _decrypted_holders(registry, vectors)
    assert all(holders[t] for t in ids if t not in ("t3", "t7"))
    assert holders["t3"] == [] and holders["t7"] == []


def test_without_the_master_key_the_files_do_not_open(tmp_path, kind):
    root = tmp_path / "indexes"
    registry = _registry(root, kind)
    registry.open(LIB, ALG, DIM, METRIC).add(["t1", "t2"], _vectors(2, seed=2))
    registry.open(LIB, ALG, DIM, METRIC).add(["t3"], _vectors(1, seed=3))  # a journal entry too
    other_key = MasterKey(os.urandom(32))
    with pytest.raises(IndexCorrupted, match="another master key"):
        IndexRegistry(root, FACTORIES[kind], master_key=other_key).open(LIB, ALG, DIM, METRIC)
    # Nor does a copy of the files under another index's name: the key is bound to the index.
    shutil.copytree(registry.folder(LIB, ALG), registry.folder("lib-2", ALG))
    (registry.folder("lib-2", ALG) / "index.json").unlink()
    with pytest.raises(IndexCorrupted, match="does not unwrap"):
        _registry(root, kind).open("lib-2", ALG, DIM, METRIC)
    # A bare adapter finds nothing it can read there either.
    with pytest.raises(IndexCorrupted):
        FACTORIES[kind](registry.folder(LIB, ALG) / INDEX_FILE, DIM, METRIC)
    assert len(_registry(root, kind).open(LIB, ALG, DIM, METRIC)) == 3


def test_an_index_of_the_earlier_clear_text_format_is_rebuilt_encrypted(tmp_path, store, kind):
    """Upgrade: an index folder written by the previous version (clear text) is rebuilt from
    the store, and its clear-text files are overwritten before they are deleted."""
    root = tmp_path / "indexes"
    vectors = _vectors(3, seed=4)
    for i, v in enumerate(vectors):
        store.put_template(f"t{i}", v, owner=LIB, algorithm_id=ALG)
    registry = _registry(root, kind, store=store)
    folder = registry.folder(LIB, ALG)
    old = FACTORIES[kind](folder / INDEX_FILE, DIM, METRIC)
    old.add(["t0", "t1", "t2"], vectors)
    old.save()
    meta = {"format": "rfr-index-registry/1", "library_id": LIB, "algorithm_id": ALG}
    (folder / "index.json").write_text(__import__("json").dumps(meta | {"dimension": DIM, "metric": METRIC}))
    assert _clear_text_holders(root, {"t0": vectors[0]})
    with pytest.raises(IndexCorrupted):
        _registry(root, kind).open(LIB, ALG, DIM, METRIC)
    index = registry.open(LIB, ALG, DIM, METRIC)
    assert len(index) == 3 and index.search(vectors[1], 1)[0].template_id == "t1"
    assert _clear_text_holders(root, dict(zip(["t0", "t1", "t2"], vectors, strict=True))) == []


# -- cost in proportion to the change -----------------------------------------------------------


def _bytes_to_add_one(tmp_path: Path, size: int, dim: int) -> tuple[int, int]:
    """(bytes written to add one template to a usearch index of ``size``, the snapshot's size)."""
    root = tmp_path / f"indexes-{size}"
    registry = IndexRegistry(root, FACTORIES["usearch"])
    vectors = _vectors(size + 1, seed=size, dim=dim)
    with registry.writing(LIB, ALG, dim, METRIC) as index:
        index.add([f"t{i}" for i in range(size)], vectors[:size])
    snapshot = registry.folder(LIB, ALG) / INDEX_FILE
    before = _stat_all(root)
    with registry.writing(LIB, ALG, dim, METRIC) as index:
        index.add(["new"], vectors[size:])
    assert _stat_all(root)[snapshot] == before[snapshot], "one add must not rewrite the snapshot"
    assert "new" in IndexRegistry(root, FACTORIES["usearch"]).open(LIB, ALG, dim, METRIC)
    return _written(root, before), before[snapshot][1]


def test_adding_one_template_writes_the_same_bytes_at_100_and_5000(tmp_path):
    """Counting, not timing: one add appends one entry, whatever the index holds."""
    small, small_snapshot = _bytes_to_add_one(tmp_path, 100, 128)
    large, large_snapshot = _bytes_to_add_one(tmp_path, 5_000, 128)
    assert small <= large <= 2 * small
    assert large < 2 * 128 * 4, f"{large} bytes to add one 512-byte template"
    assert large * 1_000 < large_snapshot and small * 50 < small_snapshot


def test_the_journal_is_compacted_past_its_share_of_the_snapshot(tmp_path, kind):
    root = tmp_path / "indexes"
    registry = _registry(root, kind, journal_fraction=0.1, journal_min_bytes=0)
    vectors = _vectors(60, seed=5)
    with registry.writing(LIB, ALG, DIM, METRIC) as index:
        index.add([f"t{i}" for i in range(40)], vectors[:40])
    folder = registry.folder(LIB, ALG)
    snapshot_size = (folder / INDEX_FILE).stat().st_size
    first = sealed_files.peek_generation(folder / INDEX_FILE, sealed_files.SNAPSHOT_MAGIC)
    lengths = []
    for i in range(40, 60):
        registry.open(LIB, ALG, DIM, METRIC).add([f"t{i}"], vectors[i : i + 1])
        lengths.append((folder / JOURNAL_FILE).stat().st_size - sealed_files.JOURNAL_HEADER_BYTES)
        if sealed_files.peek_generation(folder / INDEX_FILE, sealed_files.SNAPSHOT_MAGIC) != first:
            break
    else:
        pytest.fail("the journal was never compacted")
    assert lengths[-1] == 0 and max(lengths) <= 0.1 * snapshot_size + 200
    reopened = _registry(root, kind).open(LIB, ALG, DIM, METRIC)
    assert len(reopened) == 40 + len(lengths)


# -- a removal leaves nothing behind ------------------------------------------------------


@pytest.mark.parametrize("purge", ["fillers", "rebuild"])
def test_R05_after_a_remove_returns_no_file_holds_the_removed_vector(tmp_path, kind, purge, monkeypatch):
    """Decrypting every file that is left with the master key finds no byte of the removed
    vector; the old snapshot, kept here by a hard link as a filesystem might keep its blocks,
    has lost its key; and searches still agree with exact search."""
    if purge == "rebuild":
        if kind != "usearch":
            pytest.skip("only usearch chooses between overwriting slots and rebuilding")
        monkeypatch.setattr(usearch_index, "PURGE_REBUILD_MIN", 0)
        monkeypatch.setattr(usearch_index, "PURGE_REBUILD_FRACTION", 0.0)
    root = tmp_path / "indexes"
    registry = _registry(root, kind)
    vectors = _vectors(30, seed=6)
    named = {f"t{i}": v for i, v in enumerate(vectors)}
    with registry.writing(LIB, ALG, DIM, METRIC) as index:
        index.add([f"t{i}" for i in range(20)], vectors[:20])
    for i in range(20, 30):  # these sit in journal entries, not in the snapshot
        registry.open(LIB, ALG, DIM, METRIC).add([f"t{i}"], vectors[i : i + 1])
    old_snapshot = tmp_path / "kept-by-the-filesystem"
    os.link(registry.folder(LIB, ALG) / INDEX_FILE, old_snapshot)
    for doomed in (["t4"], ["t25", "t9"], ["t26"]):  # from the snapshot, the journal, both
        registry.open(LIB, ALG, DIM, METRIC).remove(doomed)
        holders = _decrypted_holders(registry, named)
        assert all(holders[t] == [] for t in doomed), holders
    assert all(holders[t] for t in named if t not in ("t4", "t25", "t9", "t26"))
    with pytest.raises(IndexCorrupted):
        sealed_files.read_snapshot(old_snapshot, registry._master, registry.key_name(LIB, ALG))
    index = _registry(root, kind).open(LIB, ALG, DIM, METRIC)
    exact = ExactNumpyIndex(tmp_path / "exact.index", DIM, METRIC)
    live = [t for t in named if t in index]
    exact.add(live, np.stack([named[t] for t in live]))
    for query in _vectors(10, seed=7):
        found, expected = index.search(query, 3), exact.search(query, 3)
        assert [h.template_id for h in found] == [h.template_id for h in expected]


def test_R05_removals_and_adds_in_turn_never_leave_a_removed_vector(tmp_path):
    """usearch reuses the slots freed by removals for later adds: over many rounds of both,
    every removed vector stays out of the decrypted files."""
    root = tmp_path / "indexes"
    registry = IndexRegistry(root, FACTORIES["usearch"])
    vectors = _vectors(200, seed=8)
    named = {f"t{i}": v for i, v in enumerate(vectors)}
    registry.open(LIB, ALG, DIM, METRIC).add([f"t{i}" for i in range(100)], vectors[:100])
    removed: list[str] = []
    rng = np.random.default_rng(9)
    for round_ in range(10):
        index = registry.open(LIB, ALG, DIM, METRIC)
        live = [t for t in named if t in index]
        doomed = [str(t) for t in rng.choice(live, size=5, replace=False)]
        index.remove(doomed)
        removed += doomed
        fresh = [f"t{100 + 10 * round_ + j}" for j in range(10)]
        index.add(fresh, np.stack([named[t] for t in fresh]))
    holders = _decrypted_holders(registry, {t: named[t] for t in removed})
    assert all(not files for files in holders.values()), holders
    assert len(registry.open(LIB, ALG, DIM, METRIC)) == 100 - 50 + 100


def test_R05_a_removal_cut_short_before_compacting_is_ended_by_the_next_opener(tmp_path, kind, monkeypatch):
    """The removal's entry is durable before the snapshot is rewritten; if the rewrite fails
    (the process dies), whoever opens the index next finishes it."""
    root = tmp_path / "indexes"
    registry = _registry(root, kind)
    vectors = _vectors(5, seed=10)
    registry.open(LIB, ALG, DIM, METRIC).add([f"t{i}" for i in range(5)], vectors)

    def fail(*args, **kwargs):
        raise OSError("disk gone")

    with monkeypatch.context() as patch:
        patch.setattr(sealed_files, "write_snapshot", fail)
        with pytest.raises(OSError, match="disk gone"):
            registry.open(LIB, ALG, DIM, METRIC).remove(["t2"])
    assert _decrypted_holders(registry, {"t2": vectors[2]})["t2"], "the old snapshot still holds it"
    reader = _registry(root, kind).open(LIB, ALG, DIM, METRIC)
    assert "t2" not in reader and len(reader) == 4
    assert _decrypted_holders(registry, {"t2": vectors[2]})["t2"] == []


def test_R05_a_snapshot_half_written_by_a_killed_compaction_is_destroyed_by_the_next(tmp_path, kind):
    """A compaction killed while writing leaves its temporary snapshot, which may hold a vector
    removed later: the next compaction destroys it before it writes its own."""
    root = tmp_path / "indexes"
    registry = _registry(root, kind)
    vectors = _vectors(3, seed=23)
    registry.open(LIB, ALG, DIM, METRIC).add(["t0", "t1", "t2"], vectors)
    folder = registry.folder(LIB, ALG)
    shutil.copy(folder / INDEX_FILE, folder / ".templates.index.killed.tmp")
    registry.open(LIB, ALG, DIM, METRIC).remove(["t1"])
    assert not (folder / ".templates.index.killed.tmp").exists()
    assert _decrypted_holders(registry, {"t1": vectors[1]})["t1"] == []


def test_a_journal_left_by_a_compaction_cut_short_is_ignored_and_replaced(tmp_path, kind):
    """A crash between moving the new snapshot and the new journal into place leaves the old
    journal beside the new snapshot: it is not replayed, and the next opener replaces it."""
    root = tmp_path / "indexes"
    registry = _registry(root, kind)
    vectors = _vectors(4, seed=11)
    registry.open(LIB, ALG, DIM, METRIC).add(["t0", "t1"], vectors[:2])
    registry.open(LIB, ALG, DIM, METRIC).add(["t2"], vectors[2:3])
    journal = registry.folder(LIB, ALG) / JOURNAL_FILE
    old_journal = journal.read_bytes()
    registry.open(LIB, ALG, DIM, METRIC).remove(["t0"])  # compacts
    journal.write_bytes(old_journal)
    index = _registry(root, kind).open(LIB, ALG, DIM, METRIC)
    assert sorted(t for t in ("t0", "t1", "t2") if t in index) == ["t1", "t2"]
    assert journal.read_bytes() != old_journal
    assert _decrypted_holders(registry, {"t0": vectors[0]})["t0"] == []


# -- crashes --------------------------------------------------------------------------------------


def _last_entry_offset(journal: bytes) -> int:
    offset = last = sealed_files.JOURNAL_HEADER_BYTES
    while offset < len(journal):
        last = offset
        offset += 4 + int.from_bytes(journal[offset : offset + 4], "big")
    return last


@pytest.mark.parametrize("damage", ["cut short", "zeroed", "zeros after"])
def test_a_torn_last_journal_entry_is_dropped_and_cut_off_by_the_next_write(tmp_path, kind, damage):
    """What a crash can leave at the journal's end: an entry cut short (killed mid-write), an
    entry of the right length but zeros (power lost after the size grew, before the data was
    on disk), zeros after the last entry. The entry is dropped, nothing acknowledged is."""
    root = tmp_path / "indexes"
    registry = _registry(root, kind)
    vectors = _vectors(5, seed=12)
    for i in range(4):
        registry.open(LIB, ALG, DIM, METRIC).add([f"t{i}"], vectors[i : i + 1])
    journal = registry.folder(LIB, ALG) / JOURNAL_FILE
    data = journal.read_bytes()
    last = _last_entry_offset(data)
    if damage == "cut short":
        journal.write_bytes(data[:-7])
    elif damage == "zeroed":
        journal.write_bytes(data[: last + 4] + b"\x00" * (len(data) - last - 4))
    else:
        journal.write_bytes(data + b"\x00" * 300)
    reader = _registry(root, kind)
    index = reader.open(LIB, ALG, DIM, METRIC)
    expected = ["t0", "t1", "t2", "t3"] if damage == "zeros after" else ["t0", "t1", "t2"]
    assert sorted(t for t in [f"t{i}" for i in range(4)] if t in index) == expected
    writer = _registry(root, kind)
    writer.open(LIB, ALG, DIM, METRIC).add(["t4"], vectors[4:5])
    reopened = _registry(root, kind).open(LIB, ALG, DIM, METRIC)
    assert sorted(t for t in [f"t{i}" for i in range(5)] if t in reopened) == [*expected, "t4"]
    # The reader that saw the torn entry catches up past it, to the entry that replaced it.
    assert "t4" in reader.open(LIB, ALG, DIM, METRIC) and "t4" in index


def test_a_damaged_journal_entry_followed_by_others_is_rebuilt_from_the_store(tmp_path, store, kind):
    root = tmp_path / "indexes"
    vectors = _vectors(4, seed=13)
    for i, v in enumerate(vectors):
        store.put_template(f"t{i}", v, owner=LIB, algorithm_id=ALG)
    registry = _registry(root, kind, store=store)
    for i in range(4):
        registry.open(LIB, ALG, DIM, METRIC).add([f"t{i}"], vectors[i : i + 1])
    journal = registry.folder(LIB, ALG) / JOURNAL_FILE
    data = bytearray(journal.read_bytes())
    data[sealed_files.JOURNAL_HEADER_BYTES + 40] ^= 0xFF  # inside the first entry
    journal.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupted, match="damaged"):
        _registry(root, kind).open(LIB, ALG, DIM, METRIC)
    index = _registry(root, kind, store=store).open(LIB, ALG, DIM, METRIC)
    assert len(index) == 4 and index.search(vectors[2], 1)[0].template_id == "t2"


def test_a_damaged_snapshot_is_rebuilt_from_the_store(tmp_path, store, kind):
    root = tmp_path / "indexes"
    vectors = _vectors(6, seed=14)
    for i, v in enumerate(vectors):
        store.put_template(f"t{i}", v, owner=LIB, algorithm_id=ALG)
    registry = _registry(root, kind, store=store)
    registry.rebuild(LIB, ALG, DIM, METRIC)
    snapshot = registry.folder(LIB, ALG) / INDEX_FILE
    data = bytearray(snapshot.read_bytes())
    data[-30] ^= 0x01  # one bit in the last chunk
    snapshot.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupted, match="does not decrypt"):
        _registry(root, kind).open(LIB, ALG, DIM, METRIC)
    index = _registry(root, kind, store=store).open(LIB, ALG, DIM, METRIC)
    assert len(index) == 6 and index.search(vectors[5], 1)[0].template_id == "t5"


WRITER = r"""
import sys
from pathlib import Path

import onnxruntime  # noqa: F401  (before usearch; see usearch_index.py)
import numpy as np

from rfr.adapters.indexes.registry import IndexRegistry
from rfr.adapters.indexes.usearch_index import UsearchIndex

root, start = Path(sys.argv[1]), int(sys.argv[2])
registry = IndexRegistry(root, lambda p, d, m: UsearchIndex(p, d, m, threads=1), journal_min_bytes=20_000)
i = start
while True:
    vector = np.random.default_rng(i).normal(size=(1, 16)).astype(np.float32)
    with registry.writing("lib-1", "alg|v1", 16, "euclidean") as index:
        index.add([f"t{i}"], vector)
    print(f"t{i}", flush=True)  # acknowledged: the write returned
    i += 1
"""


def test_a_writer_killed_mid_write_loses_nothing_it_acknowledged(tmp_path):
    """SIGKILL at arbitrary moments of a stream of writes (appends and compactions): every
    write that returned is there after a restart, and the index opens and takes writes."""
    root = tmp_path / "indexes"
    acknowledged: list[str] = []
    rng = np.random.default_rng(15)
    cwd = Path(__file__).resolve().parents[2]
    for round_ in range(4):
        start = 1_000_000 * round_
        log = tmp_path / f"writer-{round_}.log"
        with log.open("wb") as errors:
            proc = subprocess.Popen(
                [sys.executable, "-c", WRITER, str(root), str(start)],
                stdout=subprocess.PIPE,
                stderr=errors,
                cwd=cwd,
                text=True,
            )
        assert proc.stdout is not None
        first = proc.stdout.readline()  # started and wrote once: now kill it at a random moment
        assert first.strip() == f"t{start}", log.read_text()
        time.sleep(float(rng.uniform(0.05, 0.6)))
        proc.send_signal(signal.SIGKILL)
        # Through the same stream: readline may already have buffered more lines.
        out = proc.stdout.read()
        proc.stdout.close()
        assert proc.wait(timeout=30) == -signal.SIGKILL
        acknowledged += [first.strip(), *out.split()]
    index = IndexRegistry(root, FACTORIES["usearch"]).open(LIB, ALG, DIM, METRIC)
    missing = [t for t in acknowledged if t not in index]
    assert missing == [] and len(acknowledged) > 8
    assert len(index) - len(acknowledged) <= 4  # at most one unacknowledged write per kill
    probe = np.random.default_rng(int(acknowledged[-1][1:])).normal(size=(1, 16)).astype(np.float32)
    assert index.search(probe[0], 1)[0].template_id == acknowledged[-1]
    IndexRegistry(root, FACTORIES["usearch"]).open(LIB, ALG, DIM, METRIC).add(["after"], _vectors(1, seed=16))


# -- position, readers, threads -----------------------------------------------------------------


def test_a_position_is_saved_with_the_changes_and_survives_compaction(tmp_path, kind):
    root = tmp_path / "indexes"
    registry = _registry(root, kind)
    assert registry.open(LIB, ALG, DIM, METRIC).position is None
    with registry.writing(LIB, ALG, DIM, METRIC) as index:
        index.add(["t0"], _vectors(1, seed=17))
        index.position = 41
    with registry.writing(LIB, ALG, DIM, METRIC) as index:
        index.add(["t1"], _vectors(1, seed=18))
        index.position = 42  # in a journal entry
    assert _registry(root, kind).open(LIB, ALG, DIM, METRIC).position == 42
    with registry.writing(LIB, ALG, DIM, METRIC) as index:
        index.remove(["t0"])  # compacts: the position moves into the snapshot
        index.position = 43
    assert _registry(root, kind).open(LIB, ALG, DIM, METRIC).position == 43
    with registry.writing(LIB, ALG, DIM, METRIC) as index:
        index.position = 44  # a position alone is a change too
    assert _registry(root, kind).open(LIB, ALG, DIM, METRIC).position == 44
    with pytest.raises(TypeError), registry.writing(LIB, ALG, DIM, METRIC) as index:
        index.position = "45"
    assert _registry(root, kind).open(LIB, ALG, DIM, METRIC).position == 44


def test_a_reader_applies_only_the_entries_it_has_not_seen(tmp_path, kind, monkeypatch):
    """Another process's add reaches a reader's next open through the journal's new entries
    alone; the snapshot is read again only after a compaction."""
    root = tmp_path / "indexes"
    reader, writer = _registry(root, kind), _registry(root, kind)
    writer.open(LIB, ALG, DIM, METRIC).add([f"t{i}" for i in range(10)], _vectors(10, seed=19))
    assert len(reader.open(LIB, ALG, DIM, METRIC)) == 10
    loads = []
    real = sealed_files.read_snapshot
    monkeypatch.setattr(sealed_files, "read_snapshot", lambda *a, **k: loads.append(a[0]) or real(*a, **k))
    writer.open(LIB, ALG, DIM, METRIC).add(["late"], _vectors(1, seed=20))
    index = reader.open(LIB, ALG, DIM, METRIC)
    assert "late" in index and loads == []
    writer.open(LIB, ALG, DIM, METRIC).remove(["t1"])
    assert "t1" not in reader.open(LIB, ALG, DIM, METRIC) and len(loads) == 1
    assert reader.open(LIB, ALG, DIM, METRIC) is index


def test_searches_in_other_threads_run_while_a_thread_writes(tmp_path, kind):
    root = tmp_path / "indexes"
    registry = _registry(root, kind, journal_min_bytes=4_000, journal_max_bytes=4_000)
    vectors = _vectors(400, seed=21)
    registry.open(LIB, ALG, DIM, METRIC).add([f"t{i}" for i in range(100)], vectors[:100])
    errors: list[BaseException] = []
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                index = registry.open(LIB, ALG, DIM, METRIC)
                hit = index.search(vectors[7], 1)[0]
                assert hit.template_id == "t7"
        except BaseException as exc:  # reported below
            errors.append(exc)

    searchers = [threading.Thread(target=search) for _ in range(3)]
    for t in searchers:
        t.start()
    try:
        for i in range(100, 400, 10):
            with registry.writing(LIB, ALG, DIM, METRIC) as index:
                index.add([f"t{j}" for j in range(i, i + 10)], vectors[i : i + 10])
                index.remove([f"t{i - 50}"])
    finally:
        stop.set()
        for t in searchers:
            t.join(30)
    assert errors == []
    assert len(_registry(root, kind).open(LIB, ALG, DIM, METRIC)) == 400 - 30


def test_the_adapter_is_never_asked_to_save(tmp_path, kind):
    """The path the factory gets stays empty: the registry persists through dump/load only."""
    root = tmp_path / "indexes"
    registry = _registry(root, kind)
    registry.open(LIB, ALG, DIM, METRIC).add(["t0", "t1"], _vectors(2, seed=22))
    registry.open(LIB, ALG, DIM, METRIC).remove(["t0"])
    names = sorted(p.name for p in registry.folder(LIB, ALG).iterdir())
    assert names == ["index.json", "templates.index", "templates.journal", "write.lock"]
    assert registry_module.MEMORY_ONLY not in names


def test_an_index_emptied_by_removals_reopens_empty(tmp_path, kind):
    root = tmp_path / "indexes"
    registry = _registry(root, kind)
    vectors = _vectors(3, seed=24)
    registry.open(LIB, ALG, DIM, METRIC).add(["t0", "t1", "t2"], vectors)
    registry.open(LIB, ALG, DIM, METRIC).remove(["t0", "t1", "t2"])
    reopened = _registry(root, kind).open(LIB, ALG, DIM, METRIC)
    assert len(reopened) == 0 and reopened.search(vectors[0], 2) == []
    assert _decrypted_holders(registry, dict(zip(["t0", "t1", "t2"], vectors, strict=True))) == {
        "t0": [],
        "t1": [],
        "t2": [],
    }
