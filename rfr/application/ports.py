"""The ports of the biometric engine.

Adapters in ``rfr.adapters`` implement these; the application depends only on them, so a
force can swap in its own detector, embedder or index without touching a use case.
Images cross every port as ``numpy`` arrays of shape (H, W, 3), dtype uint8, **RGB**.
Boxes use dlib's inclusive convention (right and bottom are the last pixel inside).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

import attrs
import numpy as np


@attrs.frozen
class FaceBox:
    """A face rectangle in image pixels, inclusive: width is ``right - left + 1``."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left + 1

    @property
    def height(self) -> int:
        return self.bottom - self.top + 1


Point = tuple[int, int]


AlignmentPoint = tuple[float, float]


def _alignment_points(value: Iterable[Sequence[float]]) -> tuple[AlignmentPoint, ...]:
    """Plain float pairs, whatever numbers a detector gave (numpy scalars do not go to JSON)."""
    return tuple((float(x), float(y)) for x, y in value)


@attrs.frozen
class DetectedFace:
    """One face found in an image: box, detector score and the 5 landmarks.

    The 5 landmarks follow dlib's 5-point order: the two corners of the eye on the image's
    right, the two corners of the eye on the image's left, then below the nose. Every
    detector fills them (the quality measures and the thumbnails read them).

    ``alignment_points``: the detector's own landmark points in float image pixels, in the
    order the same algorithm's aligner expects (YuNet: the ArcFace template's order, i.e. the
    eye on the image's left, the eye on the image's right, nose tip, mouth corner on the
    image's left, mouth corner on the image's right). Empty when the algorithm's aligner works
    from ``landmarks`` alone (dlib).
    """

    box: FaceBox
    score: float
    landmarks: tuple[Point, ...]
    alignment_points: tuple[AlignmentPoint, ...] = attrs.field(default=(), converter=_alignment_points)


@attrs.frozen
class QualityReport:
    """Measures of one face and the named flags raised against configured thresholds (P-10)."""

    measures: dict[str, float]
    flags: tuple[str, ...]


@attrs.frozen
class IndexHit:
    """One search result of a vector index: the template id and its distance (lower = closer)."""

    template_id: str
    distance: float


@runtime_checkable
class FaceDetector(Protocol):
    """Image -> faces with box, score and 5 landmarks."""

    algorithm_id: str

    def detect(self, image: np.ndarray) -> list[DetectedFace]: ...


@runtime_checkable
class LandmarkLocator(Protocol):
    """Image + box -> 5 landmarks; used by detectors and for a box drawn by the user (P-11)."""

    algorithm_id: str

    def locate(self, image: np.ndarray, box: FaceBox) -> tuple[Point, ...]: ...


@runtime_checkable
class AlignmentPointLocator(Protocol):
    """A ``LandmarkLocator`` that also finds the aligner's points for a box drawn by the user (P-11).

    An algorithm whose aligner needs ``DetectedFace.alignment_points`` (SFace's ArcFace chip)
    gives ``FaceEngine`` a locator offering this; the engine then asks it, not ``locate``, for
    a drawn box. ``locate_face`` returns the port's 5 landmarks and the alignment points of
    the face it finds in the box, or raises ``NoFaceInBox`` (rfr.application.errors) when it
    finds none there.
    """

    algorithm_id: str

    def locate(self, image: np.ndarray, box: FaceBox) -> tuple[Point, ...]: ...

    def locate_face(
        self, image: np.ndarray, box: FaceBox
    ) -> tuple[tuple[Point, ...], tuple[AlignmentPoint, ...]]: ...


@runtime_checkable
class FaceAligner(Protocol):
    """Image + face -> aligned chip of shape (size, size, 3), uint8 RGB."""

    algorithm_id: str
    size: int

    def align(self, image: np.ndarray, face: DetectedFace) -> np.ndarray: ...


