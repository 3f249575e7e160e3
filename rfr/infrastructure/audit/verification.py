"""Recomputes the audit hash chain over every stored event and names the first break (A-02)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import zip_longest
from typing import Any

import attrs

from rfr.infrastructure.persistence.chain import EMPTY_HEAD, ChainedRecorder, ChainHead, link_digest


@attrs.frozen
class VerificationResult:
    """``checked`` counts the positions that verified before the first failure (all, when ok)."""

    ok: bool
    checked: int
    first_bad_position: int | None = None
    reason: str | None = None
    head: ChainHead | None = None

    def summary(self) -> str:
        if self.ok:
            return f"audit trail intact: {self.checked} events verified, head {self.head}"
        return f"audit trail BROKEN at position {self.first_bad_position}: {self.reason}"


def verify(recorder: object, anchor: ChainHead | None = None) -> VerificationResult:
    """Verifies the store behind ``recorder`` (``app.recorder``) in one consistent snapshot.

    ``anchor`` is a head published earlier (``rfr audit head``): the chain must still pass
    through it, which catches a rewrite of the whole chain by someone with write access.
    """
    if not isinstance(recorder, ChainedRecorder):
        raise TypeError(f"{type(recorder).__name__} keeps no audit chain")
    with recorder.audit_snapshot() as snapshot:
        return verify_rows(snapshot.events, snapshot.links, snapshot.head, anchor)


def verify_rows(
    events: Iterable[tuple[Any, ...]],
    links: Iterable[tuple[Any, ...]],
    head: ChainHead | None,
    anchor: ChainHead | None = None,
) -> VerificationResult:
    """The check itself, over events in notification-id order and links in position order.

    Events are ``StoredRow``s and links ``ChainLink``s, or the plain tuples a cursor returns
    in the same column order (``audit_snapshot`` streams those: no object per row).
    """
    previous = EMPTY_HEAD.hash
    previous_raw = bytes.fromhex(previous)
    position = 0
    anchor_count = anchor.count if anchor is not None else -1

    def broken(at: int, reason: str) -> VerificationResult:
        return VerificationResult(ok=False, checked=at - 1, first_bad_position=at, reason=reason)

    # One pass pairing the n-th event with the n-th link.
    for event, link in zip_longest(events, links):
        position += 1
        if link is None:
            return broken(
                position,
                f"event with notification id {event[0]} has no chain link (written outside the recorder)",
            )
        if event is None:
            return broken(
                position,
                f"chain link {link[0]} names notification id {link[1]}, "
                "which is no longer stored (event removed)",
            )
        link_position, link_notification_id, link_previous, stored_hash = link
        if link_position != position:
            return broken(
                position, f"chain link numbered {link_position} found (chain links removed or inserted)"
            )
        if link_notification_id != event[0]:
            return broken(
                position,
                f"chain link names notification id {link_notification_id} but the event here has "
                f"notification id {event[0]} (event removed, inserted or renumbered)",
            )
        if link_previous != previous:
            return broken(position, "link does not continue the previous hash (chain link altered)")
        try:
            raw = link_digest(previous_raw, position, event)
        except (TypeError, ValueError) as e:
            return broken(position, f"stored event row has altered column types: {e}")
        computed = raw.hex()
        if computed != stored_hash:
            return broken(
                position,
                f"event {event[1]} v{event[2]} does not match its chain hash (event altered or reordered)",
            )
        if position == anchor_count and anchor is not None and computed != anchor.hash:
            return broken(position, f"chain no longer passes through the published head {anchor}")
        previous, previous_raw = computed, raw

    if head is None:
        if position:
            return broken(position + 1, "chain head is missing (head deleted)")
        head = EMPTY_HEAD
    if head.count > position:
        return broken(
            position + 1,
            f"chain head records {head.count} events but {position} are stored (events removed from the end)",
        )
    if head.count < position:
        return broken(
            head.count + 1,
            f"chain head records {head.count} events but {position} are chained "
            "(head altered or rolled back)",
        )
    if head.hash != previous:
        return broken(position, f"chain head {head} does not match the last link (head altered)")
    if anchor is not None and anchor.count > position:
        return broken(
            position + 1,
            f"published head {anchor} is beyond the {position} stored events (events removed)",
        )
    return VerificationResult(ok=True, checked=position, head=head)
