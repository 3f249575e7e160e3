"""Index writes across processes (R-05): an erased template never comes back from a stale copy.

The API process and the ``rfr worker`` process write the same index files. Each test here
runs the writers as real processes (a small command loop in a child interpreter, driven
step by step over a pipe) on one registry folder, so the file locks and the files are the
real ones. R-05 is checked on the bytes: the erased vector must be in no file under the
index's folder, not only absent from ``len`` and ``in``; the registry's files are encrypted,
so they are decrypted with the master key before they are searched (ADR 0014).
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from service_builders import World, gallery_items

from rfr.adapters.indexes.exact_numpy import ExactNumpyIndex
from rfr.adapters.indexes.registry import IndexBusy, IndexRegistry
from rfr.adapters.indexes.usearch_index import UsearchIndex

DIM = 16
METRIC = "euclidean"
LIB = "lib-1"
ALG = "alg|v1"
REPLY_TIMEOUT = 20.0

# The child: one IndexRegistry per (root, adapter), as one process of the product holds one.
# "open" keeps the index it gets; "add" writes through that kept index, however stale (the
# old call-site pattern). "raw_*" use the adapter without the registry, on its own clear-text
# files in ``<root>/bare`` (the registry's files are encrypted; a bare adapter cannot read
# them), keeping the copy in memory across commands: they reproduce the lost update of
# whole-file saves that the lock prevents.
CHILD = r"""
import json, sys, time
from pathlib import Path

import onnxruntime  # noqa: F401  (before usearch; see usearch_index.py)
import numpy as np

from rfr.adapters.indexes.exact_numpy import ExactNumpyIndex
from rfr.adapters.indexes.registry import INDEX_FILE, IndexRegistry
from rfr.adapters.indexes.usearch_index import UsearchIndex

FACTORIES = {
    "usearch": lambda path, dimension, metric: UsearchIndex(path, dimension, metric, threads=1),
    "exact": ExactNumpyIndex,
}
registries = {}
held = {}
raw = {}


def reply(**fields):
    print(json.dumps(fields), flush=True)


for line in sys.stdin:
    cmd = json.loads(line)
    key = (cmd["root"], cmd["kind"])
    if key not in registries:
        registries[key] = IndexRegistry(Path(cmd["root"]), FACTORIES[cmd["kind"]], lock_timeout=10)
    registry = registries[key]
    where = (cmd["library"], cmd["algorithm"], cmd["dimension"], cmd["metric"])
    ids = cmd.get("ids", [])
    vectors = np.asarray(cmd.get("vectors", []), dtype=np.float32).reshape(-1, cmd["dimension"])
    op = cmd["op"]
    if op == "open":
        held[key] = registry.open(*where)
    index = held.get(key)
    if op == "open":
        pass
    elif op == "add":
        # On the index this process opened earlier, however long ago: the stale copy.
        index.add(ids, vectors)
        index.save()
    elif op == "write_add":
        with registry.writing(*where) as writing:
            writing.add(ids, vectors)
    elif op == "write_remove":
        with registry.writing(*where) as writing:
            writing.remove(ids)
    elif op == "hold_until_told":
        with registry.writing(*where):
            reply(held=True)
            sys.stdin.readline()
    elif op == "hold_forever":
        with registry.writing(*where) as writing:
            writing.remove(ids)
            reply(held=True)
            time.sleep(600)
    elif op in ("raw_open", "raw_add", "raw_remove"):
        if op == "raw_open" or key not in raw:
            path = Path(cmd["root"]) / "bare" / INDEX_FILE
            raw[key] = FACTORIES[cmd["kind"]](path, cmd["dimension"], cmd["metric"])
        index = raw[key]
        if op == "raw_add":
            index.add(ids, vectors)
            index.save()
        elif op == "raw_remove":
            index.remove(ids)
            index.save()
    else:
        raise ValueError(op)
    reply(present=[i for i in cmd.get("ask", []) if i in index] if index is not None else [])
