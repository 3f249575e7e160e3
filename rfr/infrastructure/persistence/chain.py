"""The hash chain that makes the event store tamper-evident (A-02).

Every stored event gets one chain link, in the global order of the store (notification id).
A link's hash covers the previous link's hash and a canonical, length-prefixed encoding of
the event row exactly as stored, so changing, removing, inserting or reordering any row
breaks the chain from that position on. The chain head (count and last hash) is kept apart,
so removing events from the end is caught too; see docs/adr/0005-hash-chain-audit-trail.md.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, Protocol, runtime_checkable
from uuid import UUID

import attrs
from eventsourcing.persistence import StoredEvent

# A version tag inside every hashed message, so a later encoding can never collide with this one.
CHAIN_FORMAT = b"rfr-audit-chain/v1"
GENESIS_HASH = "0" * 64


class StoredRow(NamedTuple):
    """One stored event row as the store holds it (no decoding, no type coercion).

    Types are not enforced here on purpose: verification reports a row whose column types
    were changed instead of failing to build it. A tuple in column order, so the plain
    tuples a cursor returns can stand in for it where millions of rows stream (verification).
    """

    notification_id: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes


class ChainLink(NamedTuple):
    position: int
    notification_id: int
    previous_hash: str
    hash: str


@attrs.frozen
class ChainHead:
    """Number of chained events and the hash of the last link; what an operator publishes."""

    count: int
    hash: str

    def __str__(self) -> str:
        return f"{self.count}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> ChainHead:
        """Reads the ``COUNT:HASH`` form printed by ``rfr audit head``."""
        count, sep, digest = text.strip().partition(":")
        digest = digest.lower()
        if not sep or not count.isdigit() or len(digest) != 64 or not _is_hex(digest):
            raise ValueError(f"expected COUNT:SHA256HEX, got {text!r}")
        return cls(count=int(count), hash=digest)


EMPTY_HEAD = ChainHead(count=0, hash=GENESIS_HASH)


@attrs.frozen
class AuditSnapshot:
    """A consistent view of the store for verification: head, events and links in order.

    Events and links are ``StoredRow``s and ``ChainLink``s or plain tuples in their field
    order: a store streams the tuples its cursor returns, with no object built per row.
    """

    head: ChainHead | None
    events: Iterator[tuple[Any, ...]]
    links: Iterator[tuple[Any, ...]]


@runtime_checkable
class ChainedRecorder(Protocol):
    """What a recorder offers on top of eventsourcing's ApplicationRecorder to be audited."""

    def chain_head(self, *, durable: bool = True) -> ChainHead | None: ...

    def audit_snapshot(self) -> AbstractContextManager[AuditSnapshot]: ...


class AuditChainError(Exception):
    """The chain cannot be extended (its head is missing); never a concurrency conflict."""


def canonical_originator_id(originator_id: UUID | str) -> str:
    # The same text the SQLite recorder stores, so the writer and a verifier reading raw
    # rows hash identical bytes.
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


def stored_row(event: StoredEvent, notification_id: int) -> StoredRow:
    """The row a recorder is about to store (or holds) for ``event``, as the chain hashes it."""
    return StoredRow(
        notification_id=notification_id,
        originator_id=canonical_originator_id(event.originator_id),
        originator_version=event.originator_version,
        topic=event.topic,
        state=event.state,
    )


_LENGTH = struct.Struct(">Q").pack  # the 8-byte big-endian length prefix of every field
_SHORT = tuple(_LENGTH(n) for n in range(256))  # prefixes of short fields, made once
_sha256 = hashlib.sha256


def link_hash(previous_hash: str, position: int, row: StoredRow) -> str:
    """SHA-256 over the previous hash and the canonical encoding of one stored row.

    Raises ``TypeError`` when a column holds the wrong type, which only tampering produces.
    """
    return link_digest(bytes.fromhex(previous_hash), position, row).hex()


def link_digest(previous: bytes, position: int, row: tuple[Any, ...]) -> bytes:
    """``link_hash`` as raw bytes, from the previous link's raw digest.

    ``row`` holds a stored row's columns in ``StoredRow`` order (a ``StoredRow`` or the plain
    tuple a cursor returns). Verification runs this for every stored event, so the message
    is built in one join and hashed in one call.
    """
    notification_id, originator_id, originator_version, topic, state = row
    if not isinstance(originator_id, str) or not isinstance(topic, str):
        raise TypeError("originator_id and topic must be text")
    if isinstance(originator_version, bool) or not isinstance(originator_version, int):
        raise TypeError("originator_version must be an integer")
    if isinstance(notification_id, bool) or not isinstance(notification_id, int):
        raise TypeError("notification id must be an integer")
    if not isinstance(state, bytes):
        raise TypeError("state must be bytes")
    at = b"%d" % position
    nid = b"%d" % notification_id
    oid = originator_id.encode()
    version = b"%d" % originator_version
    name = topic.encode()
    short, length = _SHORT, _LENGTH
    # Length prefixes keep field boundaries unambiguous ("ab"+"c" never equals "a"+"bc");
    # the table lookup for short fields saves a call per field (measured, ADR 0012).
    message = (
        CHAIN_FORMAT,
        short[n] if (n := len(previous)) < 256 else length(n),
        previous,
        short[n] if (n := len(at)) < 256 else length(n),
        at,
        short[n] if (n := len(nid)) < 256 else length(n),
        nid,
        short[n] if (n := len(oid)) < 256 else length(n),
        oid,
        short[n] if (n := len(version)) < 256 else length(n),
        version,
        short[n] if (n := len(name)) < 256 else length(n),
        name,
        short[n] if (n := len(state)) < 256 else length(n),
        state,
    )
    return _sha256(b"".join(message)).digest()


def extend_chain(head: ChainHead, rows: list[StoredRow]) -> tuple[list[ChainLink], ChainHead]:
    """The links that append ``rows`` after ``head``, and the new head."""
    links = []
    count, previous = head.count, head.hash
    for row in rows:
        count += 1
        current = link_hash(previous, count, row)
        links.append(ChainLink(count, row.notification_id, previous, current))
        previous = current
    return links, ChainHead(count=count, hash=previous)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
