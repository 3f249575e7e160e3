"""A child process for the crash tests: runs one real command and stops, alive, at a named point.

Not a test. ``test_crash_during_catch_up.py`` starts it as

    python killable_child.py SIGNAL_FD STOP_AT COMMAND [ARGUMENTS...]

with ``RFR_DATA_DIR`` naming a SQLite data folder. Before it runs the command, it replaces a
function of the product (a few, for ``catch-up-file-write``), in this process only, by a
wrapper that does the same work and, at ``STOP_AT``, writes ``stopped STOP_AT`` to the pipe
``SIGNAL_FD`` and waits forever: the test reads the line and kills the process with SIGKILL at
exactly that point. A command that ends without reaching its point writes ``finished`` instead.
The product itself has no hook.

Commands (each the production code path, over the fake face engine of ``fake_biometrics``):

- ``projections-rebuild``: ``rfr projections rebuild``, through the command line's ``main``;
- ``open``: opening the application, which rebuilds the projections that are stale;
- ``search REQUEST_ID LIBRARY_ID NOW``: one library of a search request searched at ``NOW``,
  which first catches the library's index up with the log (``index_catch_up``);
- ``enrol LIBRARY_ID NOW STEPS...``: one enrolment of ``face_image(steps)`` for each of ``STEPS``.

Stop points:

- ``rebuild-emptied``, ``rebuild-replayed:N``, ``rebuild-positions``, ``rebuild-committed``: in a
  projection rebuild, with its tables emptied; after ``N`` events replayed; with every event
  replayed and the positions written, before the commit; after the commit;
- ``catch-up-read``: in a search's catch-up of the index, the template events read, nothing applied;
- ``catch-up-applied``: the changes made to the index in memory, before anything is written;
- ``catch-up-torn-entry``: half of the first journal entry written;
- ``catch-up-file-write:K``: just before the catch-up's ``K``-th write to the index's files (a
  journal entry, a snapshot, a new journal, a rename, the destruction of a key, the erasure of
  a file, ``index.json``), named in the line the child writes; a catch-up with fewer writes
  finishes;
- ``catch-up-done``: the index caught up, before the search's own save;
- ``save-uncommitted``: inside the transaction of the command's save, with the events, their
  audit-chain links and the projection rows written but not committed;
- ``none``: not stopped.

``RFR_TEST_SQLITE_CACHE_PAGES``, read here (never by the product), shrinks SQLite's page cache so
that a long transaction spills its uncommitted pages into the WAL file before it is killed.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import date, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "domain")]

import sqlite3  # noqa: E402

SIGNAL_FD, STOP_AT, COMMAND, ARGUMENTS = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]


# Whether a stop point reached now stops: a catch-up point only while ``catch_up`` runs (an index
# write elsewhere passes through the same functions), any other point always.
CATCH_UP_POINT = STOP_AT.startswith("catch-up-")
armed = [not CATCH_UP_POINT]


def stop(point: str, detail: str = "") -> None:
    """Tell the test where this process is, then wait for its SIGKILL."""
    if not armed[0]:
        return
    os.write(SIGNAL_FD, f"stopped {point} {detail}".rstrip().encode() + b"\n")
    while True:
        time.sleep(3600)


def stop_before(owner: object, name: str, point: str) -> None:
    original = getattr(owner, name)

    def wrapped(*args: object, **kwargs: object) -> object:
        stop(point)
        return original(*args, **kwargs)

    setattr(owner, name, wrapped)


def stop_after(owner: object, name: str, point: str) -> None:
    original = getattr(owner, name)

    def wrapped(*args: object, **kwargs: object) -> object:
        result = original(*args, **kwargs)
        stop(point)
        return result

    setattr(owner, name, wrapped)


_pages = os.environ.get("RFR_TEST_SQLITE_CACHE_PAGES")
if _pages:
    _connect = sqlite3.connect

    def _small_cache(*args: object, **kwargs: object) -> sqlite3.Connection:
        conn = _connect(*args, **kwargs)  # type: ignore[arg-type]
        conn.execute(f"PRAGMA cache_size = {int(_pages)}")
        return conn

    sqlite3.connect = _small_cache  # type: ignore[assignment]

import onnxruntime  # noqa: E402, F401  (before usearch, as the test conftests do)
from app_world import FixedClock  # noqa: E402
from fake_biometrics import face_image, fake_biometrics  # noqa: E402

from rfr.adapters.indexes import registry, sealed_files  # noqa: E402
from rfr.application.app import RfrApplication  # noqa: E402
from rfr.application.projections.library_images import LibraryImages  # noqa: E402
from rfr.application.services import search_execution  # noqa: E402
from rfr.application.services.enrolment import Enrolment, EnrolmentItem  # noqa: E402
from rfr.domain.images import MopiGroup, PerceivedAgeBand  # noqa: E402
from rfr.infrastructure.persistence import application_env, projection_tables  # noqa: E402
from rfr.infrastructure.settings import Settings  # noqa: E402


def stop_rebuild_after(replayed: int) -> None:
    original = projection_tables.rebuild

    def rebuild(cursor, projections, events, statements_of):  # type: ignore[no-untyped-def]
        def counted():  # type: ignore[no-untyped-def]
            for number, event in enumerate(events):
                if number == replayed:
                    stop(STOP_AT)
                yield event

        return original(cursor, projections, counted(), statements_of)

    projection_tables.rebuild = rebuild  # type: ignore[assignment]


def mark_the_catch_up() -> None:
    original = search_execution.catch_up

    def catch_up(*args, **kwargs):  # type: ignore[no-untyped-def]
        armed[0] = True
        try:
            return original(*args, **kwargs)
        finally:
            armed[0] = not CATCH_UP_POINT

    search_execution.catch_up = catch_up


def stop_halfway_through_the_journal_entry() -> None:
    pwrite = os.pwrite

    def torn(fd: int, data: bytes, offset: int) -> int:
        if armed[0] and os.readlink(f"/proc/self/fd/{fd}").endswith(registry.JOURNAL_FILE):
            pwrite(fd, data[: len(data) // 2], offset)
            stop(STOP_AT)
        return pwrite(fd, data, offset)

    os.pwrite = torn  # type: ignore[assignment]


# Every function through which the index registry changes its files.
FILE_WRITES = [
    (sealed_files, "append_entry"),
    (sealed_files, "write_snapshot"),
    (sealed_files, "write_new_journal"),
    (sealed_files, "shred_key"),
    (sealed_files, "forget"),
    (sealed_files, "overwrite"),
    (registry, "_write_meta"),
    (os, "replace"),
    (os, "unlink"),
]


def stop_before_file_write(number: int) -> None:
    writes = [0]

    def wrap(owner: object, name: str) -> None:
        original = getattr(owner, name)

        def wrapped(*args: object, **kwargs: object) -> object:
            if armed[0]:
                writes[0] += 1
                if writes[0] == number:
                    stop(STOP_AT, f"before {name}({_first(args)})")
            return original(*args, **kwargs)

        setattr(owner, name, wrapped)

    for owner, name in FILE_WRITES:
        wrap(owner, name)


def _first(args: tuple[object, ...]) -> str:
    """The file a write is about, for the test's messages."""
    return Path(args[0]).name if args and isinstance(args[0], str | Path) else "..."


