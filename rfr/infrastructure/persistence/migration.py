"""Copies an embedded installation's event store (SQLite) into an empty PostgreSQL store (issue 10).

``rfr migrate`` runs this. The order of the steps is what makes it safe to run on the real thing:

1. The target is read, not written: a schema holding any stored event, chain link or chain head
   beyond zero is refused before anything is written there (nor is anything created in it).
2. The source's hash chain is verified (A-02); a source that does not verify is refused, with
   the position and reason verification gives, before anything is written.
3. Every event is copied in notification order, at most ``BATCH_EVENTS`` per transaction,
   through the target recorder's own insert path: the target writes its own chain links, moves
   its own head and applies the projections' statements in the transaction that stores the
   events, exactly as a save does (ADR 0013, 0016). Originator ids, versions, topics and state
   bytes are stored as read; nothing is decoded except to compute the projections' statements.
4. The target's notification ids are the source's. The chain hashes each event's position and
   notification id (ADR 0005), and a vector index's saved position is a notification id (ADR
   0014), so before each run of consecutive source ids the target's id sequence is set to the
   run's first id; a source with gaps in its ids keeps them. With the same ids and the same
   rows, the target's chain is the source's link for link: its head equals the source's, and a
   head published before the migration still anchors the new store.
5. Afterwards the target is verified from scratch, its head count must equal the source's, and
   the source's head must not have moved (a process still writing to the source during the
   migration would otherwise lose its events).

Projections are written batch by batch rather than rebuilt once at the end: that is the path a
save takes, so each committed batch leaves the target consistent (events, links, head and
projections at the same position) and an interrupted migration leaves no stale projection; it
decodes each event once, which a rebuild at the end would do as well, and it needs no second
pass over the log nor one transaction as long as the whole log.

The biometric store, its master key and the vector indexes are files under ``RFR_DATA_DIR`` and
are not copied: the PostgreSQL service is pointed at the same data folder.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import attrs
from eventsourcing.persistence import Notification, PersistenceError, StoredEvent

from rfr.application.app import RfrApplication
from rfr.application.projections import STATEMENTS_KEYWORD, Statement
from rfr.infrastructure.audit.verification import VerificationResult, verify
from rfr.infrastructure.persistence.chain import ChainedRecorder, ChainHead
from rfr.infrastructure.persistence.environment import application_env
from rfr.infrastructure.persistence.sqlite import CHAIN_TABLE, HEAD_TABLE
from rfr.infrastructure.settings import Settings

# Events per target transaction: large enough that a transaction's fixed cost (the table lock,
# the head row, the commit) is spread thin, small enough that one holds the lock briefly.
BATCH_EVENTS = 500
SQLITE_FILE_NAME = "events.sqlite3"
SQLITE_EVENTS_TABLE = "stored_events"  # eventsourcing's name for a SQLite store's events table
CONNECT_TIMEOUT_S = 10


class MigrationError(Exception):
    """A migration that was refused or failed; the message never holds the DSN or its password."""


class SourceUnreadable(MigrationError):
    """No event store at the source path, or not one this system wrote."""


class SourceBroken(MigrationError):
    """The source's hash chain does not verify (A-02); nothing was written."""

    def __init__(self, result: VerificationResult) -> None:
        self.result = result
        super().__init__(
            f"the source does not verify, nothing was copied: {result.summary()} "
            "(run `rfr audit verify` on it; an audit trail that does not verify is evidence to "
            "keep as it is, not to copy)"
        )


class TargetUnusable(MigrationError):
    """The target cannot be reached, or its schema does not exist."""


class TargetNotEmpty(MigrationError):
    """The target already holds stored events (or chain links); nothing was written."""


class MigrationFailed(MigrationError):
    """The copy was written but the target does not check out; the target must be discarded."""


