"""What the workflow resources share: request types, domain values from bodies, uploads.

Bodies are msgspec structs named like the domain values they carry, so a validated body
becomes a domain value through ``codec.from_data`` with no field copied by hand. Where the
policy judges a text (a rationale, a part of Form 1/2/3), the body accepts it empty: the
domain refuses an empty one under its own rule and records the refusal (A-01), which a
400 from the schema would not. Plain reasons must not be empty.
"""

from __future__ import annotations

import inspect
import json
from datetime import datetime
from typing import Annotated, Any, TypeVar, get_type_hints
from uuid import UUID

import msgspec
from litestar.datastructures import UploadFile
from litestar.di import Dependency
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter

from rfr.application.errors import ImageRejected
from rfr.domain.codec import from_data
from rfr.domain.search_terms import UrgencyBasis
from rfr.entrypoints.http.access_control import route_access
from rfr.entrypoints.http.problems import PROBLEM_JSON
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

# Paging cursors are notification ids, SQLite INTEGERs: a larger one cannot exist (and the store
# would fail on it rather than answer an empty page).
MAX_CURSOR = 2**63 - 1
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


class FieldError(msgspec.Struct, kw_only=True):
    """One invalid input of a validation problem.

    Attributes:
        field: The input's full path, down to a missing or unknown field (``record.access``,
            ``libraries[0].library_id``).
        source: Where the input is: ``body``, ``query``, ``path`` or ``header``.
        message: What is wrong with it.
    """

    field: str | None = None
    source: str | None = None
    message: str | None = None


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem (``application/problem+json``); each type's extensions are listed at
    ``/problems``: ``rule_ids``/``reason``/``recorded`` for refusals, ``errors`` for validation,
    ``code`` for image rejections, ``max_bytes`` or ``max_parts`` for 413, ``incident`` for 500.

    Attributes:
        type: The problem type, a relative URI (``/problems/<slug>``) the API describes itself.
        title: The type's fixed, short title.
        status: The HTTP status code, repeated.
        detail: What went wrong this time, written for the caller.
        instance: The path of the request that failed.
        rule_ids: The policy rules that refused the command (403), e.g. ``["L-13"]``.
        reason: Why the policy refused it (403 ``policy-refusal``).
        recorded: Whether the refusal is recorded in the audit trail (A-01).
        errors: Each invalid input of a validation problem (400).
        code: Why an image was rejected, e.g. ``unsupported_type``, ``undecodable``,
            ``too_many_pixels``.
        max_bytes: The body size limit, in bytes (413).
        max_parts: The limit on the parts of a multipart body (413).
        retry_after: Seconds to wait before trying image work again (503, also ``Retry-After``).
        incident: The id of an unexpected failure (500), to quote to the operators: the server
            log holds the details under it.
    """

    type: str
    title: str
    status: int
    detail: str
    instance: str
    rule_ids: list[str] | None = None
    reason: str | None = None
    recorded: bool | None = None
    errors: list[FieldError] | None = None
    code: str | None = None
    max_bytes: int | None = None
    max_parts: int | None = None
    retry_after: int | None = None
    incident: str | None = None


def _problem_spec(description: str) -> ResponseSpec:
    return ResponseSpec(Problem, generate_examples=False, description=description, media_type=PROBLEM_JSON)


PROBLEM_RESPONSES: dict[int, ResponseSpec] = {
    400: _problem_spec("A field is missing or invalid; ``errors`` names each one"),
    401: _problem_spec("No usable bearer token"),
    403: _problem_spec(
        "The caller's role does not allow the route (A-05), or a policy rule refused the command "
        "(``rule_ids``); either way the refusal is recorded"
    ),
    404: _problem_spec("No such resource"),
    409: _problem_spec("Someone changed the same record first, or the request is already done"),
}
UPLOAD_RESPONSES: dict[int, ResponseSpec] = {
    **PROBLEM_RESPONSES,
    413: _problem_spec("The body is over the size limit, or the image has too many pixels"),
    415: _problem_spec("Not a JPEG, PNG or WebP image"),
    422: _problem_spec("The image cannot be decoded (damaged, truncated or empty)"),
    503: _problem_spec("Image work is at capacity, or the caller has their share in progress: retry later"),
}


def documented(
    handlers: list[HTTPRouteHandler],
    *,
    uploads: tuple[HTTPRouteHandler, ...] = (),
    only_applicable: bool = False,
) -> list[Any]:
    """``handlers`` with their problem responses in OpenAPI (set here once, not on each decorator).

    Every problem status by default; with ``only_applicable``, those ``applicable_problems`` finds.
    """
    for handler in handlers:
        if handler in uploads:
            extra = UPLOAD_RESPONSES
        elif only_applicable:
            extra = applicable_problems(handler)
        else:
            extra = PROBLEM_RESPONSES
        handler.responses = {**extra, **(handler.responses or {})}
    return list(handlers)


# Parameters Litestar fills from the connection itself: never the caller's input.
_RESERVED_KWARGS = frozenset({"state", "request", "scope", "headers", "cookies", "query", "body"})
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def applicable_problems(handler: HTTPRouteHandler) -> dict[int, ResponseSpec]:
    """The problems ``handler`` can answer with, read from what it declares.

    400 when it takes a body or any parameter (Litestar documents its own, wrong, 400 body for
    those otherwise); 401 and 403 when it is guarded; 404 when its path names a resource; 409
    when a guarded command may collide with another writer.
    """
    hints = get_type_hints(handler.fn, include_extras=True)
    inputs = [
        name
        for name in inspect.signature(handler.fn).parameters
        if name not in _RESERVED_KWARGS
        and not any(isinstance(m, Dependency) for m in getattr(hints.get(name), "__metadata__", ()))
    ]
    guarded = not route_access(handler).public
    statuses = set()
    if inputs:
        statuses.add(400)
    if guarded:
        statuses |= {401, 403}
    if any("{" in path for path in handler.paths):
        statuses.add(404)
    if guarded and handler.http_methods & _UNSAFE_METHODS:
        statuses.add(409)
    return {status: PROBLEM_RESPONSES[status] for status in sorted(statuses)}


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


def image_bytes(upload: UploadFile, field: str) -> bytes:
    """An uploaded image's bytes; a part declared as a non-image type is refused (415) unread."""
    declared = (upload.content_type or "").split(";")[0].strip().lower()
    if declared not in IMAGE_PART_TYPES:
        raise ImageRejected(
            f"{field}: {declared!r} is not an accepted image type (JPEG, PNG or WebP)", "unsupported_type"
        )
    return upload.file.read()


def decode_json_part(text: str, kind: type[T], field: str) -> T:
    """A JSON form part decoded strictly into ``kind`` (nested at most ``MAX_JSON_DEPTH`` deep);
    errors name ``field.<path>`` like body errors do."""
    return decode_json(text.encode(), kind, field)


def example_json(value: Any) -> str:
    return json.dumps(value, indent=None)
