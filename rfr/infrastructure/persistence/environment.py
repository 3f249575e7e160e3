"""The eventsourcing environment for the one RfrApplication, derived from Settings only."""

from __future__ import annotations

from rfr.infrastructure.settings import Settings

SQLITE_MODULE = "rfr.infrastructure.persistence.sqlite"
MEMORY_MODULE = "rfr.infrastructure.persistence.memory"

# Seconds a writer waits for another process's write lock before giving up; long enough for
# the API and the worker to share one file without spurious failures.
SQLITE_LOCK_TIMEOUT_S = 30


def application_env(settings: Settings, *, create_tables: bool = True) -> dict[str, str]:
    """Pass to ``RfrApplication(env=...)``; both choices carry the audit hash chain.

    ``create_tables=False`` is for tools that only read an existing store (audit), so they
    never change the file they inspect.
    """
    if settings.persistence == "memory":
        return {"PERSISTENCE_MODULE": MEMORY_MODULE}
    if settings.persistence == "sqlite":
        return {
            "PERSISTENCE_MODULE": SQLITE_MODULE,
            "SQLITE_DBNAME": str(settings.event_store_path),
            "SQLITE_LOCK_TIMEOUT": str(SQLITE_LOCK_TIMEOUT_S),
            "CREATE_TABLE": "yes" if create_tables else "no",
        }
    raise ValueError(f"no persistence for {settings.persistence!r}")
