"""The probes that await an Inspector's endorsement (P-04, P-06, P-08): the endorsement queue.

An approving officer's queue lists the probes still missing an endorsement. Deciding that from
the probes themselves means loading every probe; this projection keeps, per probe not purged,
the facts the rules ask (``rules_probe``): whether the person shown calls for P-04 or P-06
(decided by ``endorsements_whatever_the_level`` as each event comes), the probe's level, and
which endorsements it has. P-08's levels are the policy config's, which may change at any time,
so they are not decided here: the query is given the levels in force and the domain's answer
for each listed probe stays the one the page shows (``ProbeGovernanceView``).

- ``rfr_endorsement_queue``: one row per probe not purged, in submission order (``seq``).
  Partial indexes hold just the rows awaiting each kind, so reading the queue costs what
  awaits, not what is stored.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from eventsourcing.domain import DomainEventProtocol

from rfr.application.projections import ProjectionStore, Statement, placeholders
from rfr.domain.codec import from_data
from rfr.domain.forms import Form3
from rfr.domain.images import PerceivedAgeBand, VulnerabilityFlags
from rfr.domain.probe_image import ProbeImage
from rfr.domain.rules_probe import EndorsementKind, endorsements_whatever_the_level

QUEUE = "rfr_endorsement_queue"

_AWAITS_P04 = "needs_p04 = 1 AND p04 = 0"
_AWAITS_P06 = "needs_p06 = 1 AND p06 = 0"


class EndorsementQueueProjection:
    name = "endorsement_queue"
    version = 1
    tables = (QUEUE,)
    ddl = (
        f"CREATE TABLE IF NOT EXISTS {QUEUE} ("
        "probe_id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, level INTEGER NOT NULL, "
        "needs_p04 INTEGER NOT NULL, needs_p06 INTEGER NOT NULL, "
        "p04 INTEGER NOT NULL, p06 INTEGER NOT NULL, p08 INTEGER NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS {QUEUE}_p04 ON {QUEUE} (seq) WHERE {_AWAITS_P04}",
        f"CREATE INDEX IF NOT EXISTS {QUEUE}_p06 ON {QUEUE} (seq) WHERE {_AWAITS_P06}",
        f"CREATE INDEX IF NOT EXISTS {QUEUE}_p08 ON {QUEUE} (level, seq) WHERE p08 = 0",
    )

    def statements(self, event: DomainEventProtocol[Any]) -> list[Statement]:
        probe = str(event.originator_id)
        match event:
            case ProbeImage.Submitted():
                form = from_data(Form3, event.form)
                needed = endorsements_whatever_the_level(form.perceived_age, form.vulnerability)
                return [
                    (
                        f"INSERT INTO {QUEUE} (probe_id, seq, level, needs_p04, needs_p06, p04, p06, p08) "
                        f"VALUES (?, (SELECT coalesce(max(seq), 0) + 1 FROM {QUEUE}), ?, ?, ?, 0, 0, 0)",
                        (
                            probe,
                            int(form.image_level),
                            int(EndorsementKind.UNDER_16 in needed),
                            int(EndorsementKind.VULNERABILITY in needed),
                        ),
                    )
                ]
            case ProbeImage.PerceivedAgeReassessed():
                # P-06 comes from the Form 3's flags, which a reassessment of age leaves alone.
                age = PerceivedAgeBand(event.perceived_age)
                under_16 = EndorsementKind.UNDER_16 in endorsements_whatever_the_level(age, _NO_FLAGS)
                return [(f"UPDATE {QUEUE} SET needs_p04 = ? WHERE probe_id = ?", (int(under_16), probe))]
            case ProbeImage.LevelRaised():
                return [(f"UPDATE {QUEUE} SET level = ? WHERE probe_id = ?", (int(event.level), probe))]
            case ProbeImage.EndorsementGiven():
                column = _GIVEN[EndorsementKind(event.kind)]
                return [(f"UPDATE {QUEUE} SET {column} = 1 WHERE probe_id = ?", (probe,))]
            case ProbeImage.Purged():
                return [(f"DELETE FROM {QUEUE} WHERE probe_id = ?", (probe,))]
        return []


_GIVEN = {
    EndorsementKind.UNDER_16: "p04",
    EndorsementKind.VULNERABILITY: "p06",
    EndorsementKind.HIGH_IMAGE_LEVEL: "p08",
}


_NO_FLAGS = VulnerabilityFlags()


class EndorsementQueue:
    """The probes awaiting an endorsement, oldest first."""

    def __init__(self, store: ProjectionStore) -> None:
        self._store = store

    def awaiting(
        self, high_levels: Collection[int], *, after: int, limit: int
    ) -> tuple[list[str], int | None]:
        """Probe ids after cursor ``after`` (a ``seq``) missing P-04 or P-06, or P-08 at one of
        ``high_levels`` (the config's ``inspector_approval_levels``); and the next cursor, or
        None on the last page. Each branch reads its own partial index."""
        levels = sorted({int(level) for level in high_levels})
        branches = [
            f"SELECT probe_id, seq FROM {QUEUE} WHERE {_AWAITS_P04} AND seq > ?",
            f"SELECT probe_id, seq FROM {QUEUE} WHERE {_AWAITS_P06} AND seq > ?",
        ]
        params: list[Any] = [after, after]
        if levels:
            branches.append(
                f"SELECT probe_id, seq FROM {QUEUE} WHERE p08 = 0 AND level IN ({placeholders(len(levels))}) "
                "AND seq > ?"
            )
            params += [*levels, after]
        rows = self._store.query(
            f"SELECT probe_id, seq FROM ({' UNION '.join(branches)}) AS awaiting ORDER BY seq LIMIT ?",
            (*params, limit),
        )
        next_after = rows[-1][1] if len(rows) == limit else None
        return [r[0] for r in rows], next_after