kind, _, count = STOP_AT.partition(":")
HOOKS = {
    "none": lambda: None,
    "rebuild-emptied": lambda: stop_rebuild_after(0),
    "rebuild-replayed": lambda: stop_rebuild_after(int(count)),
    "rebuild-positions": lambda: stop_after(projection_tables, "rebuild", STOP_AT),
    "rebuild-committed": lambda: stop_after(RfrApplication, "rebuild_projections", STOP_AT),
    "catch-up-read": lambda: stop_before(LibraryImages, "templates_in", STOP_AT),
    "catch-up-applied": lambda: stop_before(registry.IndexRegistry, "_commit", STOP_AT),
    "catch-up-torn-entry": stop_halfway_through_the_journal_entry,
    "catch-up-file-write": lambda: stop_before_file_write(int(count)),
    "catch-up-done": lambda: stop_after(search_execution, "catch_up", STOP_AT),
    "save-uncommitted": lambda: stop_after(projection_tables, "apply", STOP_AT),
}
HOOKS[kind]()
mark_the_catch_up()

data_dir = Path(os.environ["RFR_DATA_DIR"])
settings = Settings(data_dir=data_dir, persistence="sqlite")
if COMMAND == "projections-rebuild":
    from rfr.entrypoints.cli import main

    if main(["projections", "rebuild"]) != 0:
        sys.exit(1)
elif COMMAND == "open":
    RfrApplication(application_env(settings)).close()
elif COMMAND == "search":
    request_id, library_id, now = ARGUMENTS
    with RfrApplication(application_env(settings)) as app:
        execution = search_execution.SearchExecution(
            app, FixedClock(datetime.fromisoformat(now)), fake_biometrics(data_dir)
        )
        execution.search_library("analyst", request_id, library_id, top_k=2)
elif COMMAND == "enrol":
    library_id, now, *steps = ARGUMENTS
    items = [
        EnrolmentItem(
            face_image(int(k)),
            date(2022, 1, 1),
            PerceivedAgeBand.ADULT,
            MopiGroup.GROUP_2,
            f"late-{k}",
            f"{k}.png",
        )
        for k in steps
    ]
    with RfrApplication(application_env(settings)) as app:
        enrolment = Enrolment(app, FixedClock(datetime.fromisoformat(now)), fake_biometrics(data_dir))
        report = enrolment.enrol("op-lead", library_id, items)
        assert len(report.enrolled) == len(items), report
else:
    raise SystemExit(f"unknown command {COMMAND}")
os.write(SIGNAL_FD, b"finished\n")
