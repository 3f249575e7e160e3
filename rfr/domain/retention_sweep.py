"""What the retention sweep must delete, when, and in whose name (R-01..R-04, R-03a, L-12, U-04).

The sweep is run by the worker, not by a person, and its events name ``RETENTION_WORKER``.
Its authority is the retention policy itself (section 7, with the deletion window of the
``PolicyConfig`` in force): nobody asks for these deletions, the policy orders them. It
carries the Administrator role only because the domain asks that role of whoever deletes
library images (``ReferenceLibrary.purge_images``); no ``User`` has its id, so nobody can
sign in as it or act in its name through the API or the CLI.

When things go:

- A library image past its retention limit (R-01) leaves searching and is deleted on the
  first round after the limit: the 31 days are a ceiling, and nothing is left to do with it.
- Every image of a library whose approval was stopped or ended (L-12) is deleted on the
  first round after that; an approval past its end date is first recorded as expired.
- A probe (R-02, R-03, U-04) goes at its ``deletion_due`` date less a lead time. Until that
  date the probe is still in use: candidates to adjudicate, a match report, a decision to
  put it in the Unresolved Crime Cache or to re-add a removed entry. The lead time keeps the
  deletion inside the window when a round runs late.
- A probe never searched (R-03a, a project rule: see ``rfr.domain.retention``) goes on the
  first round once its period after submission has passed, not before: the period is the
  time it may wait for its search, so no lead time shortens it.

A legal hold (R-04) suspends deletion, never the removal from searching; what it holds is
reported, with the hold's kind and reason, on every round until the hold is lifted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from rfr.domain.enrolment_batch import ImageHolder
from rfr.domain.forms import LegalHold
from rfr.domain.library_approval import ApprovalStatus, LibraryApproval
from rfr.domain.people import Actor, Role
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.probe_image import ProbeImage, ProbeSearch
from rfr.domain.reference_library import ReferenceLibrary
from rfr.domain.retention import NEVER_SEARCHED

RETENTION_WORKER = Actor("rfr:retention-worker", {Role.ADMINISTRATOR})

# A worker runs every minute by default; a day's lead still holds if it stops for most of one.
DEFAULT_LEAD_TIME = timedelta(days=1)


@attrs.frozen
class LibraryDue:
    """What one library needs now: images to take out of searching and images to delete.

    ``rule_id`` is L-12 when the library's approval has ended (all its images go), else R-01.
    """

    rule_id: str
    to_expire: tuple[str, ...]
    to_delete: tuple[str, ...]
    hold: LegalHold | None


@attrs.frozen
class ProbeDue:
    """A probe whose deletion date (``due``) falls within the lead time, under ``rule_id``."""

    rule_id: str
    due: datetime
    hold: LegalHold | None


def approval_lapsed(approval: LibraryApproval, at: datetime) -> bool:
    """L-12: still recorded as approved, but its end date has come; the expiry is to be recorded."""
    record = approval.record
    return (
        approval.status is ApprovalStatus.APPROVED
        and record is not None
        and record.expires_at is not None
        and at >= record.expires_at
    )


def approval_ended(approval: LibraryApproval, at: datetime) -> bool:
    """L-12: stopped or expired (recorded or not): the library's data must go."""
    if approval.status in (ApprovalStatus.STOPPED, ApprovalStatus.EXPIRED):
        return approval.ended_at is not None and at >= approval.ended_at
    return approval_lapsed(approval, at)


@attrs.frozen
class ImagesDue:
    """A library's images the sweep may act on, as the library images projection lists them:
    ``remaining``, not purged (read only once its approval has ended, L-12); ``past_limit``,
    still searchable but at or past their retention limit; ``expired``, out of searching but
    not yet purged (R-01)."""

    remaining: tuple[str, ...] = ()
    past_limit: tuple[str, ...] = ()
    expired: tuple[str, ...] = ()

    @classmethod
    def held_by(cls, holder: ImageHolder, at: datetime) -> ImagesDue:
        """The same facts from the images one aggregate holds."""
        kept = {i: e for i, e in holder.images.items() if e.purged_at is None}
        return cls(
            tuple(sorted(kept)),
            tuple(sorted(i for i, e in kept.items() if e.searchable and e.retention_until <= at.date())),
            tuple(sorted(i for i, e in kept.items() if e.expired_at is not None)),
        )


def library_due(
    library: ReferenceLibrary, approval: LibraryApproval, at: datetime, images: ImagesDue
) -> LibraryDue | None:
    """The library's images the sweep must act on at ``at``; None when there are none."""
    if approval_ended(approval, at):
        if not images.remaining:
            return None
        return LibraryDue("L-12", (), tuple(sorted(images.remaining)), library.legal_hold)
    to_delete = tuple(sorted(set(images.past_limit) | set(images.expired)))
    if not to_delete:
        return None
    return LibraryDue("R-01", tuple(sorted(images.past_limit)), to_delete, library.legal_hold)


def probe_rule(probe: ProbeImage, searches: Sequence[ProbeSearch]) -> str:
    """Which rule deletes the probe: U-04 after a cache removal, R-02 after a viable match,
    R-03a when it was never searched, else R-03."""
    if probe.ucc is not None and probe.ucc.removed_at is not None:
        return "U-04"
    mine = [s for s in searches if s.probe_id == str(probe.id)]
    if not any(s.last_searched_at for s in mine):
        return NEVER_SEARCHED
    return "R-02" if any(s.has_viable_match for s in mine) else "R-03"


def probe_due(
    probe: ProbeImage,
    searches: Sequence[ProbeSearch],
    at: datetime,
    config: PolicyConfig,
    lead_time: timedelta = DEFAULT_LEAD_TIME,
) -> ProbeDue | None:
    """The probe's deletion if it falls due by ``at + lead_time`` (by ``at`` under R-03a),
    held or not; else None."""
    due = probe.deletion_due_ignoring_hold(config, searches)
    if due is None:
        return None
    rule_id = probe_rule(probe, searches)
    if at < due - (timedelta(0) if rule_id == NEVER_SEARCHED else lead_time):
        return None
    return ProbeDue(rule_id, due, probe.legal_hold)
