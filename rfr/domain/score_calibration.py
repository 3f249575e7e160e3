"""The calibration of one algorithm's scores, each change an event (issue 11 item 4, ADR 0020).

One ``ScoreCalibration`` per algorithm, its id derived from the algorithm id, so the one in
force is found without a search. ``Opened`` names the algorithm; every ``Calibrated`` carries
a version one above the last, and the calibration's numbers (the measured FMR table, its
fitted tail, the target FPIR, the gallery size and the threshold meeting it, the dataset's
hash and counts: no image, no template and no person's name, ADR 0004); ``Withdrawn`` puts
the algorithm's own threshold back. Who did each and why is on every event (A-01).

Who calibrates: an Administrator (A-05: only authorised, trained users act, in a role they
hold). A calibration is a measurement of the system, not a decision about a case, a library
or a policy value: it moves where the displayed score reads 0.5 and what each candidate's
chance of being a non-mate's reads, never which candidates a search returns. The policy names
no role for it; the administrators are the "limited number of staff who had specialist
administrator rights" who manage the system [10.3] (ADR 0020 weighs the SRO instead).

A calibration is of one algorithm only (T-01): the numbers of one algorithm's distances are
never read as another's, so a calibration naming another algorithm is refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import attrs
from eventsourcing.domain import Aggregate

from rfr.domain.calendar import require_aware
from rfr.domain.decisions import Decision, combine
from rfr.domain.governed import GovernedAggregate
from rfr.domain.people import Actor, Role
from rfr.domain.refused_attempt import enforce_new
from rfr.domain.rules_access import authorised, stated

CALIBRATE = "calibrate scores"
WITHDRAW = "withdraw score calibration"


def calibration_id(algorithm_id: str) -> UUID:
    """The id of the ``ScoreCalibration`` of ``algorithm_id``: the same on every installation."""
    if not algorithm_id:
        raise ValueError("an algorithm id is needed")
    return uuid5(NAMESPACE_URL, f"urn:rfr:score-calibration:{algorithm_id}")


def may_calibrate(actor: Actor, reason: str | None) -> Decision:
    """A-05: an active, trained Administrator; A-01: with the reason stated."""
    return combine(
        authorised(actor, Role.ADMINISTRATOR),
        stated(reason, "A-01", "the reason for the calibration"),
    )


def of_algorithm(algorithm_id: str, calibration: Mapping[str, Any]) -> Decision:
    """T-01: a calibration measured on one algorithm's templates is never another's."""
    named = calibration.get("algorithm_id")
    return Decision.check(
        named == algorithm_id,
        "T-01",
        f"a calibration of algorithm {named!r} cannot calibrate algorithm {algorithm_id!r}",
    )


@attrs.frozen
class CalibrationVersion:
    """One calibration as recorded: its number, when, by whom, why, and its numbers."""

    version: int
    at: datetime
    by: str
    reason: str
    calibration: Mapping[str, Any]


class ScoreCalibration(GovernedAggregate):
    """The calibrations of one algorithm's scores (fixed id per algorithm: ``calibration_id``)."""

    class Opened(GovernedAggregate.Event, Aggregate.Created):
        algorithm_id: str

        def apply(self, agg: ScoreCalibration) -> None:
            agg.algorithm_id = self.algorithm_id
            agg.versions = []
            agg.in_force = None

    class Calibrated(GovernedAggregate.Event):
        version: int
        calibration: dict[str, Any]

        def apply(self, agg: ScoreCalibration) -> None:
            entry = CalibrationVersion(
                self.version, self.timestamp, self.acting.user_id, self.reason, self.calibration
            )
            agg.versions.append(entry)
            agg.in_force = entry

    class Withdrawn(GovernedAggregate.Event):
        version: int

        def apply(self, agg: ScoreCalibration) -> None:
            agg.in_force = None

    @classmethod
    def calibrate_first(
        cls, actor: Actor, at: datetime, calibration: Mapping[str, Any], reason: str
    ) -> ScoreCalibration:
        """The first calibration of the algorithm ``calibration`` names (version 1)."""
        algorithm_id = str(calibration.get("algorithm_id") or "")
        decision = combine(
            may_calibrate(actor, reason),
            Decision.check(bool(algorithm_id), "T-01", "a calibration must name the algorithm it measured"),
        )
        enforce_new(CALIBRATE, f"ScoreCalibration of {algorithm_id or 'no algorithm'}", actor, at, decision)
        agg = cls._create(
            cls.Opened,
            id=calibration_id(algorithm_id),
            timestamp=require_aware(at),
            actor=actor.to_data(),
            reason=reason,
            algorithm_id=algorithm_id,
        )
        agg.calibrate(actor, at, calibration, reason)
        return agg

    def calibrate(self, actor: Actor, at: datetime, calibration: Mapping[str, Any], reason: str) -> None:
        """A new calibration, in force from now: version one above the last."""
        decision = combine(may_calibrate(actor, reason), of_algorithm(self.algorithm_id, calibration))
        self._enforce(CALIBRATE, actor, at, decision)
        self._record(
            self.Calibrated, actor, at, reason, version=self.latest_version + 1, calibration=dict(calibration)
        )

    def withdraw(self, actor: Actor, at: datetime, reason: str) -> None:
        """Back to the algorithm's own threshold; nothing happens when no calibration is in force."""
        self._enforce(WITHDRAW, actor, at, may_calibrate(actor, reason))
        if self.in_force is not None:
            self._record(self.Withdrawn, actor, at, reason, version=self.in_force.version)

    @property
    def latest_version(self) -> int:
        return self.versions[-1].version if self.versions else 0
