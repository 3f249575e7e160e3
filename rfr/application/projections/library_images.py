"""The images of every library, their templates and counts: what a decision about one image,
one search or one library summary needs, without loading the library's history (ADR 0013).

Tables:

- ``rfr_library_images``: one row per image ever enrolled, with the facts R-01 needs, its
  retention and its state (expired, purged), and ``holder_id``, the aggregate that holds its
  facts and takes commands about it. ``(library_id, content_hash)`` is unique among images not
  purged: the same image cannot be enrolled twice in a library, however many writers race.
- ``rfr_library_templates``: the templates of images not purged, by algorithm.
- ``rfr_library_totals`` and ``rfr_library_templated``: per library, images ever enrolled and
  images live (neither expired nor purged), and per algorithm the live images it templates;
  kept by the same statements, so a summary reads two rows, not a million.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import date, datetime
from typing import Any

import attrs
from eventsourcing.domain import DomainEventProtocol

from rfr.application.projections import ProjectionStore, Statement, placeholders
from rfr.domain.enrolment_batch import EnrolmentBatch, ImageHolder
from rfr.domain.reference_library import LibraryHoldings, ReferenceLibrary
from rfr.domain.retention_sweep import ImagesDue

IMAGES = "rfr_library_images"
TEMPLATES = "rfr_library_templates"
TOTALS = "rfr_library_totals"
TEMPLATED = "rfr_library_templated"

_LIVE = "expired_at IS NULL AND purged_at IS NULL"


class LibraryImagesProjection:
    name = "library_images"
    version = 2
    tables = (IMAGES, TEMPLATES, TOTALS, TEMPLATED)
    ddl = (
        f"CREATE TABLE IF NOT EXISTS {IMAGES} ("
        "image_id TEXT PRIMARY KEY, library_id TEXT NOT NULL, holder_id TEXT NOT NULL, "
        "content_hash TEXT NOT NULL, captured_on TEXT NOT NULL, age_at_capture TEXT NOT NULL, "
        "mopi_group INTEGER NOT NULL, retention_until TEXT NOT NULL, enrolled_at TEXT NOT NULL, "
        "expired_at TEXT, deletion_due TEXT, purged_at TEXT, seq INTEGER NOT NULL UNIQUE)",
        f"CREATE UNIQUE INDEX IF NOT EXISTS {IMAGES}_once ON {IMAGES} (library_id, content_hash) "
        "WHERE purged_at IS NULL",
        f"CREATE INDEX IF NOT EXISTS {IMAGES}_by_library ON {IMAGES} (library_id, seq)",
        f"CREATE INDEX IF NOT EXISTS {IMAGES}_due ON {IMAGES} (retention_until) WHERE {_LIVE}",
        f"CREATE INDEX IF NOT EXISTS {IMAGES}_due_in_library ON {IMAGES} (library_id, retention_until) "
        f"WHERE {_LIVE}",
        f"CREATE INDEX IF NOT EXISTS {IMAGES}_expired ON {IMAGES} (library_id) "
        "WHERE expired_at IS NOT NULL AND purged_at IS NULL",
        f"CREATE TABLE IF NOT EXISTS {TEMPLATES} ("
        "template_id TEXT PRIMARY KEY, image_id TEXT NOT NULL, library_id TEXT NOT NULL, "
        "algorithm_id TEXT NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS {TEMPLATES}_by_image ON {TEMPLATES} (image_id)",
        # A re-templating erases a replaced algorithm's templates a page at a time (T-02, R-05).
        f"CREATE INDEX IF NOT EXISTS {TEMPLATES}_by_algorithm ON {TEMPLATES} (library_id, algorithm_id)",
        f"CREATE TABLE IF NOT EXISTS {TOTALS} ("
        "library_id TEXT PRIMARY KEY, enrolled INTEGER NOT NULL, live INTEGER NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {TEMPLATED} ("
        "library_id TEXT NOT NULL, algorithm_id TEXT NOT NULL, live INTEGER NOT NULL, "
        "PRIMARY KEY (library_id, algorithm_id))",
    )

    def statements(self, event: DomainEventProtocol[Any]) -> list[Statement]:
        if isinstance(event, EnrolmentBatch.Enrolled):
            return _enrolled(event.library_id, str(event.originator_id), event.enrolled, event)
        if isinstance(event, ReferenceLibrary.ImagesEnrolled):
            # A library enrolled before batches existed holds its images itself.
            return _enrolled(str(event.originator_id), str(event.originator_id), event.enrolled, event)
        if isinstance(event, ImageHolder.TemplatesBuilt):
            return _templated(event.algorithm_id, event.templates)
        if isinstance(event, ImageHolder.TemplatesErased):
            return _templates_erased(event.algorithm_id, event.template_ids)
        if isinstance(event, ImageHolder.ImageRetentionExpired):
            return _expired(event.image_ids, _at(event), event.deletion_due.isoformat())
        if isinstance(event, ImageHolder.ImagesPurged):
            return _purged(event.image_ids, _at(event))
        return []


def _at(event: DomainEventProtocol[Any]) -> str:
    return event.timestamp.isoformat()


def _enrolled(
    library_id: str, holder_id: str, enrolled: Sequence[dict[str, Any]], event: DomainEventProtocol[Any]
) -> list[Statement]:
    if not enrolled:
        return []
    at = _at(event)
    rows: list[Statement] = [
        (
            f"INSERT INTO {IMAGES} (image_id, library_id, holder_id, content_hash, captured_on, "
            "age_at_capture, mopi_group, retention_until, enrolled_at, seq) "
            # seq: enrolment order across the log (the unique index makes max() a lookup).
            f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT coalesce(max(seq), 0) + 1 FROM {IMAGES}))",
            (
                item["image"]["image_id"],
                library_id,
                holder_id,
                item["image"]["content_hash"],
                item["image"]["captured_on"],
                item["image"]["age_at_capture"],
                int(item["image"]["mopi_group"]),
                item["retention_until"],
                at,
            ),
        )
        for item in enrolled
    ]
    count = len(enrolled)
    rows.append(
        (
            f"INSERT INTO {TOTALS} (library_id, enrolled, live) VALUES (?, ?, ?) "
            # The table's own columns named with it: PostgreSQL reads a bare name as ambiguous.
            f"ON CONFLICT (library_id) DO UPDATE SET enrolled = {TOTALS}.enrolled + excluded.enrolled, "
            f"live = {TOTALS}.live + excluded.live",
            (library_id, count, count),
        )
    )
    return rows


def _templated(algorithm_id: str, templates: dict[str, str]) -> list[Statement]:
    rows: list[Statement] = []
    for image_id, template_id in templates.items():
        rows.append(
            (
                f"INSERT INTO {TEMPLATES} (template_id, image_id, library_id, algorithm_id) "
                f"SELECT ?, image_id, library_id, ? FROM {IMAGES} WHERE image_id = ?",
                (template_id, algorithm_id, image_id),
            )
        )
        rows.append(
            (
                f"INSERT INTO {TEMPLATED} (library_id, algorithm_id, live) "
                f"SELECT library_id, ?, 1 FROM {IMAGES} WHERE image_id = ? AND {_LIVE} "
                f"ON CONFLICT (library_id, algorithm_id) DO UPDATE SET live = {TEMPLATED}.live + 1",
                (algorithm_id, image_id),
            )
        )
    return rows


def _templates_erased(algorithm_id: str, template_ids: Sequence[str]) -> list[Statement]:
    """The templates' rows gone, and the live images they templated taken off the algorithm's count."""
    if not template_ids:
        return []
    ids = tuple(template_ids)
    marks = placeholders(len(ids))
    return [
        (
            f"UPDATE {TEMPLATED} SET live = live - (SELECT count(*) FROM {TEMPLATES} t "
            f"JOIN {IMAGES} i ON i.image_id = t.image_id WHERE t.template_id IN ({marks}) "
            f"AND t.library_id = {TEMPLATED}.library_id AND i.expired_at IS NULL AND i.purged_at IS NULL) "
            f"WHERE algorithm_id = ? AND library_id IN (SELECT library_id FROM {TEMPLATES} "
            f"WHERE template_id IN ({marks}))",
            (*ids, algorithm_id, *ids),
        ),
        (
            f"DELETE FROM {TEMPLATES} WHERE template_id IN ({marks}) AND algorithm_id = ?",
            (*ids, algorithm_id),
        ),
    ]


def _leaving(image_ids: Sequence[str]) -> list[Statement]:
    """The counts of the live ones of ``image_ids`` taken off, before their rows change."""
    ids = tuple(image_ids)
    marks = placeholders(len(ids))
    return [
        (
            f"UPDATE {TOTALS} SET live = live - (SELECT count(*) FROM {IMAGES} i "
            f"WHERE i.library_id = {TOTALS}.library_id AND i.image_id IN ({marks}) "
            "AND i.expired_at IS NULL AND i.purged_at IS NULL) "
            f"WHERE library_id IN (SELECT library_id FROM {IMAGES} WHERE image_id IN ({marks}))",
            ids + ids,
        ),
        (
            f"UPDATE {TEMPLATED} SET live = live - (SELECT count(*) FROM {TEMPLATES} t "
            f"JOIN {IMAGES} i ON i.image_id = t.image_id WHERE t.library_id = {TEMPLATED}.library_id "
            f"AND t.algorithm_id = {TEMPLATED}.algorithm_id AND i.image_id IN ({marks}) "
            "AND i.expired_at IS NULL AND i.purged_at IS NULL) "
            f"WHERE library_id IN (SELECT library_id FROM {IMAGES} WHERE image_id IN ({marks}))",
            ids + ids,
        ),
    ]


def _expired(image_ids: Sequence[str], at: str, deletion_due: str) -> list[Statement]:
    if not image_ids:
        return []
    ids = tuple(image_ids)
    return [
        *_leaving(ids),
        (
            f"UPDATE {IMAGES} SET expired_at = ?, deletion_due = ? "
            f"WHERE image_id IN ({placeholders(len(ids))}) AND {_LIVE}",
            (at, deletion_due, *ids),
        ),
    ]


def _purged(image_ids: Sequence[str], at: str) -> list[Statement]:
    if not image_ids:
        return []
    ids = tuple(image_ids)
    marks = placeholders(len(ids))
    return [
        *_leaving(ids),
        (f"UPDATE {IMAGES} SET purged_at = ? WHERE image_id IN ({marks}) AND purged_at IS NULL", (at, *ids)),
        (f"DELETE FROM {TEMPLATES} WHERE image_id IN ({marks})", ids),
    ]


# -- reading ------------------------------------------------------------------------------------


@attrs.frozen
class ImageRow:
    """One image as the projection holds it."""

    image_id: str
    library_id: str
    holder_id: str
    content_hash: str
    captured_on: date
    age_at_capture: str
    mopi_group: int
    retention_until: date
    enrolled_at: datetime
    expired_at: datetime | None
    deletion_due: datetime | None
    purged_at: datetime | None

    @classmethod
    def of(cls, row: Sequence[Any]) -> ImageRow:
        return cls(
            row[0],
            row[1],
            row[2],
            row[3],
            date.fromisoformat(row[4]),
            row[5],
            int(row[6]),
            date.fromisoformat(row[7]),
            datetime.fromisoformat(row[8]),
            _moment(row[9]),
            _moment(row[10]),
            _moment(row[11]),
        )

    def searchable_at(self, at: datetime) -> bool:
        return self.expired_at is None and self.purged_at is None and self.retention_until > at.date()


@attrs.frozen
class LibraryTotals:
    """A library's images: ever enrolled, searchable now, and per algorithm whether it templates
    every searchable image (T-02)."""

    enrolled: int
    searchable: int
    algorithms: tuple[str, ...]
    searchable_with: tuple[str, ...]
    # Per algorithm, how many live images it templates.
    templated: tuple[tuple[str, int], ...] = ()

    def templated_by(self, algorithm_id: str) -> int:
        return dict(self.templated).get(algorithm_id, 0)


_COLUMNS = (
    "image_id, library_id, holder_id, content_hash, captured_on, age_at_capture, mopi_group, "
    "retention_until, enrolled_at, expired_at, deletion_due, purged_at"
)


class LibraryImages:
    """Queries of the projection; each reads the rows it names, whatever the library's size."""

    def __init__(self, store: ProjectionStore) -> None:
        self._store = store

    def enrolled_as(self, library_id: str, content_hashes: Collection[str]) -> dict[str, str]:
        """Of ``content_hashes``, those enrolled in the library and not purged: hash -> image id."""
        if not content_hashes:
            return {}
        hashes = tuple(content_hashes)
        rows = self._store.query(
            f"SELECT content_hash, image_id FROM {IMAGES} WHERE library_id = ? AND purged_at IS NULL "
            f"AND content_hash IN ({placeholders(len(hashes))})",
            (library_id, *hashes),
        )
        return {h: i for h, i in rows}

    def images(self, image_ids: Collection[str]) -> dict[str, ImageRow]:
        found: dict[str, ImageRow] = {}
        for ids in _chunks(image_ids):
            rows = self._store.query(
                f"SELECT {_COLUMNS} FROM {IMAGES} WHERE image_id IN ({placeholders(len(ids))})", ids
            )
            found.update((r[0], ImageRow.of(r)) for r in rows)
        return found

    def image(self, library_id: str, image_id: str) -> ImageRow | None:
        found = self.images([image_id]).get(image_id)
        return found if found is not None and found.library_id == library_id else None

    def page(self, library_id: str, offset: int, limit: int) -> list[ImageRow]:
        rows = self._store.query(
            f"SELECT {_COLUMNS} FROM {IMAGES} WHERE library_id = ? ORDER BY seq LIMIT ? OFFSET ?",
            (library_id, limit, offset),
        )
        return [ImageRow.of(r) for r in rows]

    def images_after(self, library_id: str, position: int, limit: int) -> list[tuple[int, ImageRow]]:
        """The library's images enrolled after enrolment position ``position``, in order, with
        their positions: a job walks a library a page at a time, each page one index range."""
        rows = self._store.query(
            f"SELECT seq, {_COLUMNS} FROM {IMAGES} WHERE library_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (library_id, position, limit),
        )
        return [(int(r[0]), ImageRow.of(r[1:])) for r in rows]

    def templates_by(self, library_id: str, algorithm_id: str, limit: int) -> dict[str, tuple[str, str]]:
        """Up to ``limit`` of the library's templates of the algorithm (images not purged):
        template id -> (image id, holder id)."""
        rows = self._store.query(
            f"SELECT t.template_id, t.image_id, i.holder_id FROM {TEMPLATES} t "
            f"JOIN {IMAGES} i ON i.image_id = t.image_id "
            # No order: each page is erased before the next is read, and the index stops at the limit.
            "WHERE t.library_id = ? AND t.algorithm_id = ? LIMIT ?",
            (library_id, algorithm_id, limit),
        )
        return {t: (i, h) for t, i, h in rows}

    def templates_of(self, image_ids: Collection[str]) -> dict[str, dict[str, str]]:
        """image id -> {algorithm id: template id}, for the images given that have templates."""
        found: dict[str, dict[str, str]] = {}
        for ids in _chunks(image_ids):
            rows = self._store.query(
                f"SELECT image_id, algorithm_id, template_id FROM {TEMPLATES} "
                f"WHERE image_id IN ({placeholders(len(ids))})",
                ids,
            )
            for image_id, algorithm_id, template_id in rows:
                found.setdefault(image_id, {})[algorithm_id] = template_id
        return found

    def libraries_of_templates(self, template_ids: Collection[str]) -> dict[str, str]:
        """Of ``template_ids``, those the projection lists (their image not purged): -> library id."""
        found: dict[str, str] = {}
        for ids in _chunks(template_ids):
            rows = self._store.query(
                f"SELECT template_id, library_id FROM {TEMPLATES} "
                f"WHERE template_id IN ({placeholders(len(ids))})",
                ids,
            )
            found.update((t, lib) for t, lib in rows)
        return found

    def templates_in(self, library_id: str, algorithm_id: str, template_ids: Collection[str]) -> set[str]:
        """Of ``template_ids``, those of the library and algorithm whose image is not purged."""
        found: set[str] = set()
        for ids in _chunks(template_ids):
            rows = self._store.query(
                f"SELECT template_id FROM {TEMPLATES} WHERE template_id IN ({placeholders(len(ids))}) "
                "AND library_id = ? AND algorithm_id = ?",
                (*ids, library_id, algorithm_id),
            )
            found.update(r[0] for r in rows)
        return found

    def searchable_templates(
        self, library_id: str, algorithm_id: str, template_ids: Collection[str], at: datetime
    ) -> dict[str, str]:
        """Of ``template_ids``, the library's searchable templates of the algorithm: -> image id."""
        if not template_ids:
            return {}
        ids = tuple(template_ids)
        rows = self._store.query(
            f"SELECT t.template_id, t.image_id FROM {TEMPLATES} t JOIN {IMAGES} i ON i.image_id = t.image_id "
            f"WHERE t.template_id IN ({placeholders(len(ids))}) AND t.library_id = ? AND t.algorithm_id = ? "
            "AND i.expired_at IS NULL AND i.purged_at IS NULL AND i.retention_until > ?",
            (*ids, library_id, algorithm_id, at.date().isoformat()),
        )
        return {t: i for t, i in rows}

    def due(self, library_id: str, at: datetime, *, remaining: bool) -> ImagesDue:
        """What the sweep may act on in the library (``retention_sweep.ImagesDue``): the due and
        expired images through their partial indexes; every image not purged only when asked
        (an ended approval, L-12, deletes the whole library)."""
        kept: tuple[str, ...] = ()
        if remaining:
            kept = tuple(
                r[0]
                for r in self._store.query(
                    f"SELECT image_id FROM {IMAGES} WHERE library_id = ? AND purged_at IS NULL ORDER BY seq",
                    (library_id,),
                )
            )
        past = self._store.query(
            f"SELECT image_id FROM {IMAGES} WHERE library_id = ? AND retention_until <= ? AND {_LIVE}",
            (library_id, at.date().isoformat()),
        )
        expired = self._store.query(
            f"SELECT image_id FROM {IMAGES} WHERE library_id = ? AND expired_at IS NOT NULL "
            "AND purged_at IS NULL",
            (library_id,),
        )
        return ImagesDue(kept, tuple(sorted(r[0] for r in past)), tuple(sorted(r[0] for r in expired)))

    def holders(self, library_id: str, image_ids: Collection[str]) -> dict[str, list[str]]:
        """holder id -> the given images of the library it holds (unknown ids: none)."""
        rows = self.images(image_ids)
        found: dict[str, list[str]] = {}
        for image_id in image_ids:  # in the order given
            row = rows.get(image_id)
            if row is not None and row.library_id == library_id:
                found.setdefault(row.holder_id, []).append(image_id)
        return found

    def holdings(
        self,
        library_id: str,
        algorithm_id: str,
        template_ids: Collection[str],
        at: datetime,
        *,
        totals: LibraryTotals | None = None,
        searchable: Collection[str] | None = None,
    ) -> LibraryHoldings:
        """What a decision about these templates of the library needs to know, now. A search
        that has just read the library's ``totals`` and checked its hits (``searchable_templates``
        at the same ``at``) passes them rather than reading them again."""
        if totals is None:
            totals = self.totals(library_id, at)
        if searchable is None:
            searchable = self.searchable_templates(library_id, algorithm_id, template_ids, at)
        return LibraryHoldings(library_id, frozenset(totals.searchable_with), frozenset(searchable))

    def templated(self, library_id: str, algorithm_id: str) -> int:
        """How many live images of the library the algorithm templates."""
        found = self._store.query(
            f"SELECT live FROM {TEMPLATED} WHERE library_id = ? AND algorithm_id = ?",
            (library_id, algorithm_id),
        )
        return found[0][0] if found else 0

    def totals(self, library_id: str, at: datetime) -> LibraryTotals:
        # One statement, one round trip on PostgreSQL: the totals' row (with the images past
        # their retention but not yet expired by the sweep, no longer searchable: R-01), then
        # one row per algorithm.
        rows = self._store.query(
            f"SELECT NULL, enrolled, live, (SELECT count(*) FROM {IMAGES} WHERE library_id = ? "
            f"AND retention_until <= ? AND {_LIVE}) FROM {TOTALS} WHERE library_id = ? "
            f"UNION ALL SELECT algorithm_id, live, NULL, NULL FROM {TEMPLATED} WHERE library_id = ?",
            (library_id, at.date().isoformat(), library_id, library_id),
        )
        enrolled = live = overdue = 0
        templated: dict[str, int] = {}
        for algorithm_id, count, live_count, overdue_count in rows:
            if algorithm_id is None:
                enrolled, live, overdue = count, live_count, overdue_count
            elif count > 0:  # an algorithm whose templates were all erased or left counts no more
                templated[algorithm_id] = count
        searchable = live - overdue
        complete = tuple(a for a, n in sorted(templated.items()) if searchable > 0 and n >= live)
        return LibraryTotals(
            enrolled, searchable, tuple(sorted(templated)), complete, tuple(sorted(templated.items()))
        )


# Values bound in one IN (...): well under SQLite's limit of 32,766 variables per statement.
_IN_LIST = 500


def _chunks(values: Collection[str]) -> Iterator[tuple[str, ...]]:
    """``values`` in tuples of at most ``_IN_LIST``, for one query each (a sweep may name many)."""
    listed = tuple(values)
    for start in range(0, len(listed), _IN_LIST):
        yield listed[start : start + _IN_LIST]


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
