"""The problems each operation documents, read from what its route declares (issue 8).

An operation documents every status it can answer with, each with the ``Problem`` body that
``problems`` sends; ``problem_responses`` derives them once for every route of the app
(``openapi_contract.document_operations`` calls it), so no resource lists them by hand:

| status | when |
|---|---|
| 400 | the route takes a body or a parameter |
| 401, 403 | the route is not public |
| 404 | its path names a resource, or its body or query a record by id |
| 409 | a guarded route that changes something (another writer may come first) |
| 413 | the route takes a body, or its method may carry one |
| 415 | the route takes a body (of one media type) |
| 422, 503 | the route takes an image (multipart): unusable, or image work at capacity |
| 500 | every route: an unexpected failure, with an incident id |

A route that can answer something else declares it in its own ``responses`` (``IMAGE_WORK_BUSY``
for image work on a JSON route, 422 for a folder that does not exist), which wins over these.
A body sent to a route that reads none is still held to the size limit (413); the GETs do not
document that, as no client sends one.
"""

from __future__ import annotations

import msgspec
import msgspec.inspect as mi
from litestar.enums import RequestEncodingType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from rfr.entrypoints.http.access_control import route_access
from rfr.entrypoints.http.problems import PROBLEM_JSON


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


def problem_spec(description: str) -> ResponseSpec:
    """A response of ``Problem`` bodies, described for the route."""
    return ResponseSpec(Problem, generate_examples=False, description=description, media_type=PROBLEM_JSON)


PROBLEMS: dict[int, ResponseSpec] = {
    400: problem_spec("A field is missing or invalid; ``errors`` names each one"),
    401: problem_spec("No usable bearer token"),
    403: problem_spec(
        "The caller's role does not allow the route (A-05), or a policy rule refused the command "
        "(``rule_ids``); either way the refusal is recorded"
    ),
    404: problem_spec("No such resource"),
    409: problem_spec("Someone changed the same record first, or the request is already done"),
    413: problem_spec(
        "The body is over the size limit (``max_bytes``) or has too many parts (``max_parts``)"
    ),
    415: problem_spec("The body is not of the media type this route reads"),
    500: problem_spec("An unexpected failure; quote ``incident`` to the operators"),
}
IMAGE_WORK_BUSY = {
    503: problem_spec("Image work is at capacity, or the caller has their share in progress: retry later")
}
IMAGE_PROBLEMS: dict[int, ResponseSpec] = {
    413: problem_spec("The body is over the size limit, or the image has too many pixels"),
    415: problem_spec("Not a JPEG, PNG or WebP image, or not a multipart/form-data body"),
    422: problem_spec("The image cannot be decoded (damaged, truncated or empty)"),
    **IMAGE_WORK_BUSY,
}

# Parameters Litestar fills from the connection itself: never the caller's input.
_RESERVED_KWARGS = frozenset({"state", "request", "scope", "headers", "cookies", "query", "body"})
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _takes_input(handler: HTTPRouteHandler) -> bool:
    """Whether the caller gives ``handler`` anything: a body, a path, query or header parameter."""
    dependencies = handler.resolve_dependencies()
    return any(
        name not in _RESERVED_KWARGS and name not in dependencies and not field.is_di_field
        for name, field in handler.parsed_fn_signature.parameters.items()
    )


def _names_a_record(handler: HTTPRouteHandler) -> bool:
    """Whether the body or a query parameter names a record by its id (which may not exist)."""
    dependencies = handler.resolve_dependencies()
    return any(
        _holds_an_id(mi.type_info(field.annotation), set())
        for name, field in handler.parsed_fn_signature.parameters.items()
        if name not in _RESERVED_KWARGS and name not in dependencies and not field.is_di_field
    )


def _holds_an_id(t: mi.Type, seen: set[type]) -> bool:
    """Whether ``t`` holds a UUID: records are named by UUIDs (users by their names, which a
    route that reads one takes in its path)."""
    if isinstance(t, mi.UUIDType):
        return True
    if isinstance(t, mi.StructType | mi.DataclassType):
        if t.cls in seen:
            return False
        seen.add(t.cls)
        return any(_holds_an_id(f.type, seen) for f in t.fields)
    if isinstance(t, mi.UnionType):
        return any(_holds_an_id(member, seen) for member in t.types)
    if isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
        return _holds_an_id(t.item_type, seen)
    return False


def _body_media_type(handler: HTTPRouteHandler) -> str | None:
    field = handler.parsed_fn_signature.parameters.get("data")
    if field is None:
        return None
    media_type = getattr(field.kwarg_definition, "media_type", RequestEncodingType.JSON)
    return str(getattr(media_type, "value", media_type))


def problem_responses(handler: HTTPRouteHandler) -> dict[int, ResponseSpec]:
    """Every problem ``handler`` can answer with (see the module docstring)."""
    guarded = not route_access(handler).public
    unsafe = bool(handler.http_methods & _UNSAFE_METHODS)
    body = _body_media_type(handler)
    statuses = {500}
    if _takes_input(handler):
        statuses.add(400)
    if guarded:
        statuses |= {401, 403}
    if any("{" in path for path in handler.paths) or _names_a_record(handler):
        statuses.add(404)
    if guarded and unsafe:
        statuses.add(409)
    if body is not None or unsafe:
        statuses.add(413)
    if body is not None:
        statuses.add(415)
    found = {status: PROBLEMS[status] for status in sorted(statuses)}
    if body == RequestEncodingType.MULTI_PART:
        found.update(IMAGE_PROBLEMS)
    return dict(sorted(found.items()))


def document_problems(handler: HTTPRouteHandler) -> None:
    """Adds ``handler``'s problems to its OpenAPI responses; what it declares itself wins."""
    handler.responses = {**problem_responses(handler), **(handler.responses or {})}
