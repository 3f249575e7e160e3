"""Reference libraries: creation under an approval (L-01), summaries, and contents behind L-13.

Enrolment and templates are the biometric services' work; this module governs the library
as a record and who may see what it holds.
"""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

import attrs

from rfr.application.projections.library_images import ImageRow, LibraryTotals
from rfr.application.services.base import MAX_PAGE, Need, Page, UseCase
from rfr.domain.library_approval import LibraryApproval
from rfr.domain.people import OPERATIONAL_ROLES, Role
from rfr.domain.reference_library import LIBRARY_MANAGERS, ReferenceLibrary
from rfr.domain.rules_search import within_access

MANAGERS = Need(LIBRARY_MANAGERS)
LIBRARY_READERS = Need((*OPERATIONAL_ROLES, Role.ADMINISTRATOR))


@attrs.frozen
class LibraryView:
    """What any operational user may know of a library: no image is named here.

    Attributes:
        id: The library's id.
        name: The library's name.
        approval_id: The id of the library approval it exists under.
        kind: ``substantive`` or ``temporary``, as approved.
        approved_level: The most intrusive Image Matrix level it may be searched with (1-5).
        created_at: When the library was created.
        images_enrolled: How many images were ever enrolled, searchable or not.
        images_searchable: How many images may be searched now (within retention, not purged).
        algorithms: The algorithms that hold templates of its images.
        searchable_with: The algorithms that template every searchable image, the only ones it
            can be searched with (T-02).
        approval_in_force: Whether its approval is in force now (L-01).
        legal_hold: Whether a legal hold keeps its images from deletion.
    """

    id: UUID
    name: str
    approval_id: str
    kind: str
    approved_level: int
    created_at: datetime
    images_enrolled: int
    images_searchable: int
    algorithms: tuple[str, ...]
    searchable_with: tuple[str, ...]  # T-02: algorithms that template every searchable image
    approval_in_force: bool
    legal_hold: bool

    @classmethod
    def of(
        cls, library: ReferenceLibrary, approval: LibraryApproval, totals: LibraryTotals, now: datetime
    ) -> LibraryView:
        return cls(
            id=library.id,
            name=library.name,
            approval_id=library.approval_id,
            kind=library.kind.value,
            approved_level=int(library.approved_level),
            created_at=library.created_on,
            images_enrolled=totals.enrolled,
            images_searchable=totals.searchable,
            algorithms=totals.algorithms,
            searchable_with=totals.searchable_with,
            approval_in_force=approval.in_force_at(now),
            legal_hold=library.legal_hold is not None,
        )


@attrs.frozen
class LibraryImageView:
    """One enrolled image of a library, as those with access to the library see it (L-13).

    Attributes:
        image_id: The image's id within the library.
        content_hash: ``sha256:`` and the hex SHA-256 of the bytes as uploaded.
        captured_on: The date of capture.
        age_at_capture: The perceived age band of the person at capture.
        mopi_group: The MOPI group of the record (1, 2 or 3), which sets retention (R-01).
        retention_until: The last day the image may be kept and searched (R-01).
        enrolled_at: When it was enrolled.
        searchable: Whether it may be searched now: within retention, not expired or purged.
        expired_at: When its retention expired and it stopped being searchable, or null.
        deletion_due: When it must be deleted by, once expired, or null.
        purged_at: When the image and its templates were erased, or null.
        templates: Its templates, each a pair ``[algorithm_id, template_id]``.
        batch_id: The enrolment batch that holds its facts (ADR 0013): the aggregate whose
            events in the audit trail record its enrolment, expiry and deletion.
    """

    image_id: str
    content_hash: str
    captured_on: date
    age_at_capture: str
    mopi_group: int
    retention_until: date
    enrolled_at: datetime
    searchable: bool
    expired_at: datetime | None
    deletion_due: datetime | None
    purged_at: datetime | None
    templates: tuple[tuple[str, str], ...]  # (algorithm_id, template_id)
    batch_id: str

    @classmethod
    def of(cls, image: ImageRow, templates: dict[str, str], now: datetime) -> LibraryImageView:
        return cls(
            image_id=image.image_id,
            content_hash=image.content_hash,
            captured_on=image.captured_on,
            age_at_capture=image.age_at_capture,
            mopi_group=image.mopi_group,
            retention_until=image.retention_until,
            enrolled_at=image.enrolled_at,
            searchable=image.searchable_at(now),
            expired_at=image.expired_at,
            deletion_due=image.deletion_due,
            purged_at=image.purged_at,
            templates=tuple(sorted(templates.items())),
            batch_id=image.holder_id,
        )


@attrs.frozen
class LibraryContents:
    """One page of a library's images in enrolment order; ``next_offset`` is None on the last page.

    Attributes:
        library: The library.
        images: The images on this page, in enrolment order.
        next_offset: The ``offset`` of the next page, or null on the last page.
    """

    library: LibraryView
    images: tuple[LibraryImageView, ...]
    next_offset: int | None


class ReferenceLibraries(UseCase):
    def create(self, acting_user: str, name: str, approval_id: UUID | str) -> LibraryView:
        """A library exists only under an approval in force (L-01), at its approved level (L-11)."""
        approval = self.load(approval_id, LibraryApproval)
        library = self._act(
            acting_user,
            "create library",
            [],
            lambda a: a.new(ReferenceLibrary.create(a.actor, a.at, name, approval)),
            target_name=f"ReferenceLibrary under approval {approval.id}",
        )
        return self._view(library, approval, self.clock.now())

    def get(self, acting_user: str, library_id: UUID | str) -> LibraryView:
        self._read(acting_user, "read library", LIBRARY_READERS, target=f"ReferenceLibrary {library_id}")
        library = self.load(library_id, ReferenceLibrary)
        return self._view(library, self._approval(library), self.clock.now())

    def list(self, acting_user: str, *, after: int = 0, limit: int = 50) -> Page[LibraryView]:
        self._read(acting_user, "list libraries", LIBRARY_READERS)
        now = self.clock.now()

        def view(library_id: UUID) -> LibraryView:
            library = self.load(library_id, ReferenceLibrary)
            return self._view(library, self._approval(library), now)

        return self.page(ReferenceLibrary.Created, view, after=after, limit=limit)

    def contents(
        self, acting_user: str, library_id: UUID | str, *, offset: int = 0, limit: int = 100
    ) -> LibraryContents:
        """L-13: only users within the approval's access restrictions list what a library holds.

        A refused listing is recorded (A-01) and raised as ``PolicyRefusal`` naming L-13.
        """
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise ValueError(f"offset must be >= 0 and limit between 1 and {MAX_PAGE}")
        library = self.load(library_id, ReferenceLibrary)
        approval = self._approval(library)
        self._read(
            acting_user,
            "list library contents",
            LIBRARY_READERS,
            target=f"ReferenceLibrary {library.id}",
            decide=lambda actor: within_access(approval, actor),
        )
        now = self.clock.now()
        images = self.app.library_images
        rows = images.page(str(library.id), offset, limit + 1)
        shown = rows[:limit]
        templates = images.templates_of([r.image_id for r in shown])
        return LibraryContents(
            self._view(library, approval, now),
            tuple(LibraryImageView.of(r, templates.get(r.image_id, {}), now) for r in shown),
            offset + limit if len(rows) > limit else None,
        )

    def _view(self, library: ReferenceLibrary, approval: LibraryApproval, now: datetime) -> LibraryView:
        return LibraryView.of(library, approval, self.app.library_images.totals(str(library.id), now), now)

    def _approval(self, library: ReferenceLibrary) -> LibraryApproval:
        return self.load(library.approval_id, LibraryApproval)
