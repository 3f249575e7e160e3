"""The sweep and library images: R-01 limits, L-12 ended approvals, R-04 holds, failures, idempotency."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any
from uuid import UUID

import attrs
from retention_history import History

from rfr.application.projections.library_images import ImageRow
from rfr.application.services.biometric_support import library_image_records
from rfr.application.services.retention import FailedItem, HeldItem, RetentionSummary
from rfr.domain.enrolment_batch import ImageHolder
from rfr.domain.forms import LegalHold
from rfr.domain.library_approval import ApprovalStatus, LibraryApproval

WORKER = "rfr:retention-worker"


def _quiet(summary: RetentionSummary) -> bool:
    return not summary.changed_anything and summary.failed == () and summary.templates_destroyed == 0


def _events(history: History, aggregate_id: Any, kind: type) -> list:
    """Events of ``kind`` of the aggregate, or for a library of the batches holding its images."""
    holders = [aggregate_id]
    if isinstance(kind, type) and issubclass(kind, ImageHolder.Event):
        page = history.world.app.library_images.page(str(aggregate_id), 0, 500)
        holders = list(dict.fromkeys(UUID(r.holder_id) for r in page))
    store = history.world.app.repository.event_store
    return [e for h in holders for e in store.get(h) if isinstance(e, kind)]


def _rows(history: History, image_ids: Iterable[str]) -> dict[str, ImageRow]:
    return history.world.app.library_images.images(image_ids)


def _searchable(history: History, library_id: Any) -> int:
    return history.world.app.library_images.totals(str(library_id), history.now).searchable


def _gone(history: History, library_id: Any, image_ids: Iterable[str], template_ids: Iterable[str]) -> bool:
    images = not any(history.image_stored(i) for i in image_ids)
    templates = not any(
        history.world.bio.store.exists(t) or history.indexed(library_id, t) for t in template_ids
    )
    return images and templates


def test_R01_images_past_their_limit_leave_searching_and_are_erased_on_the_first_round_after(
    history: History,
):
    limit = (history.now + timedelta(days=10)).date()
    custody = history.library("custody", ["adam_sandler", "bill_simon"], retention_ends=limit)
    appeal = history.library("appeal", ["carlos_moya"])  # ten years (adult, MOPI 2)
    assert _quiet(history.sweep())

    history.advance(days=9)  # the day before the limit (R-01 counts in days)
    assert _quiet(history.sweep())
    history.advance(days=1)
    summary = history.sweep()

    assert (summary.removed_from_search, dict(summary.deleted), summary.templates_destroyed) == (
        2,
        {"R-01": 2},
        2,
    )
    assert (summary.held, summary.failed, summary.approvals_expired) == ((), (), ())
    assert _gone(history, custody.library_id, custody.image_ids, custody.template_ids)
    assert all(history.image_stored(i) for i in appeal.image_ids)
    assert all(history.indexed(appeal.library_id, t) for t in appeal.template_ids)
    assert _searchable(history, custody.library_id) == 0
    assert all(r.purged_at == history.now for r in _rows(history, custody.image_ids).values())
    (expired,) = _events(history, custody.library_id, ImageHolder.ImageRetentionExpired)
    (purged,) = _events(history, custody.library_id, ImageHolder.ImagesPurged)
    assert expired.acting.user_id == purged.acting.user_id == WORKER
    assert sorted(purged.image_ids) == sorted(custody.image_ids)
    assert sorted(purged.template_ids) == sorted(custody.template_ids)
    assert purged.reason.startswith("R-01")

    assert _quiet(history.sweep())  # a second round deletes nothing
    assert len(_events(history, custody.library_id, ImageHolder.ImagesPurged)) == 1


def test_R04_a_hold_suspends_the_deletion_not_the_removal_from_searching_until_it_is_lifted(history: History):
    """R-04: a hold suspends the deletion not the removal from searching until it is lifted."""
    custody = history.library(
        "custody", ["adam_sandler"], retention_ends=(history.now + timedelta(days=1)).date()
    )
    hold = LegalHold("CPIA disclosure in R v Example", "disclosure")
    history.hold_library(custody.library_id, hold)
    history.advance(days=2)

    summary = history.sweep()

    assert (summary.removed_from_search, dict(summary.deleted)) == (1, {})
    assert summary.held == (HeldItem("library", str(custody.library_id), "R-01", 1, hold.kind, hold.reason),)
    assert all(history.image_stored(i) for i in custody.image_ids)
    assert _searchable(history, custody.library_id) == 0
    again = history.sweep()
    assert (again.removed_from_search, dict(again.deleted), again.held) == (0, {}, summary.held)

    history.lift_library_hold(custody.library_id, "disclosure completed")
    lifted = history.sweep()
    assert (dict(lifted.deleted), lifted.held) == ({"R-01": 1}, ())
    assert _gone(history, custody.library_id, custody.image_ids, custody.template_ids)


def test_L12_libraries_of_stopped_and_lapsed_approvals_are_erased_and_the_expiry_recorded(history: History):
    stopped = history.library("stopped", ["adam_sandler", "bill_simon"])
    lapsing = history.library("lapsing", ["carlos_moya"], expires_at=history.now + timedelta(days=5))
    kept = history.library("kept", ["anne_mclellan"])
    history.approvals.stop("supt", stopped.approval_id, "the operation has closed")

    first = history.sweep()

    assert (dict(first.deleted), first.templates_destroyed, first.approvals_expired) == ({"L-12": 2}, 2, ())
    assert _gone(history, stopped.library_id, stopped.image_ids, stopped.template_ids)
    assert all(history.image_stored(i) for i in lapsing.image_ids + kept.image_ids)
    (purged,) = _events(history, stopped.library_id, ImageHolder.ImagesPurged)
    assert purged.acting.user_id == WORKER and purged.reason.startswith("L-12") and "stopped" in purged.reason

    history.advance(days=5)
    second = history.sweep()

    assert (dict(second.deleted), second.approvals_expired) == ({"L-12": 1}, (str(lapsing.approval_id),))
    assert _gone(history, lapsing.library_id, lapsing.image_ids, lapsing.template_ids)
    approval = history.world.app.get(lapsing.approval_id, LibraryApproval)
    assert approval.status is ApprovalStatus.EXPIRED and not approval.in_force_at(history.now)
    (expired,) = _events(history, lapsing.approval_id, LibraryApproval.Expired)
    assert expired.acting.user_id == WORKER
    assert all(history.image_stored(i) for i in kept.image_ids)
    assert all(history.indexed(kept.library_id, t) for t in kept.template_ids)
    assert _quiet(history.sweep())


@attrs.define
class _EraseFails:
    """The real store, except that erasing these records fails as a full or broken disk would."""

    inner: Any
    failing: frozenset[str]

    def erase(self, record_id: str) -> bool:
        if record_id in self.failing:
            raise OSError(28, "No space left on device")
        return self.inner.erase(record_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_R01_a_failed_erasure_never_stops_the_others_and_is_tried_again_next_round(history: History):
    custody = history.library(
        "custody",
        ["adam_sandler", "bill_simon", "carlos_moya"],
        retention_ends=(history.now + timedelta(days=1)).date(),
    )
    history.advance(days=1)
    broken = custody.image_ids[1]
    bio = history.world.bio
    failing = attrs.evolve(bio, store=_EraseFails(bio.store, frozenset(library_image_records(broken))))

    summary = history.sweep(lambda: failing)

    assert dict(summary.deleted) == {"R-01": 2}
    (failure,) = summary.failed
    assert attrs.evolve(failure, error="") == FailedItem(
        "library", str(custody.library_id), "R-01", broken, ""
    )
    assert "No space left on device" in failure.error
    others = [i for i in custody.image_ids if i != broken]
    assert not any(history.image_stored(i) for i in others) and history.image_stored(broken)
    assert _rows(history, [broken])[broken].purged_at is None

    retried = history.sweep()
    assert (dict(retried.deleted), retried.failed) == ({"R-01": 1}, ())
    assert _gone(history, custody.library_id, custody.image_ids, custody.template_ids)
