"""What the API takes from a request, checked strictly before Litestar reads it (issue 8).

``screen_request`` is the application's ``before_request`` hook: it runs after the access
guard and before any parameter or body is read, on every route.

- **Media type** (415 ``unsupported-media-type``): a body sent to a route that reads JSON must
  be ``application/json`` (or ``application/<x>+json``); to a route that reads a form,
  ``multipart/form-data``. Litestar would otherwise read any body as the route's own type.
- **Nesting** (400 ``validation``, field ``body``): a JSON body, or a JSON form part
  (``decode_json``), may nest arrays and objects at most ``MAX_JSON_DEPTH`` (64) deep. Deeper,
  the decoder would exhaust the stack (a 500); the bodies of this API need fewer than ten.
  The check counts brackets outside strings, linear in the body (which is at most
  ``RFR_MAX_REQUEST_BYTES``; about 0.6 s for 20 MiB, in a worker thread), and costs nothing
  for a body with fewer brackets than the limit.
- **Strict types** (400 ``validation`` naming the field): a JSON body is decoded against the
  route's body type with msgspec's strict rules (no ``0`` for ``false``, no ``"10"`` for a
  number, no number for a date or an enum; ``360.0`` is an integer, as JSON Schema has it),
  and held to its type's rule between fields (``body_rules``), before Litestar converts it
  with its lax ones
  (Litestar hard-codes ``strict=False``; strictly valid input converts identically). Query
  parameters are text by nature: a number must be written as one (``5``, not ``5.0`` or
  ``five``), a boolean as ``true`` or ``false`` (any case, never ``1``), and a date, time,
  UUID or enum as its own text (``?to=0.5`` is not a date). Multipart form fields stay
  text; the routes that take them document and check them as text.
- **Size** (413 ``request-too-large``): a body announced over the limit is refused on every
  route, even one that reads no body; Litestar refuses a streamed one as it reads it.
"""

from __future__ import annotations

import datetime
import enum
import re
import types
import uuid
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import msgspec
from anyio import to_thread
from litestar import Request
from litestar.enums import ParamType, RequestEncodingType
from litestar.exceptions import HTTPException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.handlers import HTTPRouteHandler
from litestar.params import BodyKwarg, ParameterKwarg

from rfr.entrypoints.http.body_rules import check_fields_rule

MAX_JSON_DEPTH = 64
# msgspec's refusal of a dict key, and how much of a refused key an error repeats.
_REFUSED_KEY = re.compile(r"Invalid enum value '(?P<key>.*)' - at `key` in `\$(?P<path>.*)`", re.DOTALL)
_ECHOED = 64
# Integers a double holds exactly (I-JSON, RFC 7493 2.2).
_EXACT_INTEGERS = 2**53 - 1
# Bodies larger than this are checked in a worker thread.
_INLINE_BYTES = 256 * 1024
T = TypeVar("T")

# Parameters Litestar fills from the connection itself, never from the query.
_RESERVED = frozenset({"state", "request", "scope", "headers", "cookies", "query", "body", "socket", "data"})
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# Text in a query string is the value itself for these: msgspec's strict conversion applies.
_TEXTUAL = (str, datetime.datetime, datetime.date, datetime.time, uuid.UUID)


class UnsupportedMediaType(HTTPException):
    status_code = 415


