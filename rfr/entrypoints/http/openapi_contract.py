"""The whole API contract in the OpenAPI document: named bodies, described fields, each route's roles.

Three things Litestar does not do on its own, done here once for every route and type:

* **Field descriptions from docstrings.** A body or view type (msgspec struct, attrs class or
  dataclass, in any layer) documents its fields in a Google-style ``Attributes:`` section of
  its docstring; ``FieldDocs`` copies each entry onto the property of the type's component
  schema, and the text above the section becomes the component's description. A description
  already on a field (``msgspec.Meta`` on a shared type such as ``AwareDateTime``) is kept,
  after the field's own. ``tests/http/test_openapi_contract.py`` checks that no field lacks a
  description and that no entry names a field its type does not have (``FieldDocs.stale``), so
  the docs cannot drift from the fields; the server itself only logs such an entry, since a
  slip in documentation must not take the schema down.
  The application and domain layers need no HTTP import for this: a docstring is enough.

      @attrs.frozen
      class HoldView:
          \"\"\"A legal hold on a record.

          Attributes:
              hold_id: The hold's id.
              placed_at: When the hold was placed, in UTC.
          \"\"\"

* **JSON parts of a form as components.** A multipart part that carries JSON names its type in
  ``schema_extra={"contentMediaType": "application/json", "contentSchema": SomeStruct}``;
  ``FieldDocs`` writes the part as a ``$ref`` to its component (Form 3 of a probe upload),
  enums and nested types included: OpenAPI sends an object property of a form as an
  ``application/json`` part, so a client (or a fuzzer) sends a JSON document there, not text.

* **Bodies as plain references, roles on each operation.** Litestar wraps a body's ``$ref`` in
  ``allOf``/``oneOf`` when the route gives it examples or a description; ``document_operations``
  gives each handler an operation class that writes the body as the ``$ref`` itself (examples
  move to the media type, the description to the request body, an optional body becomes
  ``required: false``), and adds the route's access from its one declaration, ``allow()`` or
  ``public()`` (``access_control.access_extension``): ``x-rfr-roles``, ``x-rfr-public``,
  ``x-rfr-one-time-token`` and a sentence at the end of the description.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import re
from typing import TYPE_CHECKING, Any

import attrs
import msgspec
from litestar.openapi.spec import OpenAPIType, Operation, Reference, Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from rfr.entrypoints.http.access_control import RouteAccess, access_extension, http_handlers, route_access
from rfr.entrypoints.http.body_rules import fields_rule
from rfr.entrypoints.http.problem_responses import document_problems

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar._openapi.schema_generation import SchemaCreator

log = logging.getLogger("rfr.http")

_SECTION = "Attributes:"
_ENTRY = re.compile(r"^(?P<name>\w+)(?:\s*\([^)]*\))?:\s*(?P<text>.*)$")


def field_docs(kind: type) -> tuple[str, dict[str, str]]:
    """The text of ``kind``'s own docstring above ``Attributes:``, and that section's entries."""
    doc = kind.__dict__.get("__doc__")
    if not isinstance(doc, str) or (dataclasses.is_dataclass(kind) and doc.startswith(f"{kind.__name__}(")):
        return "", {}  # none written (a dataclass makes up its signature as a docstring)
    lines = inspect.cleandoc(doc).splitlines()
    starts = [n for n, line in enumerate(lines) if line.strip() == _SECTION]
    if not starts:
        return "\n".join(lines).strip(), {}
    summary = "\n".join(lines[: starts[0]]).strip()
    fields: dict[str, str] = {}
    entry_indent: int | None = None
    current = ""
    for line in lines[starts[0] + 1 :]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            break  # the section ends where the text comes back to the margin
        if entry_indent is None:
            entry_indent = indent
        match = _ENTRY.match(line.strip())
        if indent == entry_indent and match:
            current = match["name"]
            fields[current] = match["text"].strip()
        elif current and indent > entry_indent:
            fields[current] = f"{fields[current]} {line.strip()}".strip()
        else:
            raise ValueError(f"{kind.__qualname__}: cannot read this line of Attributes: {line.strip()!r}")
    return summary, fields


def _documented_class(kind: Any) -> bool:
    return inspect.isclass(kind) and (
        attrs.has(kind) or dataclasses.is_dataclass(kind) or issubclass(kind, msgspec.Struct)
    )


def _joined(own: str, shared: str | None) -> str:
    """A field's own description, then a description it had from its type (a format, a unit)."""
    if not shared or shared in own:
        return own
    return f"{own.rstrip('.')} ({shared.rstrip('.')})."


