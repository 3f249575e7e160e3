"""An API reference page that works with no network: plain HTML rendered on the server.

Every OpenAPI UI Litestar ships (Swagger UI, ReDoc, Stoplight Elements, RapiDoc, Scalar)
loads its JavaScript and CSS from a public CDN, which a police network or this build
machine cannot reach, and the project vendors nothing fetched. So ``/schema`` serves this
page instead, read from the OpenAPI document alone: each operation with its roles (the
``x-rfr-*`` fields, written from the route declarations), parameters, request body and
responses, each body as a table of its fields (name, type, required, description, allowed
values and limits) with ``$ref``s resolved; then every named schema with its own table, so a
nested type (Form 3 in a probe upload) is a link away. The machine-readable schema is at
``/schema/openapi.json`` (load that into any OpenAPI tool you have locally).
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin

from rfr.entrypoints.http.access_control import ONE_TIME_TOKEN_EXTENSION, PUBLIC_EXTENSION, ROLES_EXTENSION

_METHODS = ("get", "put", "post", "delete", "patch")
_COMPONENT = "#/components/schemas/"
_LITERAL = re.compile(r"``(.+?)``")
# Limits shown beside a field, by their JSON Schema keyword.
_LIMITS = {
    "minLength": "min length",
    "maxLength": "max length",
    "minimum": "min",
    "maximum": "max",
    "exclusiveMinimum": "more than",
    "exclusiveMaximum": "less than",
    "minItems": "min items",
    "maxItems": "max items",
    "pattern": "pattern",
    "default": "default",
}

_STYLE = """<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}
h2{margin-top:2rem;border-bottom:1px solid #ccc}
.op{margin:1rem 0;padding:.5rem 1rem;border-left:4px solid #468}
.m{font-weight:bold;text-transform:uppercase;display:inline-block;width:4.5rem}
code{background:#f3f3f3;padding:0 .2rem}
.roles{color:#555}
table{border-collapse:collapse;margin:.3rem 0 .6rem;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.15rem .4rem;text-align:left;vertical-align:top}
th{background:#f6f6f6}
.schema{margin:1rem 0;padding:.3rem 1rem;border-left:4px solid #8a6}
</style>"""


def prose(text: str) -> str:
    """A description as HTML: escaped, with its reStructuredText ````literals```` as code."""
    return _LITERAL.sub(r"<code>\1</code>", escape(text))


def _roles(op: dict[str, Any]) -> str:
    """The operation's access as its ``x-rfr-*`` fields state it."""
    if op.get(PUBLIC_EXTENSION):
        return "public (no token)"
    roles = op.get(ROLES_EXTENSION)
    if not roles:
        return "undeclared"
    text = ", ".join(roles)
    return f"{text} (one-time token only)" if op.get(ONE_TIME_TOKEN_EXTENSION) else text


def _component_name(ref: str) -> str:
    return ref.removeprefix(_COMPONENT)


def _link(ref: str) -> str:
    name = escape(_component_name(ref))
    return f"<a href='#schema-{name}'>{name}</a>"


class _Schemas:
    """Reads schemas of one OpenAPI document, following ``$ref`` into its components."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.components: dict[str, Any] = document.get("components", {}).get("schemas", {})

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith(_COMPONENT):
            return self.components.get(_component_name(ref), {})
        return schema

    def type_of(self, schema: dict[str, Any]) -> str:
        """A field's type as HTML: a named schema is a link to its table."""
        if "$ref" in schema:
            return _link(schema["$ref"])
        for key in ("oneOf", "anyOf"):
            if key in schema:
                return " | ".join(self.type_of(s) for s in schema[key])
        if "allOf" in schema:
            return " &amp; ".join(self.type_of(s) for s in schema["allOf"])
        kind = schema.get("type")
        if kind == "array":
            return f"{self.type_of(schema.get('items', {}))}[]"
        if schema.get("format") == "binary":
            return "file"
        if isinstance(kind, list):
            text = " | ".join(kind)
        else:
            text = kind or ("enum" if "enum" in schema else "any")
        if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
            text = f"object of {self.type_of(schema['additionalProperties']) or 'any'}"
        fmt = schema.get("format")
        return escape(f"{text} ({fmt})" if fmt else text)

    def values_of(self, schema: dict[str, Any]) -> str:
        """Allowed values and limits of a field, looking through ``$ref``, arrays and unions."""
        notes: list[str] = []
        self._collect(schema, notes, depth=0)
        return "; ".join(dict.fromkeys(notes))

    def _collect(self, schema: dict[str, Any], notes: list[str], depth: int) -> None:
        if depth > 3:
            return
        target = self.resolve(schema)
        if "enum" in target:
            notes.append("one of " + ", ".join(f"<code>{escape(str(v))}</code>" for v in target["enum"]))
        if "const" in target:
            notes.append(f"always <code>{escape(str(target['const']))}</code>")
        if target is schema:  # a named schema's limits are in its own table
            for key, label in _LIMITS.items():
                if key in schema:
                    notes.append(f"{label} {escape(str(schema[key]))}")
        for key in ("oneOf", "anyOf", "allOf"):
            for part in schema.get(key, ()):
                self._collect(part, notes, depth + 1)
        if schema.get("type") == "array":
            self._collect(schema.get("items", {}), notes, depth + 1)

    def fields_table(self, schema: dict[str, Any]) -> str:
        """The fields of an object schema (through its ``$ref``) as a table; '' for any other."""
        target = self.resolve(schema)
        if target.get("type") == "array":
            return self.fields_table(target.get("items", {}))
        properties = target.get("properties")
        if not properties:
            return ""
        required = set(target.get("required", ()))
        rows = [
            "<table><tr><th>Field</th><th>Type</th><th>Required</th><th>Description</th>"
            "<th>Values and limits</th></tr>"
        ]
        for name, prop in properties.items():
            rows.append(
                f"<tr><td><code>{escape(name)}</code></td><td>{self.type_of(prop)}</td>"
                f"<td>{'yes' if name in required else 'no'}</td>"
                f"<td>{prose(prop.get('description', ''))}</td><td>{self.values_of(prop)}</td></tr>"
            )
        rows.append("</table>")
        rows += [f"<div>{rule}</div>" for rule in _rules_between_fields(target)]
        if target.get("additionalProperties") is False:
            rows.append("<div>No other field is accepted.</div>")
        return "".join(rows)

    def component(self, name: str) -> str:
        schema = self.components[name]
        parts = [f"<div class='schema' id='schema-{escape(name)}'><h3>{escape(name)}</h3>"]
        if schema.get("description"):
            parts.append(f"<p>{prose(schema['description'])}</p>")
        if "enum" in schema:
            parts.append(f"<div>{self.type_of(schema)}: {self.values_of(schema)}</div>")
        parts.append(self.fields_table(schema))
        parts.append("</div>")
        return "".join(parts)


def _rules_between_fields(schema: dict[str, Any]) -> list[str]:
    """The rules a ``oneOf``/``anyOf`` of ``required`` states, as sentences."""
    rules = []
    for key, how in (("oneOf", "exactly one"), ("anyOf", "at least one")):
        options = schema.get(key, [])
        if options and all(set(o) == {"required"} for o in options):
            named = ", ".join(f"<code>{escape(n)}</code>" for o in options for n in o["required"])
            rules.append(f"Give {how} of {named}.")
    return rules


class OfflineReferencePlugin(OpenAPIRenderPlugin):
    def __init__(self, path: str = "/") -> None:
        super().__init__(path=path, favicon="", style=_STYLE)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        info = openapi_schema.get("info", {})
        schemas = _Schemas(openapi_schema)
        json_url = escape(self.get_openapi_json_route(request))
        parts = [
            "<!DOCTYPE html><html><head><meta charset='utf-8'>",
            f"<title>{escape(info.get('title', 'API'))}</title>{self.style}</head><body>",
            f"<h1>{escape(info.get('title', ''))} {escape(info.get('version', ''))}</h1>",
            f"<p>{escape(info.get('description', ''))}</p>",
            f"<p>Machine-readable schema: <a href='{json_url}'>{json_url}</a>. Authenticate with "
            "<code>Authorization: Bearer &lt;token&gt;</code>. Errors are RFC 9457 problems. "
            "Bodies are described under <a href='#schemas'>Schemas</a>.</p>",
        ]
        by_tag: dict[str, list[str]] = {}
        for path, item in sorted(openapi_schema.get("paths", {}).items()):
            for method in _METHODS:
                op = item.get(method)
                if op is None:
                    continue
                tag = (op.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append(self._operation(path, method, op, schemas))
        for tag in sorted(by_tag):
            parts.append(f"<h2>{escape(tag)}</h2>")
            parts.extend(by_tag[tag])
        parts.append("<h2 id='schemas'>Schemas</h2>")
        parts.extend(schemas.component(name) for name in sorted(schemas.components))
        parts.append("</body></html>")
        return "".join(parts).encode("utf-8")

    @staticmethod
    def _operation(path: str, method: str, op: dict[str, Any], schemas: _Schemas) -> str:
        rows = [
            f"<div class='op'><span class='m'>{method}</span><code>{escape(path)}</code> "
            f"{escape(op.get('summary', ''))}",
            f"<div class='roles'>Roles: {escape(_roles(op))}</div>",
        ]
        if op.get("description"):
            rows.append(f"<p>{prose(op['description'])}</p>")
        params = op.get("parameters") or []
        if params:
            listed = ", ".join(
                f"<code>{escape(p['name'])}</code> ({escape(p['in'])}"
                f"{', required' if p.get('required') else ''})"
                for p in params
            )
            rows.append(f"<div>Parameters: {listed}</div>")
        body = op.get("requestBody", {})
        for media, content in body.get("content", {}).items():
            schema = content.get("schema", {})
            optional = "" if body.get("required", False) else ", optional"
            rows.append(f"<div>Body ({escape(media)}{optional}): {schemas.type_of(schema)}")
            if body.get("description"):
                rows.append(f" &mdash; {prose(body['description'])}")
            rows.append(f"</div>{schemas.fields_table(schema)}")
        statuses = []
        for status, response in sorted(op.get("responses", {}).items()):
            typed = [
                f"{schemas.type_of(c['schema'])} ({escape(m)})"
                for m, c in response.get("content", {}).items()
                if c.get("schema")
            ]
            statuses.append(f"{escape(status)}{': ' + ', '.join(typed) if typed else ''}")
            if status.startswith("2"):
                for content in response.get("content", {}).values():
                    table = schemas.fields_table(content.get("schema", {}))
                    if table:
                        rows.append(
                            f"<details><summary>Response {escape(status)}: "
                            f"{schemas.type_of(content['schema'])}</summary>{table}</details>"
                        )
        rows.append(f"<div>Responses: {'; '.join(statuses)}</div></div>")
        return "".join(rows)
