"""The retention sweep: deleting on schedule what the policy says must go (R-01..R-05, R-03a, L-12, U-04).

``RetentionSweep.run()`` is one round. It acts as ``RETENTION_WORKER`` (see
``rfr.domain.retention_sweep`` for that actor's authority and for when each thing is due):

1. approvals past their end date are recorded as expired (L-12);
2. per library: images past their limit leave searching (``ImageRetentionExpired``, R-01),
   then the images due (R-01, or all of them under L-12) are erased through the
   ``BiometricErasure`` service: image, face analyses, templates, index entries, and an
   ``ImagesPurged`` event that keeps the fact, never the data (R-05);
3. per probe not yet deleted: if its deletion falls due (R-02, R-03, U-04, or R-03a when it was
   never searched), it is erased the same way and ``Purged`` recorded, its reason naming the rule.

Anything under a legal hold (R-04) is reported as held instead of deleted. A failure on
one item is reported and the round goes on; nothing about a failure is written, so the
next round simply tries again. Running a round again changes nothing that the last round
finished, so rounds may run every few minutes, and two workers at once at worst report a
failure for what the other one deleted first.

Library images are erased in batches because a vector index pays a rebuild at every save
(docs/adr/0007); a batch that fails is retried image by image so one bad image does not
hold back the others.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from uuid import UUID

import attrs
from eventsourcing.domain import Aggregate

from rfr.application.app import RfrApplication
from rfr.application.ports import Clock
from rfr.application.services.base import MAX_PAGE, WorkerUseCase, list_ids
from rfr.application.services.biometric_erasure import BiometricErasure
from rfr.application.services.biometric_support import Biometrics
from rfr.domain.decisions import PolicyRefusal
from rfr.domain.enrolment_batch import ImageHolder
from rfr.domain.forms import LegalHold
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.probe_image import ProbeImage
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.retention import NEVER_SEARCHED, deletion_deadline, never_searched_cut_off
from rfr.domain.retention_sweep import (
    DEFAULT_LEAD_TIME,
    RETENTION_WORKER,
    approval_ended,
    approval_lapsed,
    library_due,
    probe_due,
)

DEFAULT_BATCH_SIZE = 200

# Library-image rules count images; probe rules count probes.
IMAGE_RULES = ("R-01", "L-12")
PROBE_RULES = ("R-02", "R-03", NEVER_SEARCHED, "U-04")


@attrs.frozen
class HeldItem:
    """Deletion due but suspended by a legal hold (R-04): ``count`` images of a library, or one probe."""

    kind: str
    aggregate_id: str
    rule_id: str
    count: int
    hold_kind: str
    hold_reason: str


@attrs.frozen
class FailedItem:
    """Something the round could not do; ``item`` names the image (or is empty). Retried next round."""

    kind: str
    aggregate_id: str
    rule_id: str
    item: str
    error: str


@attrs.frozen
class RetentionSummary:
    """One round: deletions by rule, what left searching, expiries recorded, holds and failures."""

    at: datetime
    deleted: Mapping[str, int]
    templates_destroyed: int
    removed_from_search: int
    approvals_expired: tuple[str, ...]
    held: tuple[HeldItem, ...]
    failed: tuple[FailedItem, ...]

    @property
    def changed_anything(self) -> bool:
        return bool(sum(self.deleted.values()) or self.removed_from_search or self.approvals_expired)


@attrs.define
class _Tally:
    deleted: Counter[str] = attrs.field(factory=Counter)
    templates_destroyed: int = 0
    removed_from_search: int = 0
    approvals_expired: list[str] = attrs.field(factory=list)
    held: list[HeldItem] = attrs.field(factory=list)
    failed: list[FailedItem] = attrs.field(factory=list)

    def fail(
        self, kind: str, aggregate_id: object, rule_id: str, error: BaseException, item: str = ""
    ) -> None:
        self.failed.append(FailedItem(kind, str(aggregate_id), rule_id, item, _describe(error)))

    def hold(self, kind: str, aggregate_id: object, rule_id: str, count: int, hold: LegalHold) -> None:
        self.held.append(HeldItem(kind, str(aggregate_id), rule_id, count, hold.kind, hold.reason))

    def summary(self, at: datetime) -> RetentionSummary:
        return RetentionSummary(
            at,
            {rule: n for rule, n in sorted(self.deleted.items()) if n},
            self.templates_destroyed,
            self.removed_from_search,
            tuple(self.approvals_expired),
            tuple(self.held),
            tuple(self.failed),
        )


class _ActsAsRetentionWorker(WorkerUseCase):
    """A use case whose commands are the retention worker's (``RETENTION_WORKER``)."""

    worker = RETENTION_WORKER


