"""Reference libraries: creation under an approval (L-01), enrolment by upload or server folder, L-13 listing.

Enrolment by upload checks every file before any work: a part of another declared type is
refused with 415, and each file is decoded (type, pixel limit, damage) so that one bad file
refuses the whole request with its problem, naming the file, and nothing is enrolled. Files
that decode but cannot be enrolled (R-01, no face, a duplicate) are reported item by item.

Bulk enrolment reads a folder on the server (inside ``RFR_IMPORT_ROOT``) with a CSV manifest
and runs as a job the client polls (``_import_jobs``); jobs are stored, so any server process
answers a poll, before and after a restart (ADR 0017).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar
from uuid import UUID

import attrs
import msgspec
from litestar import Router, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, PathParameter, QueryParameter

from rfr.application.errors import ImageRejected
from rfr.application.services.access import Principal
from rfr.application.services.enrolment import (
    DEFAULT_BATCH,
    ENROLLERS,
    MANIFEST_COLUMNS,
    Enrolment,
    EnrolmentItem,
    EnrolmentReport,
    EnrolmentResult,
)
from rfr.application.services.import_jobs import ImportJobs
from rfr.application.services.libraries import (
    LIBRARY_READERS,
    MANAGERS,
    LibraryContents,
    LibraryView,
    ReferenceLibraries,
)
from rfr.domain.images import MopiGroup, PerceivedAgeBand
from rfr.entrypoints.http.access_control import allow
from rfr.entrypoints.http.context import HttpContext, use_case
from rfr.entrypoints.http.problem_responses import problem_spec
from rfr.entrypoints.http.resources._import_jobs import ImportJobRunner, ImportJobView
from rfr.entrypoints.http.resources._workflow import (
    Cursor,
    Name,
    PageSize,
    image_bytes,
    invalid,
    is_video,
    unprocessable,
)

V = TypeVar("V")
EARLIEST_CAPTURE = date(1900, 1, 1)
LibraryId = Annotated[UUID, PathParameter(description="the library's id")]
Caller = NamedDependency[Principal]


class CreateLibraryBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A library exists only under an approval in force (L-01), at the approved level (L-11).

    Attributes:
        name: The library's name.
        approval_id: The id of the library approval in force it is created under.
    """

    name: Name
    approval_id: UUID


class ImportBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A folder inside the server's import root (relative to it, or absolute) and its CSV manifest.

    Attributes:
        folder: The folder of images on the server, inside ``RFR_IMPORT_ROOT`` (relative to
            it, or absolute).
        manifest: The CSV manifest's file name in the folder.
        batch_size: How many images are enrolled per recorded batch.
    """

    folder: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    manifest: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "manifest.csv"
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=500)] = DEFAULT_BATCH


# One enrolment upload is one recorded batch: at most this many images, each fact as often.
MAX_UPLOAD_FILES = 500
MAX_SUBJECT = 200
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ONE_PER_FILE = {"min_items": 1, "max_items": MAX_UPLOAD_FILES}


def _each(description: str, **item: Any) -> Any:
    """A form field repeated once, or once per file; ``item`` is the schema of one value."""
    return Body(description=description, **_ONE_PER_FILE, schema_extra={"items": {"type": "string", **item}})


@dataclass
class EnrolmentUpload:
    """Images to enrol with the facts R-01 needs. Each fact is given once (it applies to every
    file) or once per file, in the order of the files (another count is refused with 422)."""

    files: Annotated[
        list[UploadFile],
        Body(
            description="the images: JPEG, PNG or WebP, one face each; or short videos of one "
            "subject, declared video/mp4, video/webm or video/x-msvideo (their best face is enrolled)",
            **_ONE_PER_FILE,
        ),
    ]
    capture_date: Annotated[
        list[str], _each("date of capture, YYYY-MM-DD, from 1900 to today", format="date", maxLength=10)
    ]
    age_band: Annotated[
        list[str], _each("perceived age at capture", enum=[b.value for b in PerceivedAgeBand])
    ]
    mopi_group: Annotated[list[str], _each("MOPI group of the record", enum=["1", "2", "3"])]
    subject: Annotated[
        list[str],
        Body(
            description="optional reference of the person shown (e.g. a custody record number)",
            max_items=MAX_UPLOAD_FILES,
            schema_extra={"items": {"type": "string", "maxLength": MAX_SUBJECT}},
        ),
    ] = field(default_factory=list)


@attrs.frozen
class EnrolmentReportView:
    """What became of each file, in the order sent; and the cache probes re-searched after it (U-02).

    Attributes:
        library_id: The library enrolled into.
        algorithm_id: The algorithm that made the templates.
        enrolled: How many files were enrolled.
        not_enrolled: How many were not (each says why in ``results``).
        results: What became of each file, in the order sent.
        ucc_probes_screened: How many unresolved-crime-cache probes were searched against the
            new images (U-02).
        ucc_matches_queued: How many potential matches that found, queued for adjudication.
    """

    library_id: str
    algorithm_id: str
    enrolled: int
    not_enrolled: int
    results: tuple[EnrolmentResult, ...]
    ucc_probes_screened: int
    ucc_matches_queued: int

    @classmethod
    def of(cls, report: EnrolmentReport) -> EnrolmentReportView:
        return cls(
            report.library_id,
            report.algorithm_id,
            len(report.enrolled),
            len(report.not_enrolled),
            report.results,
            report.screening.probes_screened,
            report.screening.matches_queued,
        )


@attrs.frozen
class LibraryPage:
    """One page of libraries; pass ``next_after`` as ``after`` for the next (null: last page).

    Attributes:
        items: The libraries on this page, oldest first.
        next_after: The cursor of the next page (pass it as ``after``), or null on the last page.
    """

    items: list[LibraryView]
    next_after: int | None


def _libraries(ctx: HttpContext) -> ReferenceLibraries:
    return ctx.services.libraries


def _enrolment(ctx: HttpContext) -> Enrolment:
    return ctx.services.enrolment


def _import_jobs(ctx: HttpContext) -> ImportJobs:
    return ctx.services.import_jobs


def _runner(ctx: HttpContext) -> ImportJobRunner:
    return ctx.component("import-runner", lambda c: ImportJobRunner(c.services.import_runners))


@post(
    "/libraries",
    sync_to_thread=True,
    summary="Create a library under an approval",
    **allow(*MANAGERS.roles),
)
def create_library(
    principal: Caller,
    libraries: NamedDependency[ReferenceLibraries],
    data: Annotated[
        CreateLibraryBody,
        Body(
            examples=[
                Example(
                    value={
                        "name": "Custody images 2020-2025",
                        "approval_id": "0b0d5d52-4e2b-4c1f-9a5e-9a3c1e0f7a11",
                    }
                )
            ]
        ),
    ],
) -> LibraryView:
    return libraries.create(principal.user_id, data.name, data.approval_id)


@get("/libraries", sync_to_thread=True, summary="List libraries", **allow(*LIBRARY_READERS.roles))
def list_libraries(
    principal: Caller,
    libraries: NamedDependency[ReferenceLibraries],
    after: Cursor = 0,
    limit: PageSize = 50,
) -> LibraryPage:
    """Summaries only (counts, algorithms, T-02 searchability); no image is named here."""
    page = libraries.list(principal.user_id, after=after, limit=limit)
    return LibraryPage(list(page.items), page.next_after)


@get(
    "/libraries/{library_id:uuid}",
    sync_to_thread=True,
    summary="Read a library",
    **allow(*LIBRARY_READERS.roles),
)
def get_library(
    principal: Caller, libraries: NamedDependency[ReferenceLibraries], library_id: FromPath[LibraryId]
) -> LibraryView:
    return libraries.get(principal.user_id, library_id)


@get(
    "/libraries/{library_id:uuid}/images",
    sync_to_thread=True,
    summary="List a library's images (L-13)",
    **allow(*LIBRARY_READERS.roles),
)
def library_images(
    principal: Caller,
    libraries: NamedDependency[ReferenceLibraries],
    library_id: FromPath[LibraryId],
    offset: Annotated[int, QueryParameter(ge=0, le=2**31)] = 0,
    limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
) -> LibraryContents:
    """Only users within the approval's access restrictions; anyone else is refused under L-13
    (403, recorded)."""
    return libraries.contents(principal.user_id, library_id, offset=offset, limit=limit)


@post(
    "/libraries/{library_id:uuid}/images",
    sync_to_thread=True,
    status_code=200,
    summary="Enrol uploaded images",
    **allow(*ENROLLERS.roles),
)
def enrol_images(
    principal: Caller,
    enrolment: NamedDependency[Enrolment],
    library_id: FromPath[LibraryId],
    data: Annotated[
        EnrolmentUpload,
        Body(
            media_type=RequestEncodingType.MULTI_PART,
            description="multipart/form-data: repeat ``files`` per image; give each fact once or per file",
            examples=[
                Example(
                    summary="two images of one capture date",
                    value={
                        "files": ["<image 1>", "<image 2>"],
                        "capture_date": ["2022-05-01"],
                        "age_band": ["18_plus"],
                        "mopi_group": ["2"],
                        "subject": ["CRO 123456/22", "CRO 654321/21"],
                    },
                )
            ],
        ),
    ],
) -> EnrolmentReportView:
    """Every file is checked first (415 type, 413 pixels or a video's size, duration or frame
    size, 422 damaged: nothing enrolled); then each image is enrolled or reported with why not
    (R-01, no face, several faces, duplicate); of a video, the best face of its one subject is
    enrolled, from its frame (ADR 0026). Enrolled images are searchable at once; cached probes
    relevant to the library are re-searched (U-02)."""
    items = _items(data, enrolment)
    return EnrolmentReportView.of(enrolment.enrol(principal.user_id, str(library_id), items))


@post(
    "/libraries/{library_id:uuid}/imports",
    sync_to_thread=True,
    status_code=202,
    summary="Enrol a server folder (background job)",
    responses={
        422: problem_spec(
            "The folder or manifest does not exist or cannot be read, or bulk enrolment is not enabled"
        )
    },
    **allow(*ENROLLERS.roles),
)
def start_import(
    *,
    principal: Caller,
    libraries: NamedDependency[ReferenceLibraries],
    enrolment: NamedDependency[Enrolment],
    import_jobs: NamedDependency[ImportJobs],
    runner: NamedDependency[ImportJobRunner],
    library_id: FromPath[LibraryId],
    data: Annotated[
        ImportBody,
        Body(
            description=(
                f"The manifest is CSV with the columns {', '.join(MANIFEST_COLUMNS)} and optionally subject; "
                "file names are relative to the folder."
            ),
            examples=[
                Example(value={"folder": "custody-2024", "manifest": "manifest.csv", "batch_size": 25})
            ],
        ),
    ],
) -> ImportJobView:
    """Starts the job and answers 202 with it; poll ``GET .../imports/{job_id}`` for progress and,
    when finished, each row's outcome."""
    folder, manifest = _import_paths(enrolment, data)
    libraries.get(principal.user_id, library_id)  # an unknown library is a 404 now, not a failed job
    return runner.start(
        import_jobs,
        acting_user=principal.user_id,
        library_id=str(library_id),
        folder=str(folder),
        manifest=data.manifest,
        batch_size=data.batch_size,
        work=lambda progress: enrolment.enrol_folder(
            principal.user_id,
            str(library_id),
            folder,
            manifest=manifest,
            batch_size=data.batch_size,
            progress=progress,
        ),
    )


