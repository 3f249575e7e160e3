"""The searches of every probe, and when each probe falls due for deletion (ADR 0013).

What a probe's decisions need of the search requests opened on it (U-01: searched, a viable
match of a known person; R-02/R-03: its last search), and what the retention sweep needs to
find the probes that may be due, without reading every request opening or every probe:

- ``rfr_probe_searches``: one row per search request, by probe.
- ``rfr_probe_deletion``: one row per probe not purged: its last search, whether it is in the
  Unresolved Crime Cache, and the deletion date a removal from the cache set (U-04). The sweep
  reads the probes searched before a cut-off or whose removal date has come, through indexes.
- ``rfr_probe_unsearched``: one row per probe submitted and not yet searched, not purged, with
  when it was submitted: the sweep reads those submitted before the R-03a cut-off.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
from eventsourcing.domain import DomainEventProtocol

from rfr.application.projections import ProjectionStore, Statement
from rfr.domain.probe_image import ProbeImage
from rfr.domain.search_request import SearchRequest

SEARCHES = "rfr_probe_searches"
DELETION = "rfr_probe_deletion"
UNSEARCHED = "rfr_probe_unsearched"


class ProbeSearchesProjection:
    name = "probe_searches"
    # 2: the probes never searched (R-03a).
    version = 2
    tables = (SEARCHES, DELETION, UNSEARCHED)
    ddl = (
        f"CREATE TABLE IF NOT EXISTS {SEARCHES} ("
        "request_id TEXT PRIMARY KEY, probe_id TEXT NOT NULL, opened_at TEXT NOT NULL, "
        "last_searched_at TEXT, libraries_searched INTEGER NOT NULL, viable INTEGER NOT NULL, "
        "viable_known INTEGER NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS {SEARCHES}_by_probe ON {SEARCHES} (probe_id, opened_at)",
        f"CREATE TABLE IF NOT EXISTS {DELETION} ("
        "probe_id TEXT PRIMARY KEY, last_searched_at TEXT, in_ucc INTEGER NOT NULL, ucc_deletion_due TEXT)",
        f"CREATE INDEX IF NOT EXISTS {DELETION}_searched ON {DELETION} (last_searched_at) WHERE in_ucc = 0",
        f"CREATE INDEX IF NOT EXISTS {DELETION}_removed ON {DELETION} (ucc_deletion_due)",
        f"CREATE INDEX IF NOT EXISTS {DELETION}_in_ucc ON {DELETION} (probe_id) WHERE in_ucc = 1",
        f"CREATE TABLE IF NOT EXISTS {UNSEARCHED} (probe_id TEXT PRIMARY KEY, submitted_at TEXT NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS {UNSEARCHED}_submitted ON {UNSEARCHED} (submitted_at)",
    )

    def statements(self, event: DomainEventProtocol[Any]) -> list[Statement]:
        # Attributes are read only from the events matched: a projection never fails on an event
        # it does not project (a store under verification may hold any row).
        probe = str(event.originator_id)
        match event:
            case ProbeImage.Submitted():
                return [
                    (f"INSERT INTO {DELETION} (probe_id, in_ucc) VALUES (?, 0)", (probe,)),
                    (f"INSERT INTO {UNSEARCHED} (probe_id, submitted_at) VALUES (?, ?)", (probe, _at(event))),
                ]
            case ProbeImage.AddedToUcc():
                return [
                    (
                        f"UPDATE {DELETION} SET in_ucc = 1, ucc_deletion_due = NULL WHERE probe_id = ?",
                        (probe,),
                    )
                ]
            case ProbeImage.RemovedFromUcc():
                due = event.deletion_due.astimezone(UTC).isoformat()
                return [(f"UPDATE {DELETION} SET ucc_deletion_due = ? WHERE probe_id = ?", (due, probe))]
            case ProbeImage.Purged():
                return [
                    (f"DELETE FROM {DELETION} WHERE probe_id = ?", (probe,)),
                    (f"DELETE FROM {UNSEARCHED} WHERE probe_id = ?", (probe,)),
                ]
            case SearchRequest.Opened():
                return [
                    (
                        f"INSERT INTO {SEARCHES} (request_id, probe_id, opened_at, libraries_searched, "
                        "viable, viable_known) VALUES (?, ?, ?, 0, 0, 0)",
                        (str(event.originator_id), event.probe_id, _at(event)),
                    )
                ]
            case SearchRequest.LibrarySearched():
                request, at = str(event.originator_id), _at(event)
                return [
                    (
                        f"UPDATE {SEARCHES} SET last_searched_at = ?, "
                        "libraries_searched = libraries_searched + 1 WHERE request_id = ?",
                        (at, request),
                    ),
                    (
                        f"UPDATE {DELETION} SET last_searched_at = ? "
                        f"WHERE probe_id = (SELECT probe_id FROM {SEARCHES} WHERE request_id = ?)",
                        (at, request),
                    ),
                    (
                        f"DELETE FROM {UNSEARCHED} "
                        f"WHERE probe_id = (SELECT probe_id FROM {SEARCHES} WHERE request_id = ?)",
                        (request,),
                    ),
                ]
            case SearchRequest.CandidateAdjudicated() if event.viable:
                known = 1 if event.identity_known is not False else 0
                return [
                    (
                        f"UPDATE {SEARCHES} SET viable = viable + 1, viable_known = viable_known + ? "
                        "WHERE request_id = ?",
                        (known, str(event.originator_id)),
                    )
                ]
        return []


def _at(event: DomainEventProtocol[Any]) -> str:
    return event.timestamp.astimezone(UTC).isoformat()


@attrs.frozen
class SearchOfProbe:
    """One search request on a probe, as the probe's decisions see it (``probe_image.ProbeSearch``)."""

    id: str
    probe_id: str
    last_searched_at: datetime | None
    libraries_searched: int
    viable: int
    viable_known: int

    @property
    def searched(self) -> bool:
        return self.libraries_searched > 0

    @property
    def has_viable_match(self) -> bool:
        return self.viable > 0

    @property
    def has_viable_match_of_known_person(self) -> bool:
        return self.viable_known > 0