@runtime_checkable
class FaceEmbedder(Protocol):
    """Chips -> templates, batched.

    ``algorithm_id`` names model and version (T-01); ``metric`` is how two templates of this
    algorithm are compared ("euclidean" or "cosine"); ``threshold`` is the documented decision
    distance for that metric. ``embed`` returns float32 of shape (len(chips), dimension).
    """

    algorithm_id: str
    dimension: int
    metric: str
    threshold: float
    chip_size: int

    def embed(self, chips: Sequence[np.ndarray]) -> np.ndarray: ...


@runtime_checkable
class QualityAssessor(Protocol):
    """Face -> quality measures and named flags (P-10)."""

    def assess(self, image: np.ndarray, face: DetectedFace) -> QualityReport: ...


@runtime_checkable
class VectorIndex(Protocol):
    """Templates of one (library, algorithm), searchable by nearest neighbour.

    ``search`` returns at most ``k`` hits ordered by ascending distance in this index's
    metric. ``save`` writes the index to the path it was opened with.
    """

    dimension: int
    metric: str

    def add(self, template_ids: Sequence[str], vectors: np.ndarray) -> None: ...

    def remove(self, template_ids: Sequence[str]) -> None: ...

    def search(self, vector: np.ndarray, k: int) -> list[IndexHit]: ...

    def __len__(self) -> int: ...

    def __contains__(self, template_id: object) -> bool: ...

    def save(self) -> None: ...


class VectorIndexFactory(Protocol):
    """Opens (creating if absent) the index persisted at ``path``."""

    def __call__(self, path: Path, dimension: int, metric: str) -> VectorIndex: ...


@runtime_checkable
class Clock(Protocol):
    """The time every command is stamped with; a fixed clock makes tests and replays exact."""

    def now(self) -> datetime: ...


class RecordKind(enum.StrEnum):
    """What a biometric store record holds; every kind is biometric data, erased under R-05."""

    IMAGE = "image"
    TEMPLATE = "template"
    # Landmarks and quality of the faces found in an image: dense enough to describe a face.
    ANALYSIS = "analysis"
    # The subject reference a library image was enrolled with (custody number, name).
    SUBJECT = "subject"


@attrs.frozen
class StoredRecordInfo:
    """What the store tells about a record without decrypting it.

    ``content_hash`` is ``"sha256:<hex>"`` of the plaintext, so a caller can prove which
    bytes it stored; ``owner`` is the library or probe id the record belongs to.
    """

    record_id: str
    kind: RecordKind
    owner: str
    content_hash: str
    size: int
    algorithm_id: str | None = None
    dimension: int | None = None


@attrs.frozen
class WrittenRecord:
    """A record as the store lists what was written: ``position`` grows with each write, in the
    order writes were committed, and is never reused."""

    position: int
    info: StoredRecordInfo


@attrs.frozen(eq=False)
class StoredTemplate:
    """A template read back from the store, with the algorithm that made it (T-01)."""

    record_id: str
    owner: str
    algorithm_id: str
    vector: np.ndarray


@runtime_checkable
class BiometricStore(Protocol):
    """Images, templates and face analyses at rest, each record encrypted with its own key.

    ``put`` refuses an id already in use (records are never overwritten) and returns the
    content hash. ``get`` of an unknown or erased id raises ``RecordNotFound``. ``erase``
    is irrecoverable (R-05): the record's key and bytes are destroyed; it returns False when
    there was nothing to erase, so erasure can be retried safely.

    What was written, for the reconciliation of records that no event names (ADR 0015):
    ``written_after`` lists the records written after a position, in the order written, up to
    the first written less than ``older_than`` seconds ago; ``reconciled_position`` and
    ``record_reconciled`` keep how far they were reconciled, never going back;
    ``sweep_orphans`` removes stored bytes that no record names (a write cut short), looking
    only at those written at least ``older_than`` seconds ago.
    """

    def put(
        self,
        record_id: str,
        kind: RecordKind,
        data: bytes,
        *,
        owner: str,
        algorithm_id: str | None = None,
        dimension: int | None = None,
    ) -> str: ...

    def get(self, record_id: str) -> bytes: ...

    def put_template(self, record_id: str, vector: np.ndarray, *, owner: str, algorithm_id: str) -> str: ...

    def get_template(self, record_id: str) -> StoredTemplate: ...

    def info(self, record_id: str) -> StoredRecordInfo | None: ...

    def exists(self, record_id: str) -> bool: ...

    def records(self, owner: str, kind: RecordKind | None = None) -> list[StoredRecordInfo]: ...

    def erase(self, record_id: str) -> bool: ...

    def written_after(self, position: int, *, older_than: float, limit: int) -> list[WrittenRecord]: ...

    def reconciled_position(self) -> int: ...

    def record_reconciled(self, position: int) -> None: ...

    def sweep_orphans(self, *, older_than: float = 0.0) -> int: ...


