"""Every error leaves the API as an RFC 9457 problem (``application/problem+json``).

Members: ``type`` (a relative URI, ``/problems/<slug>``, served by the API itself and
listed in ``PROBLEM_TYPES``), ``title`` (fixed per type), ``status``, ``detail`` (this
occurrence, written for the caller), ``instance`` (the request path), plus extensions:

| error | status | type | extensions |
|---|---|---|---|
| request validation (body, query, path) | 400 | validation | ``errors``: [{field, source, message}] |
| ``Unprocessable``: well formed, names what the server lacks | 422 | unprocessable | ``errors`` |
| no, bad, expired or revoked token | 401 | unauthenticated | (and ``WWW-Authenticate: Bearer``) |
| role not held, user disabled (A-05) | 403 | forbidden | ``rule_ids``, ``recorded`` |
| ``PolicyRefusal`` from the domain | 403 | policy-refusal | ``rule_ids``, ``reason``, ``recorded`` |
| unknown resource or route | 404 | not-found | |
| wrong method | 405 | method-not-allowed | |
| ``ConcurrentModification`` | 409 | conflict | |
| body over ``RFR_MAX_REQUEST_BYTES``, announced or streamed | 413 | request-too-large | ``max_bytes`` |
| multipart body of more than 1,000 parts | 413 | request-too-large | ``max_parts`` |
| body not of the route's media type (JSON or multipart) | 415 | unsupported-media-type | |
| ``ImageRejected`` | its code's status | image-rejected | ``code`` |
| ``Busy``: image work at capacity (``heavy_work``) | 503 | busy | ``retry_after`` (and ``Retry-After``) |
| anything unexpected | 500 | internal | ``incident`` (also in the server log) |

Bodies and query parameters are read strictly, and JSON nested at most 64 deep
(``strict_input``): a violation is a validation problem naming the field.

A validation error's ``field`` is the full path of the field, down to a missing or unknown
one (``record.access``, ``libraries[0].library_id``), for every route.

Why each status: docs/adr/0008-http-api-auth-and-errors.md. A 500 never carries the
exception's text: it is logged with the incident id the caller can quote.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from uuid import uuid4

import attrs
from eventsourcing.application import AggregateNotFoundError
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from rfr.application.app import ConcurrentModification
from rfr.application.errors import (
    IMAGE_REJECTION_HTTP_STATUS,
    AccessDenied,
    AlreadyBootstrapped,
    ImageRejected,
    NotFound,
    RecordNotFound,
    UnknownUser,
)
from rfr.application.heavy_work import Busy
from rfr.application.services.access import AuthenticationFailed
from rfr.application.services.enrolment import ManifestError
from rfr.domain.decisions import PolicyRefusal

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("rfr.http")


@attrs.frozen
class ProblemType:
    slug: str
    title: str
    status: int
    meaning: str

    @property
    def uri(self) -> str:
        return f"/problems/{self.slug}"


PROBLEM_TYPES: dict[str, ProblemType] = {
    p.slug: p
    for p in (
        ProblemType(
            "validation", "The request is invalid", 400, "A field is missing or invalid; see errors."
        ),
        ProblemType(
            "unauthenticated", "Authentication required", 401, "No usable bearer token was presented."
        ),
        ProblemType(
            "forbidden",
            "Access refused",
            403,
            "The user does not hold a role this route allows, or is disabled (A-05). The refusal is "
            "recorded in the audit trail.",
        ),
        ProblemType(
            "policy-refusal",
            "Refused by policy",
            403,
            "A policy rule refused the command; rule_ids name the rules and reason says why. The "
            "refusal is recorded in the audit trail (A-01).",
        ),
        ProblemType("not-found", "Not found", 404, "No such resource."),
        ProblemType("method-not-allowed", "Method not allowed", 405, "Not a method of this resource."),
        ProblemType(
            "conflict",
            "Conflicting change",
            409,
            "Someone changed the same record first, or the resource already exists. Reload and decide again.",
        ),
        ProblemType(
            "request-too-large",
            "Request too large",
            413,
            "The body is over the configured limit (max_bytes), or a multipart body has too many "
            "parts (max_parts).",
        ),
        ProblemType(
            "unsupported-media-type",
            "Unsupported media type",
            415,
            "The body is not of the media type the route reads: application/json, or "
            "multipart/form-data for uploads.",
        ),
        ProblemType(
            "unprocessable",
            "The request cannot be carried out",
            422,
            "The request is well formed but names something this server does not have or cannot use "
            "(a folder or manifest for bulk enrolment, or bulk enrolment is not enabled); errors names "
            "the field.",
        ),
        ProblemType(
            "image-rejected",
            "Image rejected",
            422,
            "The image cannot be used (status 415 for an unsupported type, 413 for too many pixels, "
            "422 otherwise); code says why.",
        ),
        ProblemType(
            "busy",
            "Busy",
            503,
            "Image work (decoding, detection, templating) is at capacity, or the caller already has "
            "their share of it in progress; nothing was done. Try again after Retry-After seconds.",
        ),
        ProblemType("http-error", "HTTP error", 400, "Another HTTP-level error; status says which."),
        ProblemType(
            "internal",
            "Internal error",
            500,
            "Unexpected failure; quote the incident id.",
        ),
    )
}

_BY_STATUS = {
    400: "validation",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "request-too-large",
    415: "unsupported-media-type",
}


def problem(
    request: Request[Any, Any, Any],
    slug: str,
    detail: str,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response[dict[str, Any]]:
    kind = PROBLEM_TYPES[slug]
    body: dict[str, Any] = {
        "type": kind.uri,
        "title": kind.title,
        "status": status or kind.status,
        "detail": detail,
        "instance": request.url.path,
    }
    body.update(extensions)
    return Response(
        body, status_code=status or kind.status, media_type=PROBLEM_JSON, headers=dict(headers or {})
    )


class Unprocessable(ValidationException):
    """A well-formed request naming something the server does not have (``errors`` as for 400)."""

    status_code = 422


def _validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[dict[str, Any]]:
    errors = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, Mapping):
            errors.append(
                {"field": _field_path(item), "source": item.get("source"), "message": item.get("message")}
            )
    named = sorted({str(e["field"]) for e in errors if e["field"]})
    detail = f"invalid {', '.join(named)}" if named else (exc.detail or "the request is invalid")
    slug = "unprocessable" if isinstance(exc, Unprocessable) else "validation"
    return problem(request, slug, detail, errors=errors)


def _field_path(item: Mapping[str, Any]) -> Any:
    """The path of the field an error is about, down to a missing or unknown field itself.

    Litestar reports ``{"inner": {}}`` missing ``x`` under the key ``inner`` (``data`` at the
    top) and names ``x`` only in the message; the caller should read ``inner.x``.
    """
    key = item.get("key")
    if item.get("source") != "body":
        return key
    message = str(item.get("message") or "")
    for marker in ("missing required field `", "unknown field `"):
        if marker in message:
            named = message.split(marker, 1)[1].split("`", 1)[0]
            parent = str(key or "")
            return named if parent in ("", "data", "body") else f"{parent}.{named}"
    return key


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if isinstance(exc, ValidationException):
        return _validation(request, exc)
    if exc.status_code >= 500:
        return _internal(request, exc)
    if _too_many_parts(exc):
        limit = request.app.multipart_form_part_limit
        return problem(
            request, "request-too-large", f"more than {limit} parts in the multipart body", max_parts=limit
        )
    slug = _BY_STATUS.get(exc.status_code, "http-error")
    extensions: dict[str, Any] = {}
    if exc.status_code == 413:
        handler = request.scope.get("route_handler")
        limit = handler.resolve_request_max_body_size() if handler is not None else None
        if limit:
            extensions["max_bytes"] = limit
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem(request, slug, exc.detail, status=exc.status_code, headers=headers, **extensions)


def _too_many_parts(exc: HTTPException) -> bool:
    # Litestar's multipart parser answers its part limit with a 400 (a 413 from its 3.0 on).
    return exc.status_code == 400 and exc.detail == "Request Entity Too Large" and _raised_in_parser(exc)


def _raised_in_parser(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code.co_filename.endswith(_MULTIPART_PARSER)


def _policy_refusal(request: Request[Any, Any, Any], exc: PolicyRefusal) -> Response[dict[str, Any]]:
    # The use case saved the refusal before re-raising it; the domain guarantees the reason.
    return problem(
        request,
        "policy-refusal",
        f"refused by {', '.join(exc.rule_ids)}: {exc.reason}",
        rule_ids=list(exc.rule_ids),
        reason=exc.reason,
        recorded=True,
    )


def _access_denied(request: Request[Any, Any, Any], exc: AccessDenied) -> Response[dict[str, Any]]:
    return problem(
        request,
        "forbidden",
        exc.reason,
        rule_ids=list(exc.rule_ids),
        recorded=exc.recorded,
    )


def _unauthenticated(request: Request[Any, Any, Any], exc: AuthenticationFailed) -> Response[dict[str, Any]]:
    return problem(
        request, "unauthenticated", str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


def _not_found(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    # Acting users are authenticated before any use case runs, so an unknown user here is
    # always the subject of the request, not the caller. A biometric record erased or
    # never written is, for the caller, like any missing resource.
    detail = str(exc) if isinstance(exc, NotFound | UnknownUser | RecordNotFound) else "no such resource"
    return problem(request, "not-found", detail)


def _manifest_refused(request: Request[Any, Any, Any], exc: ManifestError) -> Response[dict[str, Any]]:
    return problem(
        request,
        "unprocessable",
        str(exc),
        errors=[{"field": "manifest", "source": "body", "message": str(exc)}],
    )


def _conflict(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    if isinstance(exc, ConcurrentModification):
        detail = "another request changed this record first; reload it and decide again"
    else:
        detail = str(exc)
    return problem(request, "conflict", detail)


def _image_rejected(request: Request[Any, Any, Any], exc: ImageRejected) -> Response[dict[str, Any]]:
    return problem(
        request, "image-rejected", exc.reason, status=IMAGE_REJECTION_HTTP_STATUS[exc.code], code=exc.code
    )


def _busy(request: Request[Any, Any, Any], exc: Busy) -> Response[dict[str, Any]]:
    return problem(
        request,
        "busy",
        exc.reason,
        headers={"Retry-After": str(exc.retry_after)},
        retry_after=exc.retry_after,
    )


def _undecodable_form_field(
    request: Request[Any, Any, Any], exc: UnicodeDecodeError
) -> Response[dict[str, Any]]:
    # Litestar decodes each multipart part sent without a filename as UTF-8 text and lets the
    # error escape: the caller's bytes, not a server fault. Raised anywhere else, it is ours.
    field = _multipart_field(exc)
    if field is None:
        return _internal(request, exc)
    message = "not UTF-8 text (send a file part with a filename)"
    return problem(
        request,
        "validation",
        f"invalid {field or 'form field'}",
        errors=[{"field": field, "source": "body", "message": message}],
    )


def _multipart_field(exc: BaseException) -> str | None:
    """The form field whose bytes Litestar's multipart parser failed to decode; None: raised elsewhere."""
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_filename.endswith(_MULTIPART_PARSER) and tb.tb_next is None:
            segment = frame.f_locals.get("segment")
            return str(getattr(segment, "name", "") or "")
        tb = tb.tb_next
    return None


_MULTIPART_PARSER = "litestar/_multipart.py"


def _internal(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    incident = str(uuid4())
    log.error(
        "incident %s: %s %s failed",
        incident,
        request.method,
        request.url.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    return problem(
        request,
        "internal",
        "the server failed to handle this request; nothing about the failure is shown here",
        incident=incident,
    )


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    HTTPException: _http,
    PolicyRefusal: _policy_refusal,
    AccessDenied: _access_denied,
    AuthenticationFailed: _unauthenticated,
    NotFound: _not_found,
    UnknownUser: _not_found,
    AggregateNotFoundError: _not_found,
    ConcurrentModification: _conflict,
    AlreadyBootstrapped: _conflict,
    ImageRejected: _image_rejected,
    Busy: _busy,
    RecordNotFound: _not_found,
    ManifestError: _manifest_refused,
    UnicodeDecodeError: _undecodable_form_field,
    Exception: _internal,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "PROBLEM_TYPES", "ProblemType", "problem"]