def json_too_deep(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``raw`` nests arrays and objects deeper than ``limit``.

    Brackets inside strings do not count. Malformed text is not judged: the decoder refuses it.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = deepest = 0
    for bracket in _STRING.sub(b"", raw).translate(None, _NOT_BRACKETS):
        if bracket in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return True
        else:
            depth -= 1
    return False


def too_deep(field: str) -> ValidationException:
    message = f"nested more than {MAX_JSON_DEPTH} levels deep"
    return ValidationException(message, extra=[{"key": field, "source": "body", "message": message}])


def validation_error(error: msgspec.ValidationError, field: str | None = None) -> ValidationException:
    """A 400 naming the field msgspec's ``error`` is about, under ``field`` (the body: ``data``)."""
    text = str(error)
    refused_key = _REFUSED_KEY.fullmatch(text)
    if refused_key:
        # A name an object of names does not take: the field is the name, shortened if long.
        name = refused_key["key"]
        name = name if len(name) <= _ECHOED else f"{name[:_ECHOED]}..."
        message, path = "not a name this object takes", f"{refused_key['path']}.{name}"
    else:
        message, _, path = text.partition(" - at `$")
        path = path.rstrip("`")
    path = path.lstrip(".")
    if field is None:
        key = path or "body"
    else:
        key = f"{field}.{path}" if path and not path.startswith("[") else field + path
    return ValidationException(message, extra=[{"key": key, "source": "body", "message": message}])


def decode_json(raw: bytes, kind: Any, field: str | None = None) -> Any:
    """``raw`` decoded strictly into ``kind``; errors are 400s naming ``field`` (or the body's field)."""
    if json_too_deep(raw):
        raise too_deep(field or "body")
    try:
        body = msgspec.json.decode(raw, type=kind, strict=True)
    except msgspec.ValidationError as e:
        body = _with_integral_numbers(raw, kind)
        if body is None:
            raise validation_error(e, field) from None
    except msgspec.DecodeError as e:
        name = field or "body"
        message = f"not valid JSON: {e}"
        raise ValidationException(
            message, extra=[{"key": name, "source": "body", "message": message}]
        ) from None
    except RecursionError:  # under the depth limit but deep in an already deep stack
        raise too_deep(field or "body") from None
    check_fields_rule(body)
    return body


def _with_integral_numbers(raw: bytes, kind: Any) -> Any | None:
    """``raw`` as ``kind`` when the one objection was an integer written with a fraction of zero.

    JSON has numbers, not integers; JSON Schema calls ``360.0`` an integer, and so must the
    API whose schema it is. msgspec's strict decoding refuses it, so a refused body is read
    again with every such number (exact in a double) made an ``int``; anything else it refused
    it refuses again. Only refused bodies pay for the second reading.
    """
    try:
        return msgspec.convert(_integral(msgspec.json.decode(raw)), kind, strict=True)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT_INTEGERS:
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def _body(handler: HTTPRouteHandler) -> tuple[str, Any] | None:
    """(the encoding, the type) of the route's body; None when it reads none."""
    field = handler.parsed_fn_signature.parameters.get("data")
    if field is None:
        return None
    kwarg = field.kwarg_definition
    encoding = kwarg.media_type if isinstance(kwarg, BodyKwarg) else RequestEncodingType.JSON
    return str(getattr(encoding, "value", encoding)), field.annotation


def _media_type_accepted(declared: str, sent: str) -> bool:
    if declared == RequestEncodingType.JSON:
        return sent == "application/json" or (sent.startswith("application/") and sent.endswith("+json"))
    return sent == declared


def _query_parameters(request: Request[Any, Any, Any], handler: HTTPRouteHandler) -> dict[str, Any]:
    """The route's query parameters: the name in the query string -> the declared type."""
    dependencies = handler.resolve_dependencies()
    found = {}
    for name, field in handler.parsed_fn_signature.parameters.items():
        if name in _RESERVED or name in dependencies or name in request.path_params or field.is_di_field:
            continue
        kwarg = field.kwarg_definition
        alias = name
        if isinstance(kwarg, ParameterKwarg):
            if kwarg.param_type != ParamType.QUERY or kwarg.header or kwarg.cookie:
                continue
            alias = kwarg.name or kwarg.query or name
        elif kwarg is not None:
            continue
        found[alias] = field.annotation
    return found


def _alternatives(kind: Any) -> list[Any]:
    if get_origin(kind) in (Union, types.UnionType):
        return [k for k in get_args(kind) if k is not type(None)]
    return [kind]


def query_value_problem(text: str, kind: Any) -> str | None:
    """Why ``text`` from a query string is not a ``kind`` written as such; None: it is one."""
    if get_origin(kind) in (list, tuple, set, frozenset):
        args = get_args(kind)
        kind = args[0] if args else str
    messages = []
    for option in _alternatives(kind):
        if option is bool:
            if text.lower() in ("true", "false"):
                return None
            messages.append("Expected `bool` (true or false)")
        elif option is int:
            if _INTEGER.fullmatch(text):
                return None
            messages.append("Expected `int`, written as one")
        elif option is float:
            if _NUMBER.fullmatch(text):
                return None
            messages.append("Expected `number`, written as one")
        elif (
            option in _TEXTUAL
            or get_origin(option) is Literal
            or (isinstance(option, type) and issubclass(option, enum.Enum))
        ):
            try:
                msgspec.convert(text, option, strict=True)
            except msgspec.ValidationError as e:
                messages.append(str(e))
            else:
                return None
        else:
            return None  # a type this check does not know: Litestar's own conversion judges it
    return "; ".join(messages) or None


def _check_query(request: Request[Any, Any, Any], handler: HTTPRouteHandler) -> None:
    if not request.query_params:
        return
    declared = _query_parameters(request, handler)
    errors = []
    for name, values in request.query_params.dict().items():
        kind = declared.get(name)
        if kind is None:
            continue
        for value in values:
            problem = query_value_problem(value, kind)
            if problem is not None:
                errors.append({"key": name, "source": "query", "message": problem})
                break
    if errors:
        raise ValidationException(errors[0]["message"], extra=errors)


def _has_body(request: Request[Any, Any, Any]) -> bool:
    length = request.content_length
    return bool(length) or "transfer-encoding" in request.headers


async def screen_request(request: Request[Any, Any, Any]) -> None:
    """The ``before_request`` hook (see the module docstring); raises, or lets the request on."""
    handler = request.route_handler
    if not isinstance(handler, HTTPRouteHandler):
        return
    limit = handler.resolve_request_max_body_size()
    announced = request.content_length
    if limit and announced is not None and announced > limit:
        raise RequestEntityTooLarge
    _check_query(request, handler)
    body = _body(handler)
    if not _has_body(request):
        return
    if body is None:
        if announced is None:
            await request.body()  # streamed to a route that reads none: still held to the limit
        return
    encoding, kind = body
    sent = request.content_type[0].lower()
    if not _media_type_accepted(encoding, sent):
        raise UnsupportedMediaType(f"this route takes {encoding}, not {sent or 'a body of no declared type'}")
    if encoding == RequestEncodingType.JSON:
        raw = await request.body()
        if len(raw) > _INLINE_BYTES:
            # Scanning a large body takes a while (0.6 s for 20 MiB of brackets): off the event loop.
            await to_thread.run_sync(decode_json, raw, kind)
        elif raw:
            decode_json(raw, kind)
