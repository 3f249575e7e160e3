"""An API reference page that works with no network: plain HTML rendered on the server.

Every OpenAPI UI Litestar ships (Swagger UI, ReDoc, Stoplight Elements, RapiDoc, Scalar)
loads its JavaScript and CSS from a public CDN, which a police network or this build
machine cannot reach, and the project vendors nothing fetched. So ``/schema`` serves this
page instead: each operation with its roles (read from the route declarations themselves),
parameters, body and responses, and a link to the machine-readable schema at
``/schema/openapi.json`` (load that into any OpenAPI tool you have locally).
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from litestar import Request
from litestar.openapi.plugins import OpenAPIRenderPlugin

from rfr.entrypoints.http.access_control import http_handlers

_METHODS = ("get", "put", "post", "delete", "patch")
_PARAM_TYPE = re.compile(r"\{(\w+):[^}]+\}")

_STYLE = """<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#222}
h2{margin-top:2rem;border-bottom:1px solid #ccc}
.op{margin:1rem 0;padding:.5rem 1rem;border-left:4px solid #468}
.m{font-weight:bold;text-transform:uppercase;display:inline-block;width:4.5rem}
code{background:#f3f3f3;padding:0 .2rem}
.roles{color:#555}
</style>"""


def _access_by_operation(request: Request[Any, Any, Any]) -> dict[tuple[str, str], str]:
    found: dict[tuple[str, str], str] = {}
    for path, handler in http_handlers(request.app):
        access = handler.opt.get("rfr_access")
        if access is None:
            continue
        if access.public:
            text = "public (no token)"
        else:
            text = ", ".join(sorted(r.value for r in access.roles))
            if access.one_time_token:
                text += " (one-time token only)"
        for method in handler.http_methods:
            found[(_PARAM_TYPE.sub(r"{\1}", path), method.lower())] = text
    return found


def _ref_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref") or schema.get("items", {}).get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return f"{name}[]" if "items" in schema else name
    return schema.get("type", "object")


class OfflineReferencePlugin(OpenAPIRenderPlugin):
    def __init__(self, path: str = "/") -> None:
        super().__init__(path=path, favicon="", style=_STYLE)

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        info = openapi_schema.get("info", {})
        access = _access_by_operation(request)
        json_url = escape(self.get_openapi_json_route(request))
        parts = [
            "<!DOCTYPE html><html><head><meta charset='utf-8'>",
            f"<title>{escape(info.get('title', 'API'))}</title>{self.style}</head><body>",
            f"<h1>{escape(info.get('title', ''))} {escape(info.get('version', ''))}</h1>",
            f"<p>{escape(info.get('description', ''))}</p>",
            f"<p>Machine-readable schema: <a href='{json_url}'>{json_url}</a>. Authenticate with "
            "<code>Authorization: Bearer &lt;token&gt;</code>. Errors are RFC 9457 problems.</p>",
        ]
        by_tag: dict[str, list[str]] = {}
        for path, item in sorted(openapi_schema.get("paths", {}).items()):
            for method in _METHODS:
                op = item.get(method)
                if op is None:
                    continue
                tag = (op.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append(self._operation(path, method, op, access))
        for tag in sorted(by_tag):
            parts.append(f"<h2>{escape(tag)}</h2>")
            parts.extend(by_tag[tag])
        parts.append("</body></html>")
        return "".join(parts).encode("utf-8")

    @staticmethod
    def _operation(path: str, method: str, op: dict[str, Any], access: dict[tuple[str, str], str]) -> str:
        rows = [
            f"<div class='op'><span class='m'>{method}</span><code>{escape(path)}</code> "
            f"{escape(op.get('summary', ''))}",
            f"<div class='roles'>Roles: {escape(access.get((path, method), 'undeclared'))}</div>",
        ]
        if op.get("description"):
            rows.append(f"<p>{escape(op['description'])}</p>")
        params = op.get("parameters") or []
        if params:
            listed = ", ".join(
                f"<code>{escape(p['name'])}</code> ({escape(p['in'])}"
                f"{', required' if p.get('required') else ''})"
                for p in params
            )
            rows.append(f"<div>Parameters: {listed}</div>")
        body = op.get("requestBody", {}).get("content", {})
        for media, content in body.items():
            rows.append(f"<div>Body ({escape(media)}): {escape(_ref_name(content.get('schema', {})))}</div>")
        statuses = ", ".join(escape(s) for s in sorted(op.get("responses", {})))
        rows.append(f"<div>Responses: {statuses}</div></div>")
        return "".join(rows)