"""


class Child:
    """A writer process on the index folder, doing one command at a time when told."""

    def __init__(self, log: Path) -> None:
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=Path(__file__).resolve().parents[2],
            text=True,
        )
        self.log = log

    def send(self, op: str, root: Path, kind: str, **fields) -> None:
        cmd = {"op": op, "root": str(root), "kind": kind, "library": LIB, "algorithm": ALG}
        cmd |= {"dimension": DIM, "metric": METRIC}
        for name, value in fields.items():
            cmd[name] = value.tolist() if isinstance(value, np.ndarray) else value
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], REPLY_TIMEOUT)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            raise AssertionError(f"the child process did not answer: {self.log.read_text()[-2000:]}")
        return json.loads(line)

    def __call__(self, op: str, root: Path, kind: str, **fields) -> dict:
        self.send(op, root, kind, **fields)
        return self.receive()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Child, Child]]:
    """The API process and the worker process, shared by this module's tests."""
    logs = tmp_path_factory.mktemp("index-writers")
    api, worker = Child(logs / "api.log"), Child(logs / "worker.log")
    yield api, worker
    api.close()
    worker.close()


FACTORIES = {
    "usearch": lambda path, dimension, metric: UsearchIndex(path, dimension, metric, threads=1),
    "exact": ExactNumpyIndex,
}


@pytest.fixture(params=sorted(FACTORIES))
def kind(request) -> str:
    return request.param


def _vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)


def _files_holding(folder: Path, vector: np.ndarray) -> list[str]:
    """The files under an index root that hold ``vector``, in clear or once decrypted."""
    needle = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
    contents = IndexRegistry(folder, ExactNumpyIndex).decrypted_files()
    return sorted(str(p.relative_to(folder)) for p, content in contents.items() if needle in content)


def _bare_files_holding(folder: Path, vector: np.ndarray) -> list[str]:
    needle = np.ascontiguousarray(vector, dtype=np.float32).tobytes()
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sorted(str(p.relative_to(folder)) for p in files if needle in p.read_bytes())


