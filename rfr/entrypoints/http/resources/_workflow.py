"""What the workflow resources share: request types, domain values from bodies, uploads.

Bodies are msgspec structs named like the domain values they carry, so a validated body
becomes a domain value through ``codec.from_data`` with no field copied by hand. Where the
policy judges a text (a rationale, a part of Form 1/2/3), the body accepts it empty: the
domain refuses an empty one under its own rule and records the refusal (A-01), which a
400 from the schema would not. Plain reasons must not be empty.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, TypeVar
from uuid import UUID

import msgspec
from litestar.datastructures import UploadFile
from litestar.exceptions import ValidationException
from litestar.params import QueryParameter

from rfr.application.errors import ImageRejected
from rfr.domain.codec import from_data
from rfr.domain.search_terms import UrgencyBasis
from rfr.entrypoints.http.problems import Unprocessable
from rfr.entrypoints.http.strict_input import decode_json

T = TypeVar("T")

# Judged by the policy (may be empty; the domain names what is missing).
Statement = Annotated[str, msgspec.Meta(max_length=8000)]
# A reason for an action: required.
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
# Lists are bounded by what they can mean (issue 8): a few of a closed set of choices, or a team's
# members; a longer list is refused before anything is recorded.
Choices = msgspec.Meta(max_length=20)  # values of one enum (purposes, grounds, roles, checks tried)
Names = Annotated[list[Name], msgspec.Meta(max_length=500)]  # teams or named users
AwareDateTime = Annotated[
    datetime, msgspec.Meta(tz=True, description="ISO 8601 with a time zone, e.g. 2026-06-30T17:00:00Z")
]

# Paging cursors are notification ids: integers a JSON number holds exactly (I-JSON, RFC 7493),
# which no store will reach; a larger one is refused before the store sees it (SQLite's INTEGER
# stops at 2**63 - 1, and a client's JSON parser may round above 2**53).
MAX_CURSOR = 2**53 - 1
Cursor = Annotated[int, QueryParameter(ge=0, le=MAX_CURSOR, description="next_after of the previous page")]
PageSize = Annotated[int, QueryParameter(ge=1, le=500, description="items per page")]

# Declared part types accepted for an image; the bytes are checked by the decoder regardless.
IMAGE_PART_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "application/octet-stream", ""})


class UrgencyBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Urgency (policy 3.1) with its rationale; ``search_all`` asks to skip the progressive order (S-02).

    Attributes:
        basis: Which limb of the policy's definition of Urgency (3.1) applies: a risk to life
            or of harm, or an opportunity that would be lost.
        rationale: Why the matter is urgent, in the requester's words; judged by the policy.
        search_all: Search every requested library at once instead of in progressive order
            (S-02, 5.17); only with a stated urgency.
    """

    basis: UrgencyBasis
    rationale: Statement
    search_all: bool = False


class ReasonBody(msgspec.Struct, forbid_unknown_fields=True):
    """Why the caller takes the action.

    Attributes:
        reason: Why, in the caller's words; recorded with the action in the audit trail.
    """

    reason: Reason


class RationaleBody(msgspec.Struct, forbid_unknown_fields=True):
    """The rationale of a decision, which the policy requires.

    Attributes:
        rationale: The reasons for the decision, in the decider's words; an empty one is
            refused by the policy rule that requires it, and the refusal recorded.
    """

    rationale: Statement


def domain_value(kind: type[T], body: msgspec.Struct | None) -> T | None:
    """The domain value ``kind`` carried by a validated body whose fields are named like it."""
    if body is None:
        return None
    return from_data(kind, msgspec.to_builtins(body, builtin_types=(datetime, UUID)))


# Dates the policy arithmetic may add years or days to: far enough for any review or expiry,
# near enough that adding never leaves the calendar (year 9999 + a grace period would fail).
LATEST_YEAR = 2999


def plausible(field: str, moment: datetime | None) -> datetime | None:
    """``moment`` unchanged, or a 400 naming ``field`` when it is beyond ``LATEST_YEAR``."""
    if moment is not None and moment.year > LATEST_YEAR:
        raise invalid(field, f"must be before the year {LATEST_YEAR + 1}")
    return moment


def invalid(field: str, message: str, *, source: str = "body") -> ValidationException:
    """A 400 naming ``field``, like the schema's own validation errors."""
    return ValidationException(message, extra=[{"key": field, "source": source, "message": message}])


def unprocessable(field: str, message: str, *, source: str = "body") -> Unprocessable:
    """A 422 naming ``field``: the request keeps to the schema, but the server cannot carry it out.

    The line between 400 and 422: what the published schema states (types, limits, required
    fields, a rule between fields that JSON Schema can write) is a 400; what it cannot state (an
    order between two values, a box inside an image only the server holds, a folder that must
    exist) is a 422, so a request the schema accepts is never a 400.
    """
    return Unprocessable(message, extra=[{"key": field, "source": source, "message": message}])


# Declared part types of a short video (ADR 0026); its bytes are sniffed and decoded regardless.
VIDEO_PART_TYPES = frozenset({"video/mp4", "video/webm", "video/x-msvideo"})


def declared_type(upload: UploadFile) -> str:
    """The type a file part declares, lower case without parameters; "" when it declares none."""
    sent = {name.lower() for name in upload.headers}
    return (upload.content_type or "").split(";")[0].strip().lower() if "content-type" in sent else ""


def is_video(upload: UploadFile, field: str) -> bool:
    """Whether a file part is a short video: declared ``video/*``; another video type than MP4,
    WebM or AVI is refused (415) unread."""
    declared = declared_type(upload)
    if not declared.startswith("video/"):
        return False
    if declared not in VIDEO_PART_TYPES:
        raise ImageRejected(
            f"{field}: {declared!r} is not an accepted video type (MP4, WebM or AVI)", "unsupported_type"
        )
    return True


def image_bytes(upload: UploadFile, field: str) -> bytes:
    """An uploaded image's bytes; a part declared as a non-image type is refused (415) unread.

    A file part that declares no type is read as an image (Litestar calls it ``text/plain``,
    RFC 7578's default for text fields, but a part with a filename is a file).
    """
    sent = {name.lower() for name in upload.headers}
    declared = (upload.content_type or "").split(";")[0].strip().lower() if "content-type" in sent else ""
    if declared not in IMAGE_PART_TYPES:
        raise ImageRejected(
            f"{field}: {declared!r} is not an accepted image type (JPEG, PNG or WebP)", "unsupported_type"
        )
    return upload.file.read()


def decode_json_part(text: str, kind: type[T], field: str) -> T:
    """A JSON form part decoded strictly into ``kind`` (nested at most ``MAX_JSON_DEPTH`` deep);
    errors name ``field.<path>`` like body errors do."""
    return decode_json(text.encode(), kind, field)
