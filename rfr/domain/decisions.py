"""Rule outcomes and the refusal error.

Rules are pure functions returning a ``Decision`` so each can be proved alone; aggregates
turn a refusing decision into a recorded ``Refused`` event and then raise ``PolicyRefusal``
(A-01), so the refusal is part of the audit trail even though the command failed.
"""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class Decision:
    """Whether a command may go ahead, and which rules said so."""

    allowed: bool
    rule_ids: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()

    @classmethod
    def allow(cls, *rule_ids: str) -> Decision:
        return cls(True, tuple(rule_ids), ())

    @classmethod
    def refuse(cls, rule_id: str, reason: str) -> Decision:
        return cls(False, (rule_id,), (reason,))

    @classmethod
    def check(cls, condition: bool, rule_id: str, reason: str) -> Decision:
        """Allowed under ``rule_id`` when ``condition`` holds, else refused with ``reason``."""
        return cls.allow(rule_id) if condition else cls.refuse(rule_id, reason)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


def combine(*decisions: Decision) -> Decision:
    """All must allow; a refusal names only the rules that refused, so the reason is precise."""
    refused = [d for d in decisions if not d.allowed]
    if refused:
        rule_ids = tuple(dict.fromkeys(r for d in refused for r in d.rule_ids))
        reasons = tuple(dict.fromkeys(r for d in refused for r in d.reasons))
        return Decision(False, rule_ids, reasons)
    return Decision(True, tuple(dict.fromkeys(r for d in decisions for r in d.rule_ids)), ())


class PolicyRefusal(Exception):
    """A command refused by policy rules.

    ``record`` is a new aggregate holding the refusal when the command had no target
    aggregate yet (``RefusedAttempt``); the caller saves it (or the target aggregate)
    before passing the error on.
    """

    def __init__(self, rule_ids: tuple[str, ...], reason: str, record: Any = None) -> None:
        super().__init__(f"refused by {', '.join(rule_ids)}: {reason}")
        self.rule_ids = tuple(rule_ids)
        self.reason = reason
        self.record = record