class FieldDocs(OpenAPISchemaPlugin):
    """Describes the properties of struct, attrs and dataclass components from their docstrings.

    It runs in front of Litestar's own plugin for the type, which still builds the schema.
    ``stale`` collects the ``Attributes:`` entries that name no field of their type.
    """

    def __init__(self) -> None:
        self.stale: dict[str, tuple[str, ...]] = {}

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return not field_definition.is_union and _documented_class(field_definition.type_)

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        builder = next(
            plugin
            for plugin in schema_creator.plugins
            if plugin is not self and schema_creator.plugin_supports_field(plugin, field_definition)
        )
        schema = builder.to_openapi_schema(field_definition=field_definition, schema_creator=schema_creator)
        kind = field_definition.type_
        summary, docs = field_docs(kind)
        properties = dict(schema.properties or {})
        unknown = tuple(sorted(set(docs) - set(properties)))
        if unknown:
            name = f"{kind.__module__}.{kind.__qualname__}"
            self.stale[name] = unknown
            log.warning("%s documents fields it does not have: %s", name, ", ".join(unknown))
        for name, prop in properties.items():
            if isinstance(prop, Schema) and inspect.isclass(prop.content_schema):
                part = FieldDefinition.from_annotation(prop.content_schema)
                component = schema_creator.for_field_definition(part)
                if prop.content_media_type == "application/json" and isinstance(component, Reference):
                    component.description = prop.description
                    prop = component
                else:
                    prop = dataclasses.replace(prop, content_schema=component)
            if name in docs:
                prop = _described(prop, docs[name])
            properties[name] = prop
        schema.properties = properties
        if summary and not schema.description:
            schema.description = summary
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            _as_msgspec_reads(schema, kind)
        return schema


# -- what the decoder enforces, in the schema ---------------------------------------------------

# JSON Schema's limits, by the name of the ``Schema`` attribute that holds each.
_LIMIT_ATTRIBUTES = {
    "maxLength": "max_length",
    "minLength": "min_length",
    "maxItems": "max_items",
    "minItems": "min_items",
    "minimum": "minimum",
    "maximum": "maximum",
    "exclusiveMinimum": "exclusive_minimum",
    "exclusiveMaximum": "exclusive_maximum",
    "pattern": "pattern",
    "maxProperties": "max_properties",
    "minProperties": "min_properties",
}


def _as_msgspec_reads(schema: Schema, kind: type[msgspec.Struct]) -> None:
    """Makes ``schema`` say what msgspec, which decodes the body, accepts of ``kind``.

    Litestar drops the limits of a list's items and writes those of an optional field beside
    its ``oneOf`` rather than on the value; it leaves out ``additionalProperties: false``. msgspec
    writes its own schema of the type exactly: its limits are copied onto Litestar's, value by
    value, so names and ``$ref``s stay Litestar's. A rule between fields (``body_rules``) is
    added as JSON Schema.
    """
    (ref,), components = msgspec.json.schema_components([kind])
    reads = components.get(ref.get("$ref", "").rpartition("/")[2], {}).get("properties", {})
    schema.properties = {
        name: _limited(prop, reads[name]) if isinstance(prop, Schema) and name in reads else prop
        for name, prop in (schema.properties or {}).items()
    }
    if kind.__struct_config__.forbid_unknown_fields:
        schema.additional_properties = False
    rule = fields_rule(kind)
    if rule is not None:
        for keyword, options in rule.json_schema().items():
            setattr(schema, _SCHEMA_ATTRIBUTE[keyword], [Schema(required=o["required"]) for o in options])


_SCHEMA_ATTRIBUTE = {"oneOf": "one_of", "anyOf": "any_of"}


def _limited(target: Schema, wanted: dict[str, Any]) -> Schema:
    """``target`` with ``wanted``'s limits, in list items and the non-null alternative too.

    A copy: Litestar shares some schemas (that of ``str``) between fields.
    """
    options = target.one_of or target.any_of
    if options:
        # A limit beside the alternatives belongs to the value, not to null: moved onto it.
        beside = {a: getattr(target, a) for a in _LIMIT_ATTRIBUTES.values() if getattr(target, a) is not None}
        values = [o for o in (wanted.get("anyOf") or [wanted]) if o.get("type") != "null"]
        limited = []
        for option in options:
            if isinstance(option, Schema) and option.type != OpenAPIType.NULL:
                option = dataclasses.replace(
                    option, **{a: v for a, v in beside.items() if getattr(option, a) is None}
                )
                same = [v for v in values if v.get("type") == _type_name(option)]
                option = _limited(option, same[0]) if same else option
            limited.append(option)
        alternatives = {"one_of" if target.one_of else "any_of": limited}
        return dataclasses.replace(target, **alternatives, **dict.fromkeys(beside))
    found = {a: wanted[k] for k, a in _LIMIT_ATTRIBUTES.items() if k in wanted and getattr(target, a) is None}
    if target.property_names is None and isinstance(wanted.get("propertyNames"), dict):
        found["property_names"] = Schema(**_keywords(wanted["propertyNames"]))
    if isinstance(target.items, Schema) and isinstance(wanted.get("items"), dict):
        found["items"] = _limited(target.items, wanted["items"])
    return dataclasses.replace(target, **found) if found else target


