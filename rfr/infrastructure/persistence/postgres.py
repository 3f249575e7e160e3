"""eventsourcing's PostgreSQL persistence with the audit hash chain and the projections written in
the same transaction as the events (ADR 0016).

Point ``PERSISTENCE_MODULE`` at this module (``application_env`` does, for
``RFR_PERSISTENCE=postgres``). It holds exactly one infrastructure factory, so eventsourcing
can find it by module topic.

The serialisation point is the one the library already takes: every transaction that stores
events first locks the events table in EXCLUSIVE mode, so that notification ids are committed
in the order they are issued. Holding that lock, a writer reads the chain head (``FOR UPDATE``
as well, so a writer that bypassed the library could not fork it), appends one link per event
in notification order, moves the head, and applies the projections' statements: one chain, no
gaps, no forks, across any number of processes. Readers are never blocked by it.

Everything lives in one schema (``RFR_POSTGRES_SCHEMA``, default ``public``): connections set
their ``search_path`` to it, so the projections' SQL names its tables without a schema.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import attrs
import psycopg
from eventsourcing import postgres as es_postgres
from eventsourcing.persistence import StoredEvent
from psycopg.sql import SQL, Identifier

from rfr.application.projections import STATEMENTS_KEYWORD, Projection, Statement
from rfr.infrastructure.persistence import projection_tables
from rfr.infrastructure.persistence.chain import (
    CHAIN_FORMAT,
    EMPTY_HEAD,
    AuditChainError,
    AuditSnapshot,
    ChainHead,
)
from rfr.infrastructure.persistence.group_commit import GroupCommit

CHAIN_TABLE = "rfr_audit_chain"
HEAD_TABLE = "rfr_audit_head"
APPEND_ONLY_FUNCTION = "rfr_append_only"
APPEND_FUNCTION = "rfr_append"
LINK_DIGEST_FUNCTION = "rfr_link_digest"

# Rows streamed per round trip when the whole log is read (verification, rebuilds).
STREAM_ROWS = 5000

# As the library retries its own reads and writes: a connection the server dropped (a restart, a
# fail-over) raises once, leaves the pool, and the statement runs again on a new connection.
_retry = es_postgres.retry(
    (es_postgres.InterfaceError, es_postgres.OperationalError), max_attempts=10, wait=0.2
)

_PLACEHOLDER = re.compile(r"\?")
_SCHEMA_LOCK = "SELECT pg_advisory_lock(hashtext('rfr_schema'))"
_SCHEMA_UNLOCK = "SELECT pg_advisory_unlock(hashtext('rfr_schema'))"


def to_psycopg(sql: str) -> str:
    """The projections' ``?`` placeholders as psycopg's ``%s`` (no projection SQL holds ``%``
    or a literal ``?``; a statement that did would be refused here rather than misread)."""
    if "%" in sql:
        raise ValueError(f"projection SQL must not contain '%': {sql}")
    return _PLACEHOLDER.sub("%s", sql)


@attrs.frozen
class _Save:
    """One ``app.save``: its events and its projections' statements."""

    events: tuple[StoredEvent, ...]
    statements: tuple[Statement, ...]


