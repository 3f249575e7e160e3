"""A process killed with SIGKILL in the middle of a projection rebuild, of an index catch-up or of an
enrolment's save, then restarted, leaves store, events, projections and index agreeing:
nothing lost, nothing duplicated (issue 9).

Each case runs the real command in a child interpreter (``killable_child.py``) on a SQLite data
folder. The child stops, alive, at a named point of the command (a test-only wrapper it puts
around a product function tells the test through a pipe, then waits), and the test kills it
there with SIGKILL: every kill point is reached every time, none depends on timing. The index
catch-up is also killed before each of its writes to the index's files in turn, however many
there are. Then the test restarts (a new application and a new index registry over the same
files) and checks:

- projections: their tables equal what they were before the killed command and what a rebuild
  from zero gives, each projection's position is the log's head, the audit chain verifies, and
  the store takes the next write;
- index: a search finds the nearest enrolled image (one the index had missed), the index holds
  exactly the templates the library images projection lists for the library, each once, in
  this process and as its files hold them for another; its saved position covers every
  template event; no index file holds a purged template's vector (R-05).

The projection rebuilds replay a log of a few thousand events with a page cache of 32 pages in
the child, so the killed transaction has spilled uncommitted pages into the WAL file (checked)
and SQLite must ignore them on restart.

Elsewhere: an enrolment or probe submission killed before or after its save
(``tests/retention/test_crash_leaves_no_orphan.py``), index writers killed at random moments
(``tests/biometric_services/test_index_files.py``).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import attrs
import domain_builders as b
import numpy as np
import pytest
from app_world import ALG, FixedClock, World, sqlite_app
from fake_biometrics import face_image, fake_biometrics

from rfr.application.app import RfrApplication
from rfr.application.projections import placeholders
from rfr.application.services.biometric_support import library_image_records
from rfr.application.services.enrolment import EnrolmentItem
from rfr.application.services.index_catch_up import TOPICS, catch_up
from rfr.application.services.search_execution import SearchExecution
from rfr.application.services.searches import LibrarySelection
from rfr.domain.enrolment_batch import EnrolmentBatch
from rfr.domain.images import MopiGroup, PerceivedAgeBand
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.reference_library import ReferenceLibrary
from rfr.infrastructure.audit.verification import verify
from rfr.infrastructure.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("killable_child.py")
STOP_TIMEOUT_S = 60
# Pages of SQLite cache in a rebuilding child: small enough for its transaction to spill.
SPILL_CACHE_PAGES = 32
BATCHES = 1_000  # two events each: the log holds a few thousand events


# -- the child ------------------------------------------------------------------------------------


def _start(
    data_dir: Path, stop_at: str, command: str, *arguments: str, cache_pages: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """The child running ``command`` and the line it wrote once it stopped (or finished)."""
    env = {**os.environ, "RFR_DATA_DIR": str(data_dir), "RFR_PERSISTENCE": "sqlite", "RFR_ORT_THREADS": "1"}
    if cache_pages is not None:
        env["RFR_TEST_SQLITE_CACHE_PAGES"] = str(cache_pages)
    log = data_dir.parent / f"child-{command}.log"
    read_end, write_end = os.pipe()
    try:
        with log.open("wb") as output:
            proc = subprocess.Popen(
                [sys.executable, str(CHILD), str(write_end), stop_at, command, *arguments],
                pass_fds=(write_end,),
                cwd=REPO_ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        os.close(write_end)
        write_end = -1
        said = _first_line(read_end, proc)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    if not said:
        _kill(proc)
        pytest.fail(f"the {command} child ended without reaching {stop_at}:\n{log.read_text()}")
    return proc, said


def _start_and_stop(
    data_dir: Path, stop_at: str, command: str, *arguments: str, cache_pages: int | None = None
) -> subprocess.Popen[bytes]:
    """The child running ``command``, once it has stopped at ``stop_at`` (or finished, for ``none``)."""
    proc, said = _start(data_dir, stop_at, command, *arguments, cache_pages=cache_pages)
    expected = "finished" if stop_at == "none" else f"stopped {stop_at}"
    if said != expected:
        _kill(proc)
        pytest.fail(f"the {command} child said {said!r}, not {expected!r}")
    return proc


def _first_line(fd: int, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + STOP_TIMEOUT_S
    received = b""
    while b"\n" not in received:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            _kill(proc)
            pytest.fail(f"the child reached no stop point within {STOP_TIMEOUT_S} s")
        chunk = os.read(fd, 4096)
        if not chunk:  # the child ended without a word
            break
        received += chunk
    return received.decode().partition("\n")[0]


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    else:
        proc.wait(timeout=30)


# -- reading a data folder ------------------------------------------------------------------------


def _settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, persistence="sqlite")


def _table_names(app: RfrApplication) -> list[str]:
    return [table for projection in app.projections for table in projection.tables]


def _rows(data_dir: Path, tables: list[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables`` read by a plain SQLite connection, as another process reads them
    (it writes nothing, so it never waits on a writer)."""
    db = sqlite3.connect(_settings(data_dir).event_store_path)
    try:
        return {t: sorted(db.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        db.close()


def _wal_bytes(data_dir: Path) -> int:
    wal = Path(f"{_settings(data_dir).event_store_path}-wal")
    return wal.stat().st_size if wal.exists() else 0


@attrs.frozen
class Agreed:
    """What a data folder holds once store, events and projections agree."""

    head: int
    tables: dict[str, list[tuple[Any, ...]]]


def _check_agreement(app: RfrApplication, before: Agreed) -> None:
    """The restarted store: the same log, projections as before, at the head, equal to a rebuild."""
    head = app.recorder.max_notification_id()
    assert head == before.head  # no event lost, none added
    assert verify(app.recorder).ok
    names = _table_names(app)
    live = {t: sorted(app.recorder.query(f"SELECT * FROM {t}"), key=repr) for t in names}
    assert live == before.tables  # nothing lost, nothing duplicated
    assert app.recorder.projection_positions() == {p.name: (p.version, head) for p in app.projections}
    app.rebuild_projections()
    assert {t: sorted(app.recorder.query(f"SELECT * FROM {t}"), key=repr) for t in names} == live


# -- a store of a few thousand events -------------------------------------------------------------


@attrs.frozen
class ProjectedStore:
    folder: Path
    before: Agreed
    approval_id: UUID
    library_id: UUID


@pytest.fixture(scope="module")
def projected_store(tmp_path_factory: pytest.TempPathFactory) -> ProjectedStore:
    """Enrolments, purges, expiries and searches: every projection has rows to lose or duplicate."""
    folder = tmp_path_factory.mktemp("projected") / "data"
    world = World(sqlite_app(folder), FixedClock()).populate()
    approval_id, library_id = world.library(n=2)
    approval = world.app.get(approval_id, LibraryApproval)
    library = world.app.get(library_id, ReferenceLibrary)
    lead = world.actor("op-lead")
    batches = []
    for k in range(BATCHES):
        at = world.clock.now()
        batch = library.enrol(lead, at, b.library_images(3, prefix=f"g{k}"), approval, b.CONFIG)
        batch.record_templates(lead, at, b.ALG, {i: f"tpl-{i}" for i in batch.images})
        world.app.save(batch)
        batches.append(batch)
    for batch in batches[:40]:
        batch.purge_images(lead, world.clock.now(), [next(iter(batch.images))], "no longer needed", hold=None)
        world.app.save(batch)
    for _ in range(2):
        world.searched()
    world.probe()  # submitted and never searched (R-03a)
    world.clock.advance(days=365 * 9)
    for batch in batches[40:60]:
        batch.expire_images(lead, world.clock.now(), b.CONFIG)
        world.app.save(batch)
    head = world.app.recorder.max_notification_id()
    assert head > 2 * BATCHES
    before = Agreed(head, _rows(folder, _table_names(world.app)))
    assert all(before.tables.values()), "a projection table is empty: it would prove nothing"
    world.app.close()
    return ProjectedStore(folder, before, approval_id, library_id)


def _copy(store: Path, folder: Path) -> Path:
    data_dir = folder / "data"
    shutil.copytree(store, data_dir)
    return data_dir


def _enrol_one_more(app: RfrApplication, store: ProjectedStore) -> None:
    """A write after the restart: the store takes it, and the projections move with it."""
    world = World(app, FixedClock())  # the time the store's batches were enrolled at
    approval = app.get(store.approval_id, LibraryApproval)
    library = app.get(store.library_id, ReferenceLibrary)
    at, lead = world.clock.now(), world.actor("op-lead")
    app.save(library.enrol(lead, at, b.library_images(2, prefix="after-restart"), approval, b.CONFIG))
    head = app.recorder.max_notification_id()
    assert app.recorder.projection_positions() == {p.name: (p.version, head) for p in app.projections}


# -- (a) a projection rebuild ---------------------------------------------------------------------

REBUILD_POINTS = [
    "rebuild-emptied",
    "rebuild-replayed:1",
    f"rebuild-replayed:{BATCHES}",
    f"rebuild-replayed:{2 * BATCHES}",
    "rebuild-positions",
    "rebuild-committed",
]


@pytest.mark.parametrize("stop_at", REBUILD_POINTS)
def test_rfr_projections_rebuild_killed_at_any_point_leaves_the_projections_as_they_were(
    projected_store: ProjectedStore, tmp_path: Path, stop_at: str
) -> None:
    data_dir = _copy(projected_store.folder, tmp_path)
    before = projected_store.before
    assert _wal_bytes(data_dir) == 0

    child = _start_and_stop(data_dir, stop_at, "projections-rebuild", cache_pages=SPILL_CACHE_PAGES)
    try:
        # Stopped inside (or just after) its one transaction: another process still reads every
        # row of the projections as they were, though the rebuild's pages are in the WAL file.
        assert _rows(data_dir, list(before.tables)) == before.tables
        assert _wal_bytes(data_dir) > 100_000
    finally:
        _kill(child)

    with sqlite_app(data_dir) as app:
        _check_agreement(app, before)
        _enrol_one_more(app, projected_store)


@pytest.mark.parametrize("missing", ["another version of the projections", "no projection tables"])
def test_a_start_killed_while_rebuilding_stale_projections_rebuilds_them_whole_on_the_next_start(
    projected_store: ProjectedStore, tmp_path: Path, missing: str
) -> None:
    """A store written by another version of the projections (or before they existed) is rebuilt
    when the application opens it; killed three times at three points of that rebuild, the
    fourth start ends with the projections whole, at the head, equal to what they were."""
    data_dir = _copy(projected_store.folder, tmp_path)
    before = projected_store.before
    db = sqlite3.connect(_settings(data_dir).event_store_path)
    with db:
        if missing == "no projection tables":
            for table in [*before.tables, "rfr_projections"]:
                db.execute(f"DROP TABLE {table}")
        else:
            db.execute("UPDATE rfr_projections SET version = version + 1000")
    db.close()
    stale = None if missing == "no projection tables" else before.tables

    for stop_at in ["rebuild-emptied", f"rebuild-replayed:{BATCHES}", "rebuild-positions"]:
        child = _start_and_stop(data_dir, stop_at, "open", cache_pages=SPILL_CACHE_PAGES)
        try:
            if stale is not None:
                assert _rows(data_dir, list(before.tables)) == stale
        finally:
            _kill(child)

    with sqlite_app(data_dir) as app:
        _check_agreement(app, before)
        _enrol_one_more(app, projected_store)


# -- (b) an index catch-up ------------------------------------------------------------------------


@attrs.frozen
class LaggingIndex:
    """A data folder whose library index misses two enrolments and holds one purged template."""

    folder: Path
    before: Agreed
    library_id: str
    child_request: str  # searched by the child that gets killed
    after_request: str  # searched after the restart
    now: datetime
    nearest_image: str  # of the enrolments the index missed: face_image(1), the probe's nearest
    listed: frozenset[str]  # the library's templates, by the library images projection
    purged_vector: bytes


@pytest.fixture(scope="module")
def lagging_index(tmp_path_factory: pytest.TempPathFactory) -> LaggingIndex:
    folder = tmp_path_factory.mktemp("lagging") / "data"
    clock = FixedClock()
    world = World(sqlite_app(folder), clock, bio=fake_biometrics(folder, top_k=2)).populate()
    _, library = world.enrolled_library(n=3, steps=5)
    library_id = str(library)
    probe_id = world.probe()
    requests = [
        world.searches.open("analyst", probe_id, [LibrarySelection(library_id, "held here")]).id
        for _ in range(3)
    ]
    world.execution.search_library("analyst", requests[0], library_id, top_k=2)
    index = world.bio.index(library_id)
    assert index.position is not None and len(index) == 3  # caught up once: a position to go on from
    purged_image = world.image_ids(library)[0]
    (purged_template,) = world.app.library_images.templates_of([purged_image])[purged_image].values()
    purged_vector = world.bio.store.get_template(purged_template).vector.astype(np.float32).tobytes()

    # More than a page of template events of another library, which the catch-up reads and skips.
    other_approval, other_library = world.library(name="other", n=1)
    approval = world.app.get(other_approval, LibraryApproval)
    other = world.app.get(other_library, ReferenceLibrary)
    lead = world.actor("op-lead")
    for k in range(600):
        batch = other.enrol(lead, clock.now(), b.library_images(2, prefix=f"o{k}"), approval, b.CONFIG)
        batch.record_templates(lead, clock.now(), ALG, {i: f"tpl-{i}" for i in batch.images})
        world.app.save(batch)
    # Two enrolments saved by processes that died before writing the index.
    world.enrolment._index = lambda _lib, _alg, staged: [t for t, _ in staged.values()]  # type: ignore[method-assign]
    nearest = None
    for steps in (1, 2):
        item = EnrolmentItem(face_image(steps), date(2022, 1, 1), PerceivedAgeBand.ADULT, MopiGroup.GROUP_2)
        (enrolled,) = world.enrolment.enrol("op-lead", library_id, [item]).enrolled
        nearest = nearest or enrolled.image_id
    # A purge recorded, and the store's records erased, by a process that died before the index.
    row = world.app.library_images.image(library_id, purged_image)
    assert row is not None
    holder = world.app.get(UUID(row.holder_id), EnrolmentBatch)
    holder.purge_images(lead, clock.now(), [purged_image], "R-05", hold=None)
    world.app.save(holder)
    for record in (*library_image_records(purged_image), purged_template):
        world.bio.store.erase(record)

    listed = world.app.library_images.templates_in(library_id, ALG, _all_templates(world.app, library_id))
    assert len(listed) == 4 and purged_template not in listed
    assert len(world.bio.index(library_id)) == 3 and purged_template in world.bio.index(library_id)
    before = Agreed(world.app.recorder.max_notification_id(), _rows(folder, _table_names(world.app)))
    world.app.close()
    world.bio.store.close()  # type: ignore[attr-defined]
    assert nearest is not None
    return LaggingIndex(
        folder,
        before,
        library_id,
        str(requests[1]),
        str(requests[2]),
        clock.now() + timedelta(hours=1),
        nearest,
        frozenset(listed),
        purged_vector,
    )


def _all_templates(app: RfrApplication, library_id: str) -> list[str]:
    rows = app.recorder.query(
        "SELECT template_id FROM rfr_library_templates WHERE library_id = ? AND algorithm_id = ?",
        (library_id, ALG),
    )
    return [r[0] for r in rows]


def _last_template_event(app: RfrApplication) -> int:
    """The notification id of the last event that changes what an index holds."""
    events = app.recorder.events_table_name
    ((last,),) = app.recorder.query(
        f"SELECT max(rowid) FROM {events} WHERE topic IN ({placeholders(len(TOPICS))})", TOPICS
    )
    return int(last)


def _index_contents(data_dir: Path, library_id: str) -> list[str]:
    """Every template id the index holds, as a new process reads it from the files (with repeats)."""
    bio = fake_biometrics(data_dir)
    try:
        index = bio.index(library_id)
        everything = index.search(np.zeros(bio.engine.embedder.dimension, np.float32), len(index) + 5)
        assert len(everything) == len(index)
        return [hit.template_id for hit in everything]
    finally:
        bio.store.close()  # type: ignore[attr-defined]


def _restart_and_check(lagging: LaggingIndex, data_dir: Path) -> None:
    """A restarted process searches: its catch-up finishes the killed one's work, whatever was left."""
    app = sqlite_app(data_dir)
    bio = fake_biometrics(data_dir, top_k=2)
    try:
        searched = SearchExecution(app, FixedClock(lagging.now), bio).search_library(
            "analyst", lagging.after_request, lagging.library_id, top_k=2
        )
        # The nearest image is one the index had missed; the purged one is gone.
        assert searched.candidates[0].image_id == lagging.nearest_image
        index = bio.index(lagging.library_id)
        # Its saved position covers every template event, and nothing is left to apply.
        assert _last_template_event(app) <= (index.position or 0) <= app.recorder.max_notification_id()
        assert catch_up(app, bio, lagging.library_id) == 0
        listed = app.library_images.templates_in(
            lagging.library_id, ALG, _all_templates(app, lagging.library_id)
        )
        assert listed == lagging.listed
        assert len(index) == len(listed) and all(t in index for t in listed)
        # The files say the same to another process: each listed template once, nothing else.
        assert sorted(_index_contents(data_dir, lagging.library_id)) == sorted(listed)
        for name, content in bio.indexes.decrypted_contents(lagging.library_id, ALG).items():
            assert lagging.purged_vector not in content, f"{name} still holds the purged template (R-05)"
    finally:
        app.close()
        bio.store.close()  # type: ignore[attr-defined]


def _search_in_a_child(lagging: LaggingIndex, data_dir: Path, stop_at: str) -> subprocess.Popen[bytes]:
    return _start_and_stop(
        data_dir, stop_at, "search", lagging.child_request, lagging.library_id, lagging.now.isoformat()
    )


CATCH_UP_POINTS = ["catch-up-read", "catch-up-applied", "catch-up-torn-entry", "catch-up-done", "none"]


@pytest.mark.parametrize("stop_at", CATCH_UP_POINTS)
def test_an_index_catch_up_killed_at_any_point_ends_with_exactly_the_listed_templates_once(
    lagging_index: LaggingIndex, tmp_path: Path, stop_at: str
) -> None:
    data_dir = _copy(lagging_index.folder, tmp_path)
    _kill(_search_in_a_child(lagging_index, data_dir, stop_at))

    _restart_and_check(lagging_index, data_dir)


@pytest.mark.parametrize("files", ["behind their position", "lost"])
def test_an_index_catch_up_killed_before_each_of_its_file_writes_ends_with_exactly_the_listed_templates_once(
    lagging_index: LaggingIndex, tmp_path: Path, files: str
) -> None:
    """Killed before its first write to the index's files, then (in a fresh copy) before its
    second, and so on until a catch-up finishes. Files behind their position: the catch-up
    writes a journal entry and the compaction its removal needs (new snapshot, new journal, the
    two renames, the old key destroyed). Files lost (a library whose index was never written,
    or deleted): the catch-up replays the whole log into a first snapshot."""
    stops = []
    for number in range(1, 40):
        data_dir = _copy(lagging_index.folder, tmp_path / str(number))
        if files == "lost":
            shutil.rmtree(data_dir / "indexes" / lagging_index.library_id)
        child, said = _start(
            data_dir,
            f"catch-up-file-write:{number}",
            "search",
            lagging_index.child_request,
            lagging_index.library_id,
            lagging_index.now.isoformat(),
        )
        _kill(child)
        if said == "finished":
            break
        assert said.startswith(f"stopped catch-up-file-write:{number} before "), said
        stops.append(said.partition(" before ")[2])
        _restart_and_check(lagging_index, data_dir)
    else:
        pytest.fail(f"the catch-up never finished: {stops}")
    # An entry and a compaction, or a first snapshot: the sweep killed it at several points.
    assert len(stops) >= 5, stops


# -- an enrolment killed inside its save ----------------------------------------------------------


def test_an_enrolment_killed_inside_its_save_transaction_records_nothing_and_can_be_done_again(
    lagging_index: LaggingIndex, tmp_path: Path
) -> None:
    """Killed with its events, their chain links and its projection rows written but not
    committed: none of them is there after the restart, the same images enrol again (not
    refused as already enrolled), and a search finds them. (The records the killed process put
    in the biometric store are erased by the worker's reconciliation, ADR 0015.)"""
    lagging = lagging_index
    data_dir = _copy(lagging.folder, tmp_path)
    child = _start_and_stop(
        data_dir, "save-uncommitted", "enrol", lagging.library_id, lagging.now.isoformat(), "0", "3"
    )
    _kill(child)

    with sqlite_app(data_dir) as app:
        _check_agreement(app, lagging.before)
        world = World(app, FixedClock(lagging.now), bio=fake_biometrics(data_dir, top_k=2))
        items = [
            EnrolmentItem(face_image(k), date(2022, 1, 1), PerceivedAgeBand.ADULT, MopiGroup.GROUP_2)
            for k in (0, 3)
        ]
        report = world.enrolment.enrol("op-lead", lagging.library_id, items)
        assert len(report.enrolled) == 2, report.not_enrolled
        searched = world.execution.search_library(
            "analyst", lagging.after_request, lagging.library_id, top_k=2
        )
        # face_image(0), the probe's own face, is the nearest.
        assert searched.candidates[0].image_id == report.enrolled[0].image_id
        listed = app.library_images.templates_in(
            lagging.library_id, ALG, _all_templates(app, lagging.library_id)
        )
        assert len(listed) == len(lagging.listed) + 2
        assert sorted(_index_contents(data_dir, lagging.library_id)) == sorted(listed)
        world.bio.store.close()  # type: ignore[attr-defined]