def _keywords(names: dict[str, Any]) -> dict[str, Any]:
    """The ``Schema`` arguments of msgspec's schema of a dict's keys (an enum of names, a length)."""
    return {attr: names[k] for k, attr in {**_LIMIT_ATTRIBUTES, "enum": "enum"}.items() if k in names}


def _type_name(option: Schema) -> str | None:
    kind = option.type
    return kind.value if isinstance(kind, OpenAPIType) else None


def _described(prop: Schema | Reference, text: str) -> Schema | Reference:
    if isinstance(prop, Reference):
        # References are made afresh for each use, and the registry renames them in place
        # later (``reports_Reason``): describe this one, do not copy it.
        prop.description = _joined(text, prop.description)
        return prop
    # A Schema may be shared (Litestar's schema of ``str``): copy it.
    return dataclasses.replace(prop, description=_joined(text, prop.description))


# -- operations ---------------------------------------------------------------------------------


def _wrapped_reference(schema: dict[str, Any]) -> tuple[str | None, bool]:
    """The ``$ref`` a body schema wraps, and whether the body may be left out (``X | None``)."""
    if "$ref" in schema:
        return schema["$ref"], False
    parts = schema.get("allOf") or schema.get("oneOf") or []
    refs = [p["$ref"] for p in parts if "$ref" in p]
    others = [p for p in parts if "$ref" not in p]
    if len(refs) != 1 or any(p != {"type": "null"} for p in others):
        return None, False
    return refs[0], bool(others)


def named_request_body(operation: dict[str, Any]) -> None:
    """Writes a body wrapped in ``allOf``/``oneOf`` as its ``$ref`` (see the module docstring)."""
    body = operation.get("requestBody")
    if not body:
        return
    for content in body.get("content", {}).values():
        schema = content.get("schema") or {}
        ref, optional = _wrapped_reference(schema)
        extra = {k: v for k, v in schema.items() if k not in ("$ref", "allOf", "oneOf")}
        if ref is None or schema == {"$ref": ref} or set(extra) - {"examples", "title", "description"}:
            continue  # nothing to do, or not a wrapper this knows: left as it is
        content["schema"] = {"$ref": ref}
        examples = extra.pop("examples", None)
        if examples and "examples" not in content:
            names = (
                ["example"] if len(examples) == 1 else [f"example-{n}" for n in range(1, len(examples) + 1)]
            )
            content["examples"] = {n: {"value": value} for n, value in zip(names, examples, strict=True)}
        text = ": ".join(str(extra.pop(k)) for k in ("title", "description") if extra.get(k))
        if text and not body.get("description"):
            body["description"] = text
        if optional:
            body["required"] = False


def operation_class(base: type[Operation], access: RouteAccess) -> type[Operation]:
    """``base`` (Litestar's ``Operation`` or a route's own) writing the route's access and its body."""

    class ContractOperation(base):  # type: ignore[valid-type, misc]
        rfr_access = access

        def to_schema(self) -> dict[str, Any]:
            schema = super().to_schema()
            named_request_body(schema)
            extension, sentence = access_extension(access)
            schema.update(extension)
            schema["description"] = f"{schema.get('description', '').rstrip()}\n\n{sentence}".strip()
            return schema

    ContractOperation.__qualname__ = ContractOperation.__name__ = f"{base.__name__}WithAccess"
    return ContractOperation


def document_operations(app: Litestar) -> None:
    """Gives every route handler of ``app`` the operation class above and its problem responses
    (``problem_responses``); call before the schema is built."""
    for _, handler in http_handlers(app):
        if getattr(handler.operation_class, "rfr_access", None) is None:  # not done already
            handler.operation_class = operation_class(handler.operation_class, route_access(handler))
            document_problems(handler)