class _ProjectionCursor:
    """A psycopg cursor seen through the ``projection_tables.Cursor`` protocol (``?`` SQL)."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(to_psycopg(sql), tuple(params), prepare=True)

    def fetchall(self) -> list[Any]:
        return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in self._cursor.fetchall()]


class ChainedPostgresDatastore(es_postgres.PostgresDatastore):
    """The library's datastore, with every connection's ``search_path`` set to the schema."""

    def after_connect_func(self) -> Callable[[psycopg.Connection[Any]], None]:
        configure = super().after_connect_func()
        path = SQL("SET search_path TO {0}").format(Identifier(self.schema))

        def after_connect(conn: psycopg.Connection[Any]) -> None:
            configure(conn)
            conn.execute(path)

        return after_connect


class ChainedPostgresApplicationRecorder(es_postgres.PostgresApplicationRecorder):
    """Appends one chain link per stored event, and moves the head, inside the event insert."""

    def __init__(self, datastore: es_postgres.PostgresDatastore, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        schema = Identifier(self.datastore.schema)
        chain, head = Identifier(CHAIN_TABLE), Identifier(HEAD_TABLE)
        function = Identifier(APPEND_ONLY_FUNCTION)
        self.sql_create_statements += [
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.{1} (position bigint PRIMARY KEY, "
                "notification_id bigint NOT NULL UNIQUE, previous_hash text NOT NULL, hash text NOT NULL)"
            ).format(schema, chain),
            SQL(
                "CREATE TABLE IF NOT EXISTS {0}.{1} (id integer PRIMARY KEY CHECK (id = 1), "
                "count bigint NOT NULL, hash text NOT NULL)"
            ).format(schema, head),
            SQL("INSERT INTO {0}.{1} VALUES (1, {2}, {3}) ON CONFLICT DO NOTHING").format(
                schema, head, EMPTY_HEAD.count, EMPTY_HEAD.hash
            ),
            # Append-only is enforced by the database too; someone who drops these
            # triggers is what the chain is there to catch.
            SQL(
                "CREATE OR REPLACE FUNCTION {0}.{1}() RETURNS trigger LANGUAGE plpgsql AS "
                "$$BEGIN RAISE EXCEPTION '% is append-only (A-01)', TG_TABLE_NAME; END$$"
            ).format(schema, function),
        ]
        self.sql_create_statements += [self._link_digest_function(), self._append_function()]
        for table, what in (
            (self.events_table_name, "UPDATE OR DELETE OR TRUNCATE"),
            (CHAIN_TABLE, "UPDATE OR DELETE OR TRUNCATE"),
            (HEAD_TABLE, "DELETE OR TRUNCATE"),
        ):
            self.sql_create_statements.append(self._trigger(table, what))
        self._append_statement = SQL("SELECT * FROM {0}.{1}(%s, %s, %s, %s, %s)").format(
            schema, Identifier(APPEND_FUNCTION)
        )
        # Saves from this process's threads, written together while another batch holds the lock.
        self.group_commit: GroupCommit[_Save, list[int]] = GroupCommit(
            self._write_saves, retry_alone=(es_postgres.IntegrityError,)
        )

    def create_table(self) -> None:
        # Several processes start at once (issue 10); PostgreSQL's IF NOT EXISTS and OR REPLACE
        # are not safe against each other, so one creator at a time, across the database.
        with self.datastore.get_connection() as conn:
            conn.execute(_SCHEMA_LOCK)
            try:
                super().create_table()
            finally:
                conn.execute(_SCHEMA_UNLOCK)

    def _trigger(self, table: str, operations: str) -> Any:
        return SQL(
            "CREATE OR REPLACE TRIGGER {name} BEFORE " + operations + " ON {schema}.{table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.{function}()"
        ).format(
            name=Identifier(f"{table}_append_only"),
            schema=Identifier(self.datastore.schema),
            table=Identifier(table),
            function=Identifier(APPEND_ONLY_FUNCTION),
        )

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        if not stored_events:
            return []
        save = _Save(tuple(stored_events), tuple(kwargs.get(STATEMENTS_KEYWORD, ())))
        return self.group_commit.submit(save)

    @_retry
    def _write_saves(self, saves: Sequence[_Save]) -> list[list[int]]:
        """Stores ``saves`` in one transaction and one round trip: ``rfr_append`` takes the table
        lock (the library's serialisation point), inserts the events, links each to the chain
        and moves the head and the projections' positions; the projections' own statements
        follow it in the same pipeline, committed together at its Sync. Without projection
        statements it runs alone, in the implicit transaction of one statement."""
        events = [event for save in saves for event in save.events]
        columns = (
            [e.originator_id for e in events],
            [e.originator_version for e in events],
            [e.topic for e in events],
            [e.state for e in events],
            self._projections_installed,
        )
        statements = [statement for save in saves for statement in save.statements]
        with self.datastore.get_connection() as conn:
            try:
                if not statements:
                    with conn.cursor() as curs:
                        curs.execute(self._append_statement, columns, prepare=True)
                        notification_ids = [row["rfr_append"] for row in curs.fetchall()]
                else:
                    notification_ids = self._append_with_statements(conn, columns, statements)
            except psycopg.errors.UniqueViolation as e:
                # A link whose position is taken means the head is behind its links (tampering),
                # never a conflict between saves.
                if e.diag.table_name == CHAIN_TABLE:
                    raise AuditChainError(f"audit chain head is behind its links: {e}") from e
                raise
            except psycopg.errors.RaiseException as e:
                if e.diag.message_primary and HEAD_TABLE in e.diag.message_primary:
                    raise AuditChainError(e.diag.message_primary) from e
                raise
        results, start = [], 0
        for save in saves:
            results.append(notification_ids[start : start + len(save.events)])
            start += len(save.events)
        return results

    def _append_with_statements(
        self, conn: psycopg.Connection[Any], columns: tuple[Any, ...], statements: Sequence[Statement]
    ) -> list[int]:
        """``rfr_append`` and the projections' rows (ADR 0013), save by save in the order they
        were stored, sent in one pipeline with one Sync: one round trip. With no BEGIN, the
        server runs everything before the Sync as one implicit transaction, committed at the
        Sync or rolled back whole (tests/audit/test_postgres_store.py). A unique key the
        statements break is a conflict, like a taken version."""
        error: Exception | None = None
        with conn.pipeline() as pipeline, conn.cursor() as curs, conn.cursor() as projections:
            try:
                curs.execute(self._append_statement, columns, prepare=True)
                projection_tables.apply(_ProjectionCursor(projections), statements, None)
                pipeline.sync()
                notification_ids = [row["rfr_append"] for row in curs.fetchall()]
            except Exception as e:
                # Raised once the pipeline has ended, as the library does, so that psycopg does
                # not warn of a pipeline left with work in it.
                error = e
        if error is not None:
            raise error
        return notification_ids

    def _link_digest_function(self) -> Any:
        """``chain.link_digest`` in SQL, byte for byte: SHA-256 over the format tag and the
        length-prefixed previous digest, position, notification id, originator id (32 hex
        digits), version, topic and state. Verification recomputes it in Python."""
        field = "int8send(octet_length({0})::bigint) || {0}"
        text = "convert_to({0}::text, 'UTF8')"
        parts = [
            f"convert_to('{CHAIN_FORMAT.decode()}', 'UTF8')",
            field.format("a_previous"),
            *(
                field.format(text.format(f"a_{name}"))
                for name in ("position", "nid", "oid", "version", "topic")
            ),
            field.format("a_state"),
        ]
        return SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{name}(a_previous bytea, a_position bigint, a_nid bigint, "
            "a_oid text, a_version bigint, a_topic text, a_state bytea) RETURNS bytea "
            "LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT sha256(" + " || ".join(parts) + ") $$"
        ).format(schema=Identifier(self.datastore.schema), name=Identifier(LINK_DIGEST_FUNCTION))

    def _append_function(self) -> Any:
        """One save's whole write to the event store and the chain, in the server (ADR 0016)."""
        return SQL(
            "CREATE OR REPLACE FUNCTION {schema}.{append}(ids {id_type}[], versions bigint[], "
            "topics text[], states bytea[], move_positions boolean) RETURNS SETOF bigint "
            "LANGUAGE plpgsql AS $BODY$ "
            "DECLARE at bigint; previous bytea; digest bytea; last bigint; r record; "
            "BEGIN "
            "SET LOCAL lock_timeout = '{lock_timeout}s'; "
            # The library's serialisation point: ids are committed in the order they are issued.
            "LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE; "
            "NOTIFY {channel}; "
            "SELECT count, decode(hash, 'hex') INTO at, previous "
            "FROM {schema}.{head} WHERE id = 1 FOR UPDATE; "
            "IF NOT FOUND THEN "
            "RAISE EXCEPTION '{head_name} has no row: the audit chain was tampered with'; "
            "END IF; "
            "FOR r IN WITH stored AS ("
            "INSERT INTO {schema}.{events} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(ids, versions, topics, states) "
            "RETURNING notification_id, originator_id, originator_version, topic, state"
            ") SELECT * FROM stored ORDER BY notification_id LOOP "
            "at := at + 1; "
            "digest := {schema}.{digest}(previous, at, r.notification_id, "
            "replace(r.originator_id::text, '-', ''), r.originator_version, r.topic, r.state); "
            "INSERT INTO {schema}.{chain} VALUES (at, r.notification_id, encode(previous, 'hex'), "
            "encode(digest, 'hex')); "
            "previous := digest; last := r.notification_id; "
            "RETURN NEXT r.notification_id; "
            "END LOOP; "
            "UPDATE {schema}.{head} SET count = at, hash = encode(previous, 'hex') WHERE id = 1; "
            "IF move_positions THEN "
            "UPDATE {schema}.{positions} SET position = last WHERE position < last; "
            "END IF; "
            "END $BODY$"
        ).format(
            schema=Identifier(self.datastore.schema),
            append=Identifier(APPEND_FUNCTION),
            digest=Identifier(LINK_DIGEST_FUNCTION),
            id_type=SQL(self.datastore.originator_id_type),
            lock_timeout=SQL(str(int(self.datastore.lock_timeout))),
            events=Identifier(self.events_table_name),
            channel=Identifier(self.channel_name),
            head=Identifier(HEAD_TABLE),
            head_name=SQL(HEAD_TABLE),
            chain=Identifier(CHAIN_TABLE),
            positions=Identifier(projection_tables.POSITIONS),
        )

    @contextmanager
    def _statement(self) -> Iterator[psycopg.Cursor[Any]]:
        """A cursor for one read-only statement, run on its own (autocommit: its own snapshot),
        with no BEGIN and ROLLBACK around it: one round trip, not three."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            yield curs

    @_retry
    def chain_head(self, *, durable: bool = True) -> ChainHead | None:
        """The head as committed (a committed transaction is durable on the server)."""
        del durable
        with self._statement() as curs:
            curs.execute(SQL("SELECT count, hash FROM {0} WHERE id = 1").format(Identifier(HEAD_TABLE)))
            found = curs.fetchone()
        return None if found is None else ChainHead(count=int(found["count"]), hash=found["hash"])

    @contextmanager
    def audit_snapshot(self) -> Iterator[AuditSnapshot]:
        """Head, raw event rows and links read in one REPEATABLE READ transaction (one snapshot)."""
        with self.datastore.get_connection() as conn, conn.transaction(force_rollback=True):
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            with conn.cursor() as c:
                c.execute(SQL("SELECT count, hash FROM {0} WHERE id = 1").format(Identifier(HEAD_TABLE)))
                found = c.fetchone()
            head = None if found is None else ChainHead(count=int(found["count"]), hash=found["hash"])
            # Raw columns as the chain hashes them: the id as the 32 hex digits the writer
            # hashed, the state as bytes. Plain tuples, streamed in server-side batches.
            with (
                conn.cursor(name="rfr_audit_events", row_factory=psycopg.rows.tuple_row) as events,
                conn.cursor(name="rfr_audit_links", row_factory=psycopg.rows.tuple_row) as links,
            ):
                events.itersize = links.itersize = STREAM_ROWS
                events.execute(
                    SQL(
                        "SELECT notification_id, replace(originator_id::text, '-', ''), "
                        "originator_version, topic, state FROM {0} ORDER BY notification_id"
                    ).format(Identifier(self.events_table_name))
                )
                links.execute(
                    SQL(
                        "SELECT position, notification_id, previous_hash, hash FROM {0} ORDER BY position"
                    ).format(Identifier(CHAIN_TABLE))
                )
                yield AuditSnapshot(head=head, events=iter(events), links=iter(links))

    # -- projections (rfr.application.projections.ProjectionStore) ------------------------------

    _projections_installed = False

    def install_projections(self, projections: Sequence[Projection]) -> list[str]:
        with self.datastore.transaction(commit=True) as curs:
            # One installer at a time: several processes start together (issue 10).
            curs.execute("SELECT pg_advisory_xact_lock(hashtext('rfr_projections'))")
            cursor = _ProjectionCursor(curs)
            projection_tables.create(cursor, projections)
            curs.execute(self.max_notification_id_statement)
            head = curs.fetchone()["max"] or 0
            stale = projection_tables.stale(cursor, projections, head)
        self._projections_installed = True
        return stale

    def rebuild_projections(
        self, projections: Sequence[Projection], statements_of: Callable[[StoredEvent], list[Statement]]
    ) -> int:
        with self.datastore.get_connection() as conn, conn.transaction():
            with conn.cursor() as curs:
                # The events table's lock first: no event is stored while the log is replayed.
                self._lock_table(curs)
            with (
                conn.cursor() as curs,
                conn.cursor(name="rfr_rebuild", row_factory=psycopg.rows.tuple_row) as rows,
            ):
                rows.itersize = STREAM_ROWS
                rows.execute(
                    SQL(
                        "SELECT notification_id, originator_id, originator_version, topic, state "
                        "FROM {0} ORDER BY notification_id"
                    ).format(Identifier(self.events_table_name))
                )
                events = ((r[0], StoredEvent(r[1], r[2], r[3], bytes(r[4]))) for r in rows)
                return projection_tables.rebuild(_ProjectionCursor(curs), projections, events, statements_of)

    @_retry
    def projection_positions(self) -> dict[str, tuple[int, int]]:
        with self._statement() as curs:
            return projection_tables.positions(_ProjectionCursor(curs))

    @_retry
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._statement() as curs:
            cursor = _ProjectionCursor(curs)
            cursor.execute(sql, params)
            return cursor.fetchall()


class ChainedPostgresFactory(es_postgres.PostgresFactory):
    application_recorder_class = ChainedPostgresApplicationRecorder

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        # The library builds its own datastore; no connection is open yet, so swap in ours.
        old = self.datastore
        pool = old.pool
        self.datastore = ChainedPostgresDatastore(
            dbname=pool.kwargs["dbname"],
            host=pool.kwargs["host"],
            port=pool.kwargs["port"],
            user=pool.kwargs["user"],
            password=pool.kwargs["password"],
            connect_timeout=pool.timeout,
            idle_in_transaction_session_timeout=old.idle_in_transaction_session_timeout,
            pool_size=pool.min_size,
            max_overflow=pool.max_size - pool.min_size,
            max_waiting=pool.max_waiting,
            conn_max_age=pool.max_lifetime,
            pre_ping=old.pre_ping,
            lock_timeout=old.lock_timeout,
            schema=old.schema,
            single_row_tracking=old.single_row_tracking,
            originator_id_type=old.originator_id_type,  # type: ignore[arg-type]
            enable_db_functions=old.enable_db_functions,
        )
        old.close()
