"""A small aggregate of the tests' own, standing in for the domain's (built in parallel).

Loaded under the fixed module name ``rfr_audit_samples`` (see conftest.py) so that event
topics resolve in a ``rfr`` CLI subprocess too, given this folder on PYTHONPATH.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path

import attrs
from eventsourcing.domain import Aggregate, event

from rfr.application.app import RfrApplication
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings


def open_app(data_dir: Path, persistence: str = "sqlite") -> RfrApplication:
    """The application exactly as the entrypoints build it, on ``data_dir`` (on ``postgres``:
    the database and schema the environment names, see the ``postgres_store`` fixture)."""
    if persistence == "postgres":
        env = {**os.environ, "RFR_DATA_DIR": str(data_dir), "RFR_PERSISTENCE": "postgres"}
        return RfrApplication(env=application_env(Settings.from_env(env)))
    return RfrApplication(env=application_env(Settings(data_dir=data_dir, persistence=persistence)))


class Status(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


@attrs.frozen
class Officer:
    name: str
    rank: str


class Case(Aggregate):
    @event("Opened")
    def __init__(self, reference: str, officer: str, rank: str) -> None:
        self.reference = reference
        self.officer = Officer(officer, rank)
        self.status = Status.OPEN
        self.notes: tuple[str, ...] = ()
        self.tags: frozenset[str] = frozenset()

    @event("NoteAdded")
    def add_note(self, note: str) -> None:
        self.notes = (*self.notes, note)

    @event("Tagged")
    def tag(self, tag: str) -> None:
        self.tags = self.tags | {tag}

    @event("Closed")
    def close(self, reason: str) -> None:
        self.status = Status.CLOSED
        self.closing_reason = reason