@runtime_checkable
class VectorIndexRegistry(Protocol):
    """One ``VectorIndex`` per (library id, algorithm id); indexes are projections of the store.

    Several processes write the same index (the API enrols and erases, the worker's retention
    sweep erases), so every write is exclusive across processes and starts from the index as
    its files hold it: otherwise a writer saving a copy read before another's save would put
    back what that save removed (R-05). ``writing`` is how use cases write: it yields the
    index as it is now, saves it when the block ends without an exception, and keeps every
    other writer out meanwhile; make all of one command's changes in one block. The index
    ``open`` returns is for searching (its ``add``/``remove`` must still be exclusive writes
    of their own). ``rebuild`` throws the index away and refills it from the library's
    templates of that algorithm in the biometric store; ``drop`` deletes it; both exclude
    writers too.
    """

    def open(self, library_id: str, algorithm_id: str, dimension: int, metric: str) -> VectorIndex: ...

    def writing(
        self, library_id: str, algorithm_id: str, dimension: int, metric: str
    ) -> AbstractContextManager[VectorIndex]: ...

    def rebuild(self, library_id: str, algorithm_id: str, dimension: int, metric: str) -> VectorIndex: ...

    def drop(self, library_id: str, algorithm_id: str) -> None: ...


@attrs.frozen
class ReportAttachment:
    """One file of a scheduled report: the JSON document, the CSV, the HTML report."""

    filename: str
    media_type: str
    content: bytes


@attrs.frozen
class ReportMessage:
    """One scheduled report for one period, as it is delivered (A-04).

    ``message_id`` is the period's stable Message-ID (``report_schedule.message_id_for``): every
    attempt at the period carries the same one. ``recipients`` are (user id, e-mail address or
    None) of the administrators who receive it.
    """

    schedule_id: str
    period_label: str
    message_id: str
    subject: str
    text: str
    recipients: tuple[tuple[str, str | None], ...]
    attachments: tuple[ReportAttachment, ...]


class ReportDeliveryError(Exception):
    """A delivery that did not happen. Its message describes why for the record (it is kept in
    a ``DeliveryFailed`` event), so a sink puts no secret in it: no password, no credentials."""


@runtime_checkable
class ReportSink(Protocol):
    """Where scheduled reports are delivered: by e-mail (SMTP) when configured, else as files
    under RFR_DATA_DIR.

    ``channel`` names the way (``smtp``, ``folder``) in the events; ``needs_addresses`` says
    whether a recipient without an e-mail address can receive it; ``message_domain`` is the
    domain of the Message-IDs it sends.
    """

    channel: str
    needs_addresses: bool
    message_domain: str

    def deliver(self, message: ReportMessage) -> str:
        """Delivers the message or raises ``ReportDeliveryError``; returns where it went. Delivering
        the same ``message_id`` again must not make a second report (a file is replaced; an
        e-mail carries the same Message-ID)."""
        ...


@runtime_checkable
class AuditTrail(Protocol):
    """Read access to the event store's audit chain and history (implemented over the recorder)."""

    def verify(self, anchor: str | None) -> Mapping[str, Any]:
        """The chain verification result; ``anchor`` is a published ``COUNT:HASH`` head."""
        ...

    def head(self) -> Mapping[str, Any] | None: ...

    def history(self, aggregate_id: UUID, until: datetime | None) -> list[Mapping[str, Any]]:
        """The aggregate's stored events (oldest first) as JSON-able data; [] if it has none."""
        ...