@attrs.frozen
class MigrationReport:
    """What ``migrate`` did: events copied, both heads as verified, and how long it took."""

    source: Path
    copied: int
    source_head: ChainHead
    target_head: ChainHead
    seconds: float

    @property
    def same_chain(self) -> bool:
        """The target's chain is the source's link for link: anchors published before still hold.

        Same ids and same rows give the same chain, unless a source row spells its originator id
        otherwise than the 32 lowercase hex digits rfr writes (the target stores a UUID and
        hashes its canonical spelling): then the target's chain is another valid one.
        """
        return self.source_head == self.target_head


def sqlite_source_file(path: Path) -> Path:
    """The event store file ``path`` names: the file itself, or ``events.sqlite3`` in a folder.

    Never creates anything: opening a path that holds no store would create an empty one.
    """
    path = Path(path).expanduser().resolve()
    file = path / SQLITE_FILE_NAME if path.is_dir() else path
    if not file.is_file():
        hint = f" (a data folder holds its store as {SQLITE_FILE_NAME})" if path.is_dir() else ""
        raise SourceUnreadable(f"no SQLite event store at {file}{hint}")
    return file


def describe_dsn(dsn: str) -> str:
    """``user@host:port/dbname`` of a DSN, to print: never its password or other options."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        # The parser's message quotes the DSN, password and all.
        raise TargetUnusable("the target is not a valid PostgreSQL connection string") from None
    user = parts.get("user")
    host = parts.get("host", "127.0.0.1")
    port = parts.get("port", "5432")
    return f"{user + '@' if user else ''}{host}:{port}/{parts.get('dbname', 'rfr')}"


def target_settings(dsn: str, schema: str, data_dir: Path) -> Settings:
    """Settings of the PostgreSQL target, validated as ``RFR_POSTGRES_*`` are for the service."""
    describe_dsn(dsn)  # refuses a malformed DSN without quoting it
    try:
        return Settings.from_env(
            {
                "RFR_DATA_DIR": str(data_dir),
                "RFR_PERSISTENCE": "postgres",
                "RFR_POSTGRES_DSN": dsn,
                "RFR_POSTGRES_SCHEMA": schema,
            }
        )
    except ValueError as e:
        raise TargetUnusable(str(e).replace("RFR_POSTGRES_SCHEMA", "the schema")) from None


@contextmanager
def open_source(file: Path) -> Iterator[RfrApplication]:
    """The application over the SQLite store ``file``, opened without creating or changing tables."""
    settings = Settings(data_dir=file.parent, persistence="sqlite")
    env = application_env(settings, create_tables=False) | {"SQLITE_DBNAME": str(file)}
    try:
        app = RfrApplication(env)
    except PersistenceError as e:
        raise SourceUnreadable(f"{file} is not a readable rfr event store: {e}") from e
    try:
        yield app
    finally:
        app.close()


@contextmanager
def open_target(settings: Settings, *, create_tables: bool) -> Iterator[RfrApplication]:
    """The application over the PostgreSQL target. ``create_tables=False`` reads only."""
    try:
        app = RfrApplication(application_env(settings, create_tables=create_tables))
    except PersistenceError as e:
        raise TargetUnusable(f"cannot open the target: {_without_secrets(str(e), settings)}") from None
    try:
        yield app
    finally:
        app.close()


def stored_in_target(target: RfrApplication, schema: str) -> tuple[int, int, int]:
    """(events, chain links, head count) stored in the target schema; all 0 when it holds no store.

    Reads only: tables that do not exist count as empty and are not created.
    """
    from rfr.infrastructure.persistence import postgres

    recorder: Any = target.recorder
    try:
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute("SELECT count(*) AS n FROM pg_namespace WHERE nspname = %s", (schema,))
            if curs.fetchone()["n"] == 0:
                raise TargetUnusable(
                    f'schema "{schema}" does not exist in the target database: '
                    f'create it first (CREATE SCHEMA "{schema}"), as the service expects it too'
                )
            counts = []
            for table, sql in (
                (recorder.events_table_name, 'SELECT count(*) AS n FROM "{0}"'),
                (postgres.CHAIN_TABLE, 'SELECT count(*) AS n FROM "{0}"'),
                (postgres.HEAD_TABLE, 'SELECT coalesce(max(count), 0) AS n FROM "{0}"'),
            ):
                curs.execute("SELECT to_regclass(%s) IS NOT NULL AS found", (_qualified(schema, table),))
                if not curs.fetchone()["found"]:
                    counts.append(0)
                    continue
                curs.execute(sql.format(table))
                counts.append(int(curs.fetchone()["n"]))
    except PersistenceError as e:
        raise TargetUnusable(f"cannot read the target: {e}") from None
    return counts[0], counts[1], counts[2]


def migrate(
    source_path: Path,
    dsn: str,
    schema: str,
    *,
    batch_events: int = BATCH_EVENTS,
    progress: Callable[[int, int], None] | None = None,
) -> MigrationReport:
    """Copies the SQLite store at ``source_path`` (file or data folder) into the empty schema
    ``schema`` of the PostgreSQL database ``dsn``; see the module's docstring for the steps.

    ``progress(copied, total)`` is called after each committed batch.
    """
    if batch_events < 1:
        raise ValueError("batch_events must be at least 1")
    started = time.perf_counter()
    file = sqlite_source_file(source_path)
    _refuse_foreign_file(file)
    settings = target_settings(dsn, schema, file.parent)
    try:
        with open_source(file) as source:
            # 1. The target, read only (a refusal leaves it exactly as it was, tables and all).
            _connect(settings)
            with open_target(settings, create_tables=False) as reader:
                _refuse_non_empty(reader, settings)
            # 2. The source's chain.
            try:
                verified = verify(source.recorder)
            except PersistenceError as e:
                raise SourceUnreadable(f"{file} is not a readable rfr event store: {e}") from e
            if not verified.ok:
                raise SourceBroken(verified)
            assert verified.head is not None
            source_head = verified.head
            # 3. and 4. The copy, through the target's own insert path.
            with open_target(settings, create_tables=True) as target:
                _refuse_non_empty(target, settings)  # written to meanwhile?
                copied = _copy(source, target, source_head.count, batch_events, progress)
                # 5. The checks.
                moved = _head_of(source)
                if moved != source_head:
                    raise MigrationFailed(
                        f"the source changed during the migration (head {source_head} when verified, "
                        f"{moved} now): a process still writes to it. Stop every process using the "
                        "source, empty the target schema and migrate again"
                    )
                checked = verify(target.recorder)
                if not checked.ok or checked.head is None:
                    raise MigrationFailed(f"the target does not verify after the copy: {checked.summary()}")
                if checked.head.count != source_head.count:
                    raise MigrationFailed(
                        f"the target holds {checked.head.count} events but {source_head.count} were "
                        "copied: another process wrote to the target during the migration"
                    )
                target_head = checked.head
    except PersistenceError as e:
        raise MigrationFailed(f"the migration stopped: {_without_secrets(str(e), settings)}") from None
    return MigrationReport(
        source=file,
        copied=copied,
        source_head=source_head,
        target_head=target_head,
        seconds=time.perf_counter() - started,
    )


def _refuse_foreign_file(file: Path) -> None:
    """Refuses a file that is no rfr event store, reading it only: opening it as one would turn
    on its write-ahead log, a change to a file that is not ours."""
    try:
        with closing(sqlite3.connect(f"{file.as_uri()}?mode=ro", uri=True)) as db:
            found = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as e:
        raise SourceUnreadable(f"{file} is not a readable rfr event store: {e}") from None
    missing = sorted({SQLITE_EVENTS_TABLE, CHAIN_TABLE, HEAD_TABLE} - found)
    if missing:
        raise SourceUnreadable(f"{file} is not an rfr event store: it has no {', '.join(missing)} table")


def _connect(settings: Settings) -> None:
    """One connection to the target, so an unreachable server or a refused login is reported
    with its cause (the library's pool would only say that it got no connection)."""
    import psycopg

    assert settings.postgres_dsn is not None
    try:
        with psycopg.connect(settings.postgres_dsn, connect_timeout=CONNECT_TIMEOUT_S):
            pass
    except psycopg.Error as e:
        where = describe_dsn(settings.postgres_dsn)
        raise TargetUnusable(f"cannot connect to {where}: {_without_secrets(str(e), settings)}") from None


def _refuse_non_empty(target: RfrApplication, settings: Settings) -> None:
    events, links, head = stored_in_target(target, settings.postgres_schema)
    if events or links or head:
        assert settings.postgres_dsn is not None
        raise TargetNotEmpty(
            f'schema "{settings.postgres_schema}" on {describe_dsn(settings.postgres_dsn)} already holds '
            f"{events} stored events ({links} chain links, head count {head}): a migration only "
            "writes into an empty store, and nothing was written"
        )


def _copy(
    source: RfrApplication,
    target: RfrApplication,
    total: int,
    batch_events: int,
    progress: Callable[[int, int], None] | None,
) -> int:
    """Copies the first ``total`` events of ``source`` in notification order, under the same ids."""
    copied = 0
    next_target_id: int | None = None  # what the target's id sequence gives next, once known
    start = 1
    while copied < total:
        page = source.recorder.select_notifications(start=start, limit=min(batch_events, total - copied))
        if not page:
            raise MigrationFailed(f"the source holds {copied} events from id {start} on, not {total}")
        for run in _consecutive(page):
            first = run[0].id
            if next_target_id != first:
                _set_next_notification_id(target, first)
            stored = [StoredEvent(n.originator_id, n.originator_version, n.topic, n.state) for n in run]
            ids = target.recorder.insert_events(stored, **{STATEMENTS_KEYWORD: _statements(target, stored)})
            assert ids is not None and len(ids) == len(run)
            if list(ids) != [n.id for n in run]:
                # Only another writer taking ids from the sequence between two batches does this.
                raise MigrationFailed(
                    f"the target stored source event {first} as {ids[0]}: another process wrote to "
                    "the target during the migration. Stop it, empty the target schema and migrate again"
                )
            next_target_id = ids[-1] + 1
            copied += len(run)
        start = page[-1].id + 1
        if progress is not None:
            progress(copied, total)
    return copied


def _consecutive(page: Sequence[Notification]) -> Iterator[Sequence[Notification]]:
    """``page`` cut where the source's notification ids skip a number."""
    begin = 0
    for i in range(1, len(page) + 1):
        if i == len(page) or page[i].id != page[i - 1].id + 1:
            yield page[begin:i]
            begin = i


def _statements(target: RfrApplication, stored: Sequence[StoredEvent]) -> list[Statement]:
    """The projections' statements for ``stored``, as ``RfrApplication.save`` makes them."""
    statements: list[Statement] = []
    for event in stored:
        domain_event = target.mapper.to_domain_event(event)
        for projection in target.projections:
            statements.extend(projection.statements(domain_event))
    return statements


def _set_next_notification_id(target: RfrApplication, notification_id: int) -> None:
    """The target's next notification id is ``notification_id`` (the events table's sequence)."""
    recorder: Any = target.recorder
    table = _qualified(recorder.datastore.schema, recorder.events_table_name)
    with recorder.datastore.transaction(commit=True) as curs:
        curs.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s, false)",
            (table, notification_id),
        )


def _head_of(app: RfrApplication) -> ChainHead | None:
    assert isinstance(app.recorder, ChainedRecorder)
    return app.recorder.chain_head(durable=False)


def _qualified(schema: str, table: str) -> str:
    return ".".join('"' + name.replace('"', '""') + '"' for name in (schema, table))


def redact(text: str, dsn: str) -> str:
    """``text`` with the DSN and its password blanked, should a library have quoted them."""
    if not dsn:
        return text
    text = text.replace(dsn, "<target>")
    from psycopg.conninfo import conninfo_to_dict

    try:
        password = str(conninfo_to_dict(dsn).get("password") or "")
    except Exception:
        return text
    return text.replace(password, "***") if password else text


def _without_secrets(text: str, settings: Settings) -> str:
    return redact(text, settings.postgres_dsn or "")
