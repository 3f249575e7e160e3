"""The eventsourcing environment for the one RfrApplication, derived from Settings only."""

from __future__ import annotations

from rfr.infrastructure.settings import Settings

SQLITE_MODULE = "rfr.infrastructure.persistence.sqlite"
MEMORY_MODULE = "rfr.infrastructure.persistence.memory"
POSTGRES_MODULE = "rfr.infrastructure.persistence.postgres"

# Seconds a writer waits for another process's write lock before giving up; long enough for
# the API and the worker to share one file without spurious failures.
SQLITE_LOCK_TIMEOUT_S = 30
# Seconds a PostgreSQL writer waits for the events table's lock (ADR 0016), and connections a
# process keeps: the API's image-work pool and its request threads share them.
POSTGRES_LOCK_TIMEOUT_S = 30
POSTGRES_POOL_SIZE = 4
POSTGRES_MAX_OVERFLOW = 8


def application_env(settings: Settings, *, create_tables: bool = True) -> dict[str, str]:
    """Pass to ``RfrApplication(env=...)``; both choices carry the audit hash chain.

    ``create_tables=False`` is for tools that only read an existing store (audit), so they
    never change the file they inspect: they neither read nor write snapshots (ADR 0028), whose
    table a store from before snapshots does not have; their loads replay the events.
    """
    if settings.persistence == "memory":
        return {"PERSISTENCE_MODULE": MEMORY_MODULE}
    if settings.persistence == "sqlite":
        return {
            "PERSISTENCE_MODULE": SQLITE_MODULE,
            "SQLITE_DBNAME": str(settings.event_store_path),
            "SQLITE_LOCK_TIMEOUT": str(SQLITE_LOCK_TIMEOUT_S),
            "CREATE_TABLE": "yes" if create_tables else "no",
            **({} if create_tables else {"IS_SNAPSHOTTING_ENABLED": "no"}),
        }
    if settings.persistence == "postgres":
        return {"PERSISTENCE_MODULE": POSTGRES_MODULE, **postgres_env(settings)} | {
            "CREATE_TABLE": "yes" if create_tables else "no",
            **({} if create_tables else {"IS_SNAPSHOTTING_ENABLED": "no"}),
        }
    raise ValueError(f"no persistence for {settings.persistence!r}")


def postgres_env(settings: Settings) -> dict[str, str]:
    """eventsourcing's PostgreSQL variables from ``RFR_POSTGRES_DSN`` and ``RFR_POSTGRES_SCHEMA``."""
    from psycopg.conninfo import conninfo_to_dict

    if not settings.postgres_dsn:
        raise ValueError("RFR_PERSISTENCE=postgres needs RFR_POSTGRES_DSN=postgresql://...")
    try:
        parts = conninfo_to_dict(settings.postgres_dsn)
    except Exception:
        # The message would quote the DSN, password and all.
        raise ValueError("RFR_POSTGRES_DSN is not a valid PostgreSQL connection string") from None
    return {
        "POSTGRES_DBNAME": str(parts.get("dbname", "rfr")),
        "POSTGRES_HOST": str(parts.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(parts.get("port", "5432")),
        "POSTGRES_USER": str(parts.get("user", "rfr")),
        "POSTGRES_PASSWORD": str(parts.get("password", "")),
        "POSTGRES_SCHEMA": settings.postgres_schema,
        "POSTGRES_LOCK_TIMEOUT": str(POSTGRES_LOCK_TIMEOUT_S),
        "POSTGRES_POOL_SIZE": str(POSTGRES_POOL_SIZE),
        "POSTGRES_MAX_OVERFLOW": str(POSTGRES_MAX_OVERFLOW),
        # No round trip to check each connection taken from the pool (a search takes many):
        # a connection the server dropped fails its statement, is discarded, and the statement
        # is retried on a new one (the recorders' retry; tests/audit/test_postgres_store.py).
        "POSTGRES_PRE_PING": "no",
    }