class _WorkerErasure(_ActsAsRetentionWorker, BiometricErasure):
    """The erasure service itself (R-05), run in the retention worker's name."""


class RetentionSweep(_ActsAsRetentionWorker):
    """One round of scheduled deletion; see the module docstring.

    ``biometrics`` is called only when something must be erased, so a round with nothing to
    delete opens no model or index. ``lead_time``: probes go this long before their deadline.
    """

    def __init__(
        self,
        app: RfrApplication,
        clock: Clock,
        biometrics: Callable[[], Biometrics],
        *,
        lead_time: timedelta = DEFAULT_LEAD_TIME,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__(app, clock)
        if lead_time < timedelta(0):
            raise ValueError("lead_time must not be negative")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._biometrics = biometrics
        self._erasure: _WorkerErasure | None = None
        self.lead_time = lead_time
        self.batch_size = batch_size

    def run(self) -> RetentionSummary:
        at = self.clock.now()
        config = self.config(at)
        tally = _Tally()
        approvals = self._approvals(at, tally)
        for library_id in _all_ids(self.app, ReferenceLibrary.Created):
            try:
                library = self.load(library_id, ReferenceLibrary)
                approval = approvals.get(library.approval_id) or self.load(
                    library.approval_id, LibraryApproval
                )
                self._sweep_library(library, approval, at, tally)
            except Exception as err:  # one library's trouble never stops the round
                tally.fail("library", library_id, "R-01/L-12", err)
        # Only the probes whose deletion can be due by the lead time, through the projection's
        # indexes: a round costs what is (nearly) due, not every probe ever submitted.
        horizon = at + self.lead_time
        searched_before = horizon - (deletion_deadline(at, config) - at)
        probes = self.app.probe_searches
        maybe_due = set(probes.maybe_due(searched_before, horizon))
        maybe_due |= set(probes.unsearched_by(never_searched_cut_off(at, config)))
        for probe_id in sorted(maybe_due):
            try:
                self._sweep_probe(UUID(probe_id), at, config, tally)
            except Exception as err:  # one probe's trouble never stops the round
                tally.fail("probe", probe_id, "R-02/R-03/R-03a/U-04", err)
        return tally.summary(at)

    # -- approvals and libraries ----------------------------------------------------------------

    def _approvals(self, at: datetime, tally: _Tally) -> dict[str, LibraryApproval]:
        """Every approval, those past their end date recorded as expired first (L-12)."""
        found: dict[str, LibraryApproval] = {}
        for approval_id in _all_ids(self.app, LibraryApproval.Applied):
            try:
                approval = self.load(approval_id, LibraryApproval)
                if approval_lapsed(approval, at):
                    self._act(
                        RETENTION_WORKER.user_id,
                        "expire approval",
                        [approval],
                        lambda a, approval=approval: approval.expire(a.actor, a.at, a.config),
                    )
                    tally.approvals_expired.append(str(approval_id))
                found[str(approval_id)] = approval
            except Exception as err:  # reported; its libraries are still swept below
                tally.fail("approval", approval_id, "L-12", err)
        return found

    def _sweep_library(
        self, library: ReferenceLibrary, approval: LibraryApproval, at: datetime, tally: _Tally
    ) -> None:
        images = self.app.library_images
        library_id = str(library.id)
        due = library_due(
            library, approval, at, images.due(library_id, at, remaining=approval_ended(approval, at))
        )
        if due is None:
            return
        if due.to_expire:
            # Leaving searching is not a deletion: a legal hold does not suspend it. Each
            # batch holding due images expires its own.
            for holder_id in images.holders(library_id, due.to_expire):
                holder = library if holder_id == library_id else self.load(holder_id, ImageHolder)
                self._act(
                    RETENTION_WORKER.user_id,
                    "expire images",
                    [holder],
                    lambda a, holder=holder: holder.expire_images(a.actor, a.at, a.config),
                )
            tally.removed_from_search += len(due.to_expire)
        if due.hold is not None:
            tally.hold("library", library.id, due.rule_id, len(due.to_delete), due.hold)
            return
        reason = _library_reason(due.rule_id, approval)
        for batch in _batches(due.to_delete, self.batch_size):
            self._purge_images(library.id, due.rule_id, batch, reason, tally)

    def _purge_images(
        self, library_id: UUID, rule_id: str, image_ids: Sequence[str], reason: str, tally: _Tally
    ) -> None:
        try:
            destroyed = self.erasure().purge_library_images(
                RETENTION_WORKER.user_id, library_id, image_ids, reason
            )
        except Exception as err:  # isolated below, image by image
            if len(image_ids) == 1:
                tally.fail("library", library_id, rule_id, err, item=image_ids[0])
                return
            for image_id in image_ids:
                self._purge_images(library_id, rule_id, [image_id], reason, tally)
            return
        tally.deleted[rule_id] += len(image_ids)
        tally.templates_destroyed += len(destroyed)

    # -- probes ------------------------------------------------------------------------------

    def _sweep_probe(self, probe_id: UUID, at: datetime, config: PolicyConfig, tally: _Tally) -> None:
        probe = self.load(probe_id, ProbeImage)
        searches = self.app.probe_searches.of(str(probe_id))
        due = probe_due(probe, searches, at, config, self.lead_time)
        if due is None:
            return
        if due.hold is not None:
            tally.hold("probe", probe_id, due.rule_id, 1, due.hold)
            return
        reason = _PROBE_REASONS[due.rule_id].format(due=due.due.date().isoformat())
        try:
            self.erasure().purge_probe(RETENTION_WORKER.user_id, probe_id, reason)
        except Exception as err:  # reported and retried next round
            tally.fail("probe", probe_id, due.rule_id, err)
            return
        tally.deleted[due.rule_id] += 1
        tally.templates_destroyed += len(probe.templates)

    # -- helpers ----------------------------------------------------------------------------

    def erasure(self) -> BiometricErasure:
        """The erasure service in the worker's name, opened on first use."""
        if self._erasure is None:
            self._erasure = _WorkerErasure(self.app, self.clock, self._biometrics())
        return self._erasure


_PROBE_REASONS = {
    "R-02": "R-02: a viable match was found; deleted by {due}",
    "R-03": "R-03: no viable match and not in the Unresolved Crime Cache; deleted by {due}",
    "U-04": "U-04: removed from the Unresolved Crime Cache; deleted by {due}",
    NEVER_SEARCHED: NEVER_SEARCHED + ": never searched in the period after its submission, which ended {due}",
}


def _library_reason(rule_id: str, approval: LibraryApproval) -> str:
    if rule_id == "L-12":
        ended = approval.ended_at or approval.record.expires_at
        return f"L-12: approval {approval.id} {approval.status.value} on {ended.date().isoformat()}"
    return "R-01: past the image's retention limit"


def _batches(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _all_ids(app: RfrApplication, event: type[Aggregate.Event]) -> list[UUID]:
    ids: list[UUID] = []
    after = 0
    while True:
        page, next_after = list_ids(app, event, after=after, limit=MAX_PAGE)
        ids += page
        if next_after is None:
            return list(dict.fromkeys(ids))
        after = next_after


def _describe(error: BaseException) -> str:
    if isinstance(error, PolicyRefusal):
        return f"refused ({', '.join(error.rule_ids)}): {error.reason}"
    return f"{type(error).__name__}: {error}"