@get(
    "/libraries/{library_id:uuid}/imports/{job_id:str}",
    sync_to_thread=True,
    summary="Poll a bulk enrolment job",
    **allow(*ENROLLERS.roles),
)
def get_import(
    import_jobs: NamedDependency[ImportJobs],
    library_id: FromPath[LibraryId],
    job_id: Annotated[str, PathParameter(description="the job's id")],
) -> ImportJobView:
    """Status (queued, running, finished, failed), rows done of total, and when finished each row's
    outcome. Jobs are stored: any server process answers, before and after a restart. A job whose
    server process stopped before it ended has failed, with the error kind ``interrupted``."""
    job = import_jobs.get(job_id, library_id=str(library_id))
    if job is None:
        raise NotFoundException(f"no import job {job_id} of library {library_id}")
    return job


# -- helpers --------------------------------------------------------------------------------


def _items(data: EnrolmentUpload, enrolment: Enrolment) -> list[EnrolmentItem]:
    count = len(data.files)
    if not 1 <= count <= MAX_UPLOAD_FILES:
        raise invalid("files", f"give 1 to {MAX_UPLOAD_FILES} files")
    today = enrolment.clock.now().date()
    dates = _per_file(data.capture_date, count, "capture_date", lambda text: _date(text, today))
    ages = _per_file(data.age_band, count, "age_band", _age)
    groups = _per_file(data.mopi_group, count, "mopi_group", _mopi)
    subjects = _per_file(data.subject, count, "subject", _subject) if data.subject else [None] * count
    payloads = []
    for n, upload in enumerate(data.files):
        name = upload.filename or f"file {n + 1}"
        video = is_video(upload, f"files[{n}] ({name})")
        payload = upload.file.read() if video else image_bytes(upload, f"files[{n}] ({name})")
        try:
            _check_upload(enrolment, payload, video)
        except ImageRejected as e:
            raise ImageRejected(f"files[{n}] ({name}): {e.reason}", e.code) from None
        payloads.append((name, payload, video))
    return [
        EnrolmentItem(payload, captured, age, group, subject or None, name, video)
        for (name, payload, video), captured, age, group, subject in zip(
            payloads, dates, ages, groups, subjects, strict=True
        )
    ]


