"""The audit trail's tools: verify the hash chain, read its head, replay an aggregate in time."""

from rfr.infrastructure.audit.jsonable import to_jsonable
from rfr.infrastructure.audit.replay import replay
from rfr.infrastructure.audit.verification import VerificationResult, verify, verify_rows

__all__ = ["VerificationResult", "replay", "to_jsonable", "verify", "verify_rows"]
