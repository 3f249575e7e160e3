"""Errors the application raises on purpose, so callers can tell them from bugs.

Every one derives from ``RfrError``. The HTTP layer maps them to status codes; the mapping
suggested for ``ImageRejected`` is in ``IMAGE_REJECTION_HTTP_STATUS``.
"""

from __future__ import annotations


class RfrError(Exception):
    """Base of every deliberate refusal of the system."""


IMAGE_REJECTION_HTTP_STATUS: dict[str, int] = {
    "empty": 422,
    "undecodable": 422,
    "unsupported_type": 415,
    "too_many_pixels": 413,
    "bad_shape": 422,
    # A short video's limits (issue 13): its size in bytes and its duration.
    "too_large": 413,
    "too_long": 413,
}


class ImageRejected(RfrError):
    """An uploaded image cannot be used; ``code`` is one of ``IMAGE_REJECTION_HTTP_STATUS``.

    ``reason`` is written for the operator who submitted the image, so it must not leak
    library internals beyond what helps them fix the upload.
    """

    def __init__(self, reason: str, code: str) -> None:
        if code not in IMAGE_REJECTION_HTTP_STATUS:
            raise ValueError(f"unknown image rejection code {code!r}")
        super().__init__(reason)
        self.reason = reason
        self.code = code

    def __repr__(self) -> str:
        return f"ImageRejected(reason={self.reason!r}, code={self.code!r})"

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Rebuilt from both fields, so the error survives a worker process boundary.
        return (type(self), (self.reason, self.code))


class AlgorithmMismatch(RfrError):
    """Two templates of different algorithms were about to be compared (T-01)."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"templates of algorithm {actual!r} cannot be compared with {expected!r} (T-01)")
        self.expected = expected
        self.actual = actual

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return (type(self), (self.expected, self.actual))


class NoFaceInBox(RfrError, ValueError):
    """The algorithm found no face inside a box drawn by the user (P-11), so it has no landmarks
    to align it by; a ``ValueError`` like the engine's other objections to a drawn box."""


class VectorIndexError(RfrError):
    """Base of the refusals of a vector index."""


class DuplicateTemplateId(VectorIndexError, ValueError):
    """A template id is already in the index, or repeated within one batch."""


class InvalidVector(VectorIndexError, ValueError):
    """A vector of the wrong shape, dtype or value (NaN, infinity, zero for cosine)."""


class IndexCorrupted(VectorIndexError):
    """The files of a persisted index disagree or cannot be read.

    Indexes are projections of the biometric store, so the cure is to rebuild the index
    from the store, never to patch the files.
    """


class UnknownUser(RfrError):
    """The acting user id names nobody registered; the caller should treat it as unauthenticated."""

    def __init__(self, user_id: str) -> None:
        super().__init__(f"no registered user {user_id!r}")
        self.user_id = user_id

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.user_id,))


class AccessDenied(RfrError):
    """A known user may not act (disabled, A-05) or may not see what they asked for (L-13, A-03).

    The refusal has already been recorded in the event store (A-01) when ``recorded`` is true.
    """

    def __init__(self, user_id: str, rule_ids: tuple[str, ...], reason: str, recorded: bool) -> None:
        super().__init__(f"{user_id} refused by {', '.join(rule_ids)}: {reason}")
        self.user_id = user_id
        self.rule_ids = tuple(rule_ids)
        self.reason = reason
        self.recorded = recorded

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return (type(self), (self.user_id, self.rule_ids, self.reason, self.recorded))


class NotFound(RfrError):
    """No aggregate of the expected kind has this id."""

    def __init__(self, kind: str, aggregate_id: object) -> None:
        super().__init__(f"no {kind} {aggregate_id}")
        self.kind = kind
        self.aggregate_id = aggregate_id

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return (type(self), (self.kind, self.aggregate_id))


class AlreadyBootstrapped(RfrError):
    """The first administrator can be created only while no user exists."""


class BiometricStoreError(RfrError):
    """Base of the refusals and failures of the biometric store."""


class RecordNotFound(BiometricStoreError, KeyError):
    """No such record in the biometric store: never stored, or erased (R-05)."""

    def __init__(self, record_id: str) -> None:
        super().__init__(f"no biometric record {record_id!r} (never stored, or erased)")
        self.record_id = record_id

    def __str__(self) -> str:
        # KeyError would quote the whole message again.
        return str(self.args[0])

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.record_id,))


class DuplicateRecord(BiometricStoreError, ValueError):
    """A record id already in use: records are written once and never overwritten."""


class RecordUnreadable(BiometricStoreError):
    """A record's key or bytes do not decrypt: damaged, tampered with, or another master key."""
