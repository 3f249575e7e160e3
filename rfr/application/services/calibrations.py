"""Calibrated scores (issue 11 item 4, ADR 0020): recording a calibration, and reading the one in force.

``calibrate`` records a fitted ``Calibration`` (``rfr.application.calibration``) as the next
version of its algorithm's ``ScoreCalibration``; only an Administrator may (A-05), with a
reason (A-01), and a refusal is recorded like any other. ``current`` and ``scale_for`` are
what a search reads: the calibration in force for an algorithm (or None), and the score scale
to show, which falls back to the algorithm's own threshold while none is in force.

Reading costs the same whatever the history: the aggregate's id comes from the algorithm id,
and only its newest events are read (newest first, until a ``Calibrated``, ``Withdrawn`` or
``Opened``), so neither older calibrations nor any other stream is touched.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import attrs
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import EventStore

from rfr.application.calibration import Calibration
from rfr.application.errors import AlgorithmMismatch, NotFound
from rfr.application.ports import FaceEmbedder
from rfr.application.services.base import ANYONE, UseCase
from rfr.application.similarity import SimilarityScale
from rfr.domain.score_calibration import CALIBRATE, WITHDRAW, ScoreCalibration, calibration_id, may_calibrate

# Events read at a time, newest first, when looking for the calibration in force.
_PAGE = 16


@attrs.frozen
class CalibrationInForce:
    """A calibration as recorded.

    Attributes:
        version: Its number among the algorithm's calibrations (1, 2, ...).
        at: When it was recorded.
        by: The user id of the administrator who recorded it.
        reason: Why, as they gave it.
        calibration: The numbers.
    """

    version: int
    at: datetime
    by: str
    reason: str
    calibration: Calibration


class ScoreCalibrations(UseCase):
    def calibrate(self, acting_user: str, calibration: Calibration, reason: str) -> CalibrationInForce:
        """Records ``calibration`` as its algorithm's next version, in force from now."""
        data = calibration.to_data()

        def attempt() -> None:
            try:
                existing = self.app.get(calibration_id(calibration.algorithm_id), ScoreCalibration)
            except AggregateNotFoundError:
                self._act(
                    acting_user,
                    CALIBRATE,
                    [],
                    lambda a: a.new(ScoreCalibration.calibrate_first(a.actor, a.at, data, reason)),
                    target_name=f"ScoreCalibration of {calibration.algorithm_id}",
                )
            else:
                self._act(
                    acting_user,
                    CALIBRATE,
                    [existing],
                    lambda a: existing.calibrate(a.actor, a.at, data, reason),
                )

        self._retrying(attempt)
        recorded = self.in_force(calibration.algorithm_id)
        assert recorded is not None
        return recorded

    def ensure_may_calibrate(self, acting_user: str, reason: str) -> None:
        """Refuses at once, and records the refusal (A-01), when ``acting_user`` could not record a
        calibration with ``reason``: for a caller about to spend minutes templating photos first.
        ``calibrate`` decides again when it records."""
        self._read(
            acting_user,
            CALIBRATE,
            ANYONE,
            target="ScoreCalibration",
            decide=lambda actor: may_calibrate(actor, reason),
        )

    def withdraw(self, acting_user: str, algorithm_id: str, reason: str) -> None:
        """Puts the algorithm's own threshold back; ``NotFound`` if it was never calibrated."""

        def attempt() -> None:
            try:
                existing = self.app.get(calibration_id(algorithm_id), ScoreCalibration)
            except AggregateNotFoundError:
                raise NotFound("ScoreCalibration", algorithm_id) from None
            self._act(acting_user, WITHDRAW, [existing], lambda a: existing.withdraw(a.actor, a.at, reason))

        self._retrying(attempt)

    def in_force(self, algorithm_id: str) -> CalibrationInForce | None:
        """The calibration in force for ``algorithm_id``, with who recorded it, or None."""
        if not algorithm_id:
            return None
        return _newest(self.app.events, calibration_id(algorithm_id))

    def current(self, algorithm_id: str) -> Calibration | None:
        """The calibration in force for ``algorithm_id``, or None while it is uncalibrated."""
        recorded = self.in_force(algorithm_id)
        return recorded.calibration if recorded is not None else None

    def scale_for(self, algorithm_id: str, embedder: FaceEmbedder) -> SimilarityScale:
        """The score scale of ``algorithm_id``'s candidates: the calibrated one (0.5 at the
        calibrated operating point), or while uncalibrated the embedder's own threshold.

        ``embedder`` is the one that makes ``algorithm_id``'s templates; a calibration whose
        metric is not the embedder's cannot be of its distances and is refused (T-01).
        """
        return calibrated_scale(self.current(algorithm_id), embedder)


def calibrated_scale(calibration: Calibration | None, embedder: FaceEmbedder) -> SimilarityScale:
    """``scale_for`` of a calibration already read (``current``), so a caller that needs both
    the calibration and its scale reads the events once."""
    if calibration is None:
        return SimilarityScale.for_embedder(embedder)
    if calibration.metric != embedder.metric:
        raise AlgorithmMismatch(calibration.algorithm_id, f"{embedder.algorithm_id} ({embedder.metric})")
    return calibration.scale


def _newest(events: EventStore[UUID], aggregate_id: UUID) -> CalibrationInForce | None:
    """The newest ``Calibrated`` not followed by a ``Withdrawn``, reading back a page at a time."""
    before: int | None = None
    while True:
        page = list(events.get(aggregate_id, lte=before, desc=True, limit=_PAGE))
        for event in page:
            if isinstance(event, ScoreCalibration.Calibrated):
                return CalibrationInForce(
                    version=event.version,
                    at=event.timestamp,
                    by=event.acting.user_id,
                    reason=event.reason,
                    calibration=Calibration.from_data(event.calibration),
                )
            if isinstance(event, ScoreCalibration.Withdrawn | ScoreCalibration.Opened):
                return None
        if len(page) < _PAGE:
            return None
        before = page[-1].originator_version - 1