def _seed(root: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Templates "victim" and "kept" saved in the index; returns their vectors."""
    vectors = _vectors(2, seed=1)
    with IndexRegistry(root, FACTORIES[kind]).writing(LIB, ALG, DIM, METRIC) as index:
        index.add(["victim", "kept"], vectors)
    return vectors[0], vectors[1]


def test_without_the_lock_a_stale_copy_brings_an_erased_template_back(tmp_path, processes, kind):
    """The race itself, with the adapters used bare: this is what the registry must prevent."""
    api, worker = processes
    root = tmp_path / "indexes"
    bare = root / "bare" / "templates.index"
    vectors = _vectors(2, seed=1)
    victim = vectors[0]
    seeded = FACTORIES[kind](bare, DIM, METRIC)
    seeded.add(["victim", "kept"], vectors)
    seeded.save()
    api("raw_open", root, kind)
    # An earlier write of its own: the API's copy now lives in memory, as after any save.
    api("raw_add", root, kind, ids=["early"], vectors=_vectors(1, seed=10))
    worker("raw_open", root, kind)
    worker("raw_remove", root, kind, ids=["victim"])
    api("raw_add", root, kind, ids=["new"], vectors=_vectors(1, seed=2))
    index = FACTORIES[kind](bare, DIM, METRIC)
    assert "victim" in index and "new" in index
    assert _bare_files_holding(bare.parent, victim), "the lost update should write the removed vector back"


@pytest.mark.parametrize("api_writes", ["add", "write_add"])
def test_R05_a_writer_with_a_stale_copy_cannot_bring_an_erased_template_back(
    tmp_path, processes, kind, api_writes
):
    """R-05: API opens (stamp T1), worker erases and saves (T2), API adds and saves.

    ``add`` is the old call-site pattern (``open`` then ``add`` and ``save`` on the cached
    index); ``write_add`` is ``writing()``. Both start from the files, under the lock.
    """
    api, worker = processes
    root = tmp_path / "indexes"
    victim, kept = _seed(root, kind)
    assert api("open", root, kind, ask=["victim"])["present"] == ["victim"]
    # An earlier write of its own: the API's cached copy now lives in memory.
    api(api_writes, root, kind, ids=["early"], vectors=_vectors(1, seed=10))
    worker("write_remove", root, kind, ids=["victim"])
    added = _vectors(1, seed=3)
    after = api(api_writes, root, kind, ids=["new"], vectors=added, ask=["victim", "kept", "new"])
    assert after["present"] == ["kept", "new"]
    index = IndexRegistry(root, FACTORIES[kind]).open(LIB, ALG, DIM, METRIC)
    assert "victim" not in index and len(index) == 3
    assert index.search(added[0], 1)[0].template_id == "new"
    assert index.search(kept, 1)[0].template_id == "kept"
    assert _files_holding(root, victim) == []
    assert _files_holding(root, kept), "the check must be able to see a vector that is there"


def test_a_stale_cached_index_is_reopened_before_a_write(tmp_path, processes, kind):
    _, worker = processes
    root = tmp_path / "indexes"
    victim, _ = _seed(root, kind)
    registry = IndexRegistry(root, FACTORIES[kind])
    cached = registry.open(LIB, ALG, DIM, METRIC)
    assert "victim" in cached
    worker("write_remove", root, kind, ids=["victim"])
    worker("write_add", root, kind, ids=["theirs"], vectors=_vectors(1, seed=4))
    # Nothing read the files since: the cached copy in this process is stale.
    assert "victim" in cached and "theirs" not in cached
    with registry.writing(LIB, ALG, DIM, METRIC) as index:
        assert "victim" not in index and "theirs" in index
        index.add(["ours"], _vectors(1, seed=5))
    # This process's own write is what it searches next, through the index it already held.
    assert "victim" not in cached and all(t in cached for t in ("theirs", "ours", "kept"))
    assert registry.open(LIB, ALG, DIM, METRIC) is cached
    assert _files_holding(root, victim) == []


def test_a_writer_killed_while_holding_the_lock_does_not_block_the_next(tmp_path, kind):
    """The OS releases a dead process's flock; what it had not saved is simply not there."""
    root = tmp_path / "indexes"
    victim, _ = _seed(root, kind)
    holder = Child(tmp_path / "holder.log")
    try:
        assert holder("hold_forever", root, kind, ids=["victim"]) == {"held": True}
        lock_path = IndexRegistry(root, FACTORIES[kind]).lock_path(LIB, ALG)
        with lock_path.open("rb") as fh, pytest.raises(BlockingIOError):
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with (
            pytest.raises(IndexBusy),
            IndexRegistry(root, FACTORIES[kind], lock_timeout=0.2).writing(LIB, ALG, DIM, METRIC),
        ):
            pass
        holder.proc.send_signal(signal.SIGKILL)
        assert holder.proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        holder.close()
    started = time.monotonic()
    registry = IndexRegistry(root, FACTORIES[kind], lock_timeout=5)
    with registry.writing(LIB, ALG, DIM, METRIC) as index:
        waited = time.monotonic() - started
        # The killed writer's removal was never saved: the index is as it was before.
        assert "victim" in index and "kept" in index
        index.remove(["victim"])
    assert waited < 1.0
    assert "victim" not in registry.open(LIB, ALG, DIM, METRIC)
    assert _files_holding(root, victim) == []


def test_a_writer_waiting_on_a_dropped_lock_file_locks_the_new_one(tmp_path):
    """``drop`` deletes the lock file while holding it; a waiter must not keep the orphan."""
    registry = IndexRegistry(tmp_path, ExactNumpyIndex, lock_timeout=10)
    lock_path = registry.lock_path(LIB, ALG)
    lock_path.parent.mkdir(parents=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    inside = threading.Event()
    leave = threading.Event()

    def write() -> None:
        with registry.writing(LIB, ALG, DIM, METRIC) as index:
            index.add(["t"], _vectors(1, seed=6))
            inside.set()
            leave.wait(10)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(0.2)
        assert not inside.is_set()
        lock_path.unlink()  # what drop does, still holding the lock
        os.close(fd)
        assert inside.wait(10)
        with lock_path.open("rb") as fh, pytest.raises(BlockingIOError):
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        leave.set()
        writer.join(10)
    assert "t" in IndexRegistry(tmp_path, ExactNumpyIndex).open(LIB, ALG, DIM, METRIC)


def test_writing_again_inside_a_write_is_refused_not_deadlocked(tmp_path):
    registry = IndexRegistry(tmp_path, ExactNumpyIndex, lock_timeout=5)
    with registry.writing(LIB, ALG, DIM, METRIC) as index:
        with pytest.raises(RuntimeError, match="already writing"):
            registry.open(LIB, ALG, DIM, METRIC).add(["x"], _vectors(1, seed=7))
        with pytest.raises(RuntimeError, match="already writing"):
            registry.drop(LIB, ALG)
        index.add(["y"], _vectors(1, seed=8))
    assert "y" in registry.open(LIB, ALG, DIM, METRIC)


def test_a_failed_write_saves_nothing_and_its_index_cannot_be_used_later(tmp_path, kind):
    registry = IndexRegistry(tmp_path, FACTORIES[kind])
    victim, _ = _seed(tmp_path, kind)
    with pytest.raises(ZeroDivisionError), registry.writing(LIB, ALG, DIM, METRIC) as index:
        index.remove(["victim"])
        index.add(["z"], _vectors(1, seed=9))
        _ = 1 / 0
    fresh = IndexRegistry(tmp_path, FACTORIES[kind]).open(LIB, ALG, DIM, METRIC)
    assert "victim" in fresh and "z" not in fresh
    assert "victim" in registry.open(LIB, ALG, DIM, METRIC)
    with registry.writing(LIB, ALG, DIM, METRIC) as kept_too_long:
        pass
    with pytest.raises(RuntimeError, match="write is over"):
        kept_too_long.remove(["victim"])
    assert _files_holding(tmp_path, victim)


def test_R05_enrolment_does_not_index_a_template_a_concurrent_purge_erased(world: World, photos, tmp_path):
    """R-05: enrolment indexes after its save; a purge may erase the template in between.

    Another process holds the index lock, so the enrolment waits in its index update after
    saving; meanwhile the template is erased from the store, as a purge does before it locks
    the index. Once the lock is free the enrolment must not put the erased template back.
    """
    _, library = world.library()
    library_id = str(library.id)
    embedder = world.bio.engine.embedder
    root, kind = world.bio.indexes.root, "usearch"
    holder = Child(tmp_path / "holder.log")
    enrolled: list = []
    try:
        holder.send(
            "hold_until_told",
            root,
            kind,
            library=library_id,
            algorithm=world.bio.algorithm_id,
            dimension=embedder.dimension,
            metric=embedder.metric,
        )
        assert holder.receive() == {"held": True}

        def enrol() -> None:
            enrolled.append(
                world.enrolment.enrol("admin", library_id, gallery_items(photos, ["adam_sandler"]))
            )

        enrolling = threading.Thread(target=enrol)
        enrolling.start()
        deadline = time.monotonic() + REPLY_TIMEOUT
        templates: dict[str, str] = {}
        while not templates and time.monotonic() < deadline:
            time.sleep(0.02)
            images = world.app.library_images
            ids = [r.image_id for r in images.page(str(library.id), 0, 10)]
            templates = {
                i: t[world.bio.algorithm_id]
                for i, t in images.templates_of(ids).items()
                if world.bio.algorithm_id in t
            }
        assert len(templates) == 2 and enrolling.is_alive(), "the enrolment should wait for the index lock"
        victim, kept = sorted(templates.values())
        vector = world.bio.store.get_template(victim).vector
        assert world.bio.store.erase(victim)
        holder.proc.stdin.write("release\n")
        holder.proc.stdin.flush()
        enrolling.join(REPLY_TIMEOUT)
        assert not enrolling.is_alive() and len(enrolled) == 1
    finally:
        holder.close()
    index = world.bio.indexes.open(library_id, world.bio.algorithm_id, embedder.dimension, embedder.metric)
    assert victim not in index and kept in index
    assert _files_holding(root, vector) == []