def _check_upload(enrolment: Enrolment, payload: bytes, video: bool) -> None:
    """An image decoded, or a short video's size, container, frame size and duration checked
    (no frame decoded: that is enrolment's work), so a bad file refuses the request (413/415/422)."""
    if not video:
        enrolment.bio.decode(payload)
        return
    sampler = enrolment.bio.video
    if sampler is None:
        raise ImageRejected("this deployment takes still images only, not video", "unsupported_type")
    with sampler.open(payload):
        pass


def _per_file(values: list[str], count: int, name: str, parse: Callable[[str], V]) -> list[V]:
    if len(values) > MAX_UPLOAD_FILES:
        raise invalid(name, f"at most {MAX_UPLOAD_FILES} values")
    if len(values) not in (1, count):
        # A count the schema cannot state (it depends on the files): 422, not 400.
        raise unprocessable(name, f"give one {name} for every file, or one per file ({count})")
    parsed = []
    for n, value in enumerate(values):
        try:
            parsed.append(parse(value))
        except OutOfRange as e:
            raise unprocessable(f"{name}[{n}]", str(e)) from None
        except ValueError as e:
            raise invalid(f"{name}[{n}]", str(e)) from None
    return parsed * count if len(parsed) == 1 else parsed


def _date(text: str, today: date) -> date:
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(f"{text[:20]!r} is not a date (YYYY-MM-DD)")
    try:
        captured = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None
    # A day's slack: the uploader's calendar may be ahead of the server's clock.
    if not EARLIEST_CAPTURE <= captured <= today + timedelta(days=1):
        raise OutOfRange(f"{captured} is not a possible capture date (from {EARLIEST_CAPTURE} to today)")
    return captured


class OutOfRange(ValueError):
    """A value of the right form that cannot be so (a date to come): 422, not 400."""


def _subject(text: str) -> str:
    if len(text) > MAX_SUBJECT:
        raise ValueError(f"at most {MAX_SUBJECT} characters")
    return text.strip()


def _age(text: str) -> PerceivedAgeBand:
    try:
        return PerceivedAgeBand(text)
    except ValueError:
        raise ValueError(f"must be one of {', '.join(b.value for b in PerceivedAgeBand)}") from None


def _mopi(text: str) -> MopiGroup:
    if text not in ("1", "2", "3"):
        raise ValueError("must be 1, 2 or 3")
    return MopiGroup(int(text))


def _import_paths(enrolment: Enrolment, data: ImportBody) -> tuple[Path, str]:
    """The folder and manifest, checked before a job starts (the enrolment checks them again)."""
    root = enrolment.bio.import_root
    if root is None:
        raise unprocessable("folder", "bulk enrolment from server folders is not enabled (RFR_IMPORT_ROOT)")
    root = Path(root).resolve()
    try:
        folder = (root / data.folder).resolve()
        found = folder.is_relative_to(root) and folder.is_dir()
    except (OSError, ValueError):  # a NUL byte, a name too long: no such folder either
        found = False
    if not found:
        raise unprocessable("folder", "no such folder inside the import root")
    try:
        manifest = (folder / data.manifest).resolve()
        found = manifest.is_relative_to(folder) and manifest.is_file()
    except (OSError, ValueError):
        found = False
    if not found:
        raise unprocessable("manifest", "no such manifest file in the folder")
    return folder, str(manifest.relative_to(folder))


ROUTES = [
    Router(
        path="/",
        route_handlers=[
            create_library,
            list_libraries,
            get_library,
            library_images,
            enrol_images,
            start_import,
            get_import,
        ],
        dependencies={
            "libraries": use_case(_libraries),
            "enrolment": use_case(_enrolment),
            "import_jobs": use_case(_import_jobs),
            "runner": use_case(_runner),
        },
        tags=["libraries"],
    )
]