class ProbeSearches:
    """Queries of the projection; each reads the rows of one probe, or what is due."""

    def __init__(self, store: ProjectionStore) -> None:
        self._store = store

    def of(self, probe_id: str) -> list[SearchOfProbe]:
        rows = self._store.query(
            f"SELECT request_id, probe_id, last_searched_at, libraries_searched, viable, viable_known "
            f"FROM {SEARCHES} WHERE probe_id = ? ORDER BY opened_at, request_id",
            (str(probe_id),),
        )
        return [
            SearchOfProbe(
                r[0], r[1], None if r[2] is None else datetime.fromisoformat(r[2]), r[3], r[4], r[5]
            )
            for r in rows
        ]

    def maybe_due(self, searched_before: datetime, removed_due_by: datetime) -> list[str]:
        """Probes not purged that were last searched before ``searched_before`` (out of the cache),
        or removed from the cache with a deletion date by ``removed_due_by``: the only ones whose
        deletion can be due; the domain decides which are."""
        rows = self._store.query(
            f"SELECT probe_id FROM {DELETION} WHERE in_ucc = 0 AND last_searched_at <= ? "
            f"UNION SELECT probe_id FROM {DELETION} WHERE ucc_deletion_due <= ?",
            (searched_before.astimezone(UTC).isoformat(), removed_due_by.astimezone(UTC).isoformat()),
        )
        return sorted(r[0] for r in rows)

    def unsearched_by(self, submitted_by: datetime) -> list[str]:
        """Probes not purged, never searched, and submitted at or before ``submitted_by``: the
        only ones R-03a can make due; the domain decides which are."""
        rows = self._store.query(
            f"SELECT probe_id FROM {UNSEARCHED} WHERE submitted_at <= ?",
            (submitted_by.astimezone(UTC).isoformat(),),
        )
        return sorted(r[0] for r in rows)

    def in_ucc(self) -> list[str]:
        """Probes in the Unresolved Crime Cache now: added, not removed, not purged."""
        rows = self._store.query(
            f"SELECT probe_id FROM {DELETION} WHERE in_ucc = 1 AND ucc_deletion_due IS NULL ORDER BY probe_id"
        )
        return [r[0] for r in rows]

    def live(self) -> Sequence[str]:
        """Every probe not purged (for a check of the whole store, not for a sweep)."""
        return [r[0] for r in self._store.query(f"SELECT probe_id FROM {DELETION} ORDER BY probe_id")]
