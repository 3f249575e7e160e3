"""eventsourcing's SQLite persistence with the audit hash chain written in the same transaction.

Point ``PERSISTENCE_MODULE`` at this module. It holds exactly one infrastructure factory, so
eventsourcing can find it by module topic.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eventsourcing import sqlite as es_sqlite
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent

from rfr.application.projections import STATEMENTS_KEYWORD, Projection, Statement
from rfr.infrastructure.persistence import projection_tables
from rfr.infrastructure.persistence.chain import (
    EMPTY_HEAD,
    AuditChainError,
    AuditSnapshot,
    ChainHead,
    extend_chain,
    stored_row,
)

CHAIN_TABLE = "rfr_audit_chain"
HEAD_TABLE = "rfr_audit_head"

# Durability of a file store, chosen in docs/adr/0012-audit-append-and-verify-speed.md: in WAL
# mode NORMAL syncs at checkpoints, not at each commit. A process crash loses nothing
# committed; a power cut may lose the last commits, whole (events, links and head together).
JOURNAL_MODE = "wal"
SYNCHRONOUS = "NORMAL"
# Prepared statements kept per connection. The library passes ``cached_statements=True``,
# which sqlite3 reads as a cache of one, so every save re-prepared all its statements.
STATEMENT_CACHE_SIZE = 64
# A FULL checkpoint waits for the busy timeout each time; then the head is refused, not guessed.
FLUSH_ATTEMPTS = 3


class ChainedSQLiteConnectionPool(es_sqlite.SQLiteConnectionPool):
    """eventsourcing's pool, opening every connection in WAL with the chosen ``synchronous``.

    ``synchronous`` belongs to a connection, not to the file, so it is set on each one; the
    journal mode is the file's, checked on each one so that no connection writes otherwise.
    """

    def _create_connection(self) -> es_sqlite.SQLiteConnection:
        try:
            conn = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,  # autocommit: the recorders issue BEGIN themselves
                cached_statements=STATEMENT_CACHE_SIZE,
                timeout=self.lock_timeout or es_sqlite.SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as e:
            raise InterfaceError(e) from e
        try:
            if not self.is_sqlite_memory_mode:
                (mode,) = conn.execute("PRAGMA journal_mode").fetchone()
                if mode.lower() != JOURNAL_MODE:
                    (mode,) = conn.execute(f"PRAGMA journal_mode={JOURNAL_MODE}").fetchone()
                    self.journal_mode_was_changed_to_wal = True
                if mode.lower() != JOURNAL_MODE:
                    raise OperationalError(f"{self.db_name} cannot use journal mode {JOURNAL_MODE}: {mode}")
                self.is_journal_mode_wal = True
            conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        except sqlite3.Error as e:
            conn.close()
            raise OperationalError(e) from e
        except OperationalError:
            conn.close()
            raise
        conn.row_factory = sqlite3.Row
        return es_sqlite.SQLiteConnection(sqlite_conn=conn, max_age=self.max_age)


class ChainedSQLiteApplicationRecorder(es_sqlite.SQLiteApplicationRecorder):
    """Appends one chain link per stored event, and moves the head, inside the event insert."""

    def construct_create_table_statements(self) -> list[str]:
        events = self.events_table_name
        statements = super().construct_create_table_statements()
        statements += [
            f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} ("
            "position INTEGER PRIMARY KEY, "
            "notification_id INTEGER NOT NULL UNIQUE, "
            "previous_hash TEXT NOT NULL, "
            "hash TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {HEAD_TABLE} ("
            "id INTEGER PRIMARY KEY CHECK (id = 1), "
            "count INTEGER NOT NULL, "
            "hash TEXT NOT NULL)",
            f"INSERT OR IGNORE INTO {HEAD_TABLE} VALUES (1, {EMPTY_HEAD.count}, '{EMPTY_HEAD.hash}')",
        ]
        # Append-only is enforced by the database too, so no bug or careless statement
        # edits history; someone who drops these triggers is what the chain is there to catch.
        for table, operations in ((events, ("UPDATE", "DELETE")), (CHAIN_TABLE, ("UPDATE", "DELETE"))):
            for operation in operations:
                statements.append(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} "
                    f"BEFORE {operation} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only (A-01)'); END"
                )
        statements.append(
            f"CREATE TRIGGER IF NOT EXISTS {HEAD_TABLE}_no_delete BEFORE DELETE ON {HEAD_TABLE} "
            f"BEGIN SELECT RAISE(ABORT, '{HEAD_TABLE} cannot be deleted (A-02)'); END"
        )
        return statements

    def create_table(self) -> None:
        # The library's deferred BEGIN reads the schema first; our statements then need the
        # write lock, which SQLite refuses at once ("database is locked", no waiting) if
        # another process wrote meanwhile. IMMEDIATE takes the lock up front and waits.
        with self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                self._create_table(cursor)
                conn.commit()
            except sqlite3.Error as e:
                conn.rollback()
                raise OperationalError(e) from e
            finally:
                cursor.sqlite_cursor.close()

    def _insert_events(
        self,
        c: es_sqlite.SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> Sequence[int] | None:
        # The event inserts come first: they take SQLite's write lock, so the head read below
        # is the latest committed one and two writers (threads or processes) cannot both
        # extend the same head. A duplicate (id, version) fails here, before any chain work.
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        if not stored_events:
            return notification_ids
        assert notification_ids is not None
        c.execute(f"SELECT count, hash FROM {HEAD_TABLE} WHERE id = 1")
        found = c.fetchone()
        if found is None:
            raise AuditChainError(f"{HEAD_TABLE} has no row: the audit chain was tampered with")
        head = ChainHead(count=found["count"], hash=found["hash"])
        rows = [stored_row(s, nid) for s, nid in zip(stored_events, notification_ids, strict=True)]
        links, new_head = extend_chain(head, rows)
        try:
            c.executemany(
                f"INSERT INTO {CHAIN_TABLE} VALUES (?,?,?,?)",
                [(x.position, x.notification_id, x.previous_hash, x.hash) for x in links],
            )
        except sqlite3.IntegrityError as e:
            # Only a head that lags its links gets here; reporting it as a concurrency
            # conflict would invite a retry that can never succeed.
            raise AuditChainError(f"audit chain head is behind its links: {e}") from e
        c.execute(
            f"UPDATE {HEAD_TABLE} SET count = ?, hash = ? WHERE id = 1",
            (new_head.count, new_head.hash),
        )
        # The projections' rows and positions, in this same transaction (ADR 0013).
        position = notification_ids[-1] if self._projections_installed else None
        projection_tables.apply(c, kwargs.get(STATEMENTS_KEYWORD, ()), position)
        return notification_ids

    def chain_head(self, *, durable: bool = True) -> ChainHead | None:
        """The head, with every commit it counts on disk: a head gets published as an anchor.

        ``durable=False`` skips the flush, for a caller that only asks whether the store reads
        (the public health check must not let anyone make the server fsync at will).
        """
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT count, hash FROM {HEAD_TABLE} WHERE id = 1")
            found = c.fetchone()
        if durable:
            self._flush_to_disk()
        return None if found is None else ChainHead(count=found["count"], hash=found["hash"])

    def _flush_to_disk(self) -> None:
        # With synchronous=NORMAL the newest commits may sit in the OS cache until the next
        # checkpoint (ADR 0012). A FULL checkpoint copies every committed frame (whichever process
        # wrote it) into the database file and syncs it, waiting for writers and readers.
        #
        # Never open and close the files ourselves: closing any descriptor of a file drops every
        # POSIX lock the process holds on it, SQLite's included; another process closing its last
        # connection then believed it was alone and deleted the WAL under this one, whose later
        # commits went into the deleted file ("disk I/O error" for every new reader).
        pool = self.datastore.pool
        if pool.is_sqlite_memory_mode:
            return
        for _ in range(FLUSH_ATTEMPTS):
            with self.datastore.get_connection(commit=False) as conn:
                cursor = conn.cursor()
                try:
                    cursor.execute("PRAGMA wal_checkpoint(FULL)")
                    busy = cursor.fetchone()[0]
                finally:
                    cursor.sqlite_cursor.close()
            if not busy:
                return
        raise OperationalError("the audit chain head could not be made durable: the store stayed busy")

    @contextmanager
    def audit_snapshot(self) -> Iterator[AuditSnapshot]:
        """Head, raw event rows and links read in one read transaction (one WAL snapshot)."""
        with (
            self.datastore.get_connection(commit=False) as conn,
            conn.transaction(commit=False) as c,
        ):
            c.execute(f"SELECT count, hash FROM {HEAD_TABLE} WHERE id = 1")
            found = c.fetchone()
            head = None if found is None else ChainHead(count=found["count"], hash=found["hash"])
            with conn.cursor() as events, conn.cursor() as links:
                # Raw columns, no UUID conversion: what is verified is what is on disk. Plain
                # tuples in StoredRow and ChainLink order, no object per row (millions stream).
                events.row_factory = links.row_factory = None
                events.execute(
                    "SELECT rowid AS notification_id, originator_id, originator_version, topic, state "
                    f"FROM {self.events_table_name} ORDER BY rowid"
                )
                links.execute(
                    f"SELECT position, notification_id, previous_hash, hash FROM {CHAIN_TABLE} "
                    "ORDER BY position"
                )
                yield AuditSnapshot(
                    head=head,
                    events=iter(events),
                    links=iter(links),
                )

    # -- projections (rfr.application.projections.ProjectionStore) ------------------------------

    _projections_installed = False

    def install_projections(self, projections: Sequence[Projection]) -> list[str]:
        with self.datastore.transaction(commit=True) as c:
            projection_tables.create(c, projections)
            c.execute(self.select_max_notification_id_statement)
            head = c.fetchone()[0] or 0
            stale = projection_tables.stale(c, projections, head)
        self._projections_installed = True
        return stale

    def rebuild_projections(
        self, projections: Sequence[Projection], statements_of: Callable[[StoredEvent], list[Statement]]
    ) -> int:
        with (
            self.datastore.get_connection(commit=True) as conn,
            conn.transaction(commit=True) as c,
            conn.cursor() as rows,
        ):
            # The DELETEs take the write lock first: no event is stored while the log is replayed.
            for projection in projections:
                for table in projection.tables:
                    c.execute(f"DELETE FROM {table}")
            rows.execute(
                "SELECT rowid, originator_id, originator_version, topic, state "
                f"FROM {self.events_table_name} ORDER BY rowid"
            )
            events = (
                (r[0], StoredEvent(self.convert_originator_id(r[1]), r[2], r[3], r[4])) for r in rows
            )
            return projection_tables.rebuild(c, projections, events, statements_of)

    def projection_positions(self) -> dict[str, tuple[int, int]]:
        with self.datastore.transaction(commit=False) as c:
            return projection_tables.positions(c)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, tuple(params))
            return [tuple(r) for r in c.fetchall()]


class ChainedSQLiteFactory(es_sqlite.SQLiteFactory):
    application_recorder_class = ChainedSQLiteApplicationRecorder

    def __init__(self, env: Any) -> None:
        db_name = (env.get(self.SQLITE_DBNAME) or "") if env is not None else ""
        if db_name and not es_sqlite.SQLiteConnectionPool.detect_memory_mode(db_name):
            # A fresh data dir must just work (`make run` on a new machine), and only the service
            # account may enter it: the event store names people and holds their reasons.
            Path(db_name).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        super().__init__(env)
        # The library builds its own pool; no connection is open yet, so swap in ours.
        pool = self.datastore.pool
        self.datastore.pool = ChainedSQLiteConnectionPool(
            db_name=pool.db_name,
            lock_timeout=pool.lock_timeout,
            pool_size=pool.pool_size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.pool_timeout,
            max_age=pool.max_age,
            pre_ping=pool.pre_ping,
        )
        pool.close()
