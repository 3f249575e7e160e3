"""The interactive API console (Swagger UI) served from a package, so it works on a closed network.

Litestar's render plugins load Swagger UI from a CDN by default; police networks often cannot
reach one, and a page that pulls code from a third party is a supply-chain risk besides. The
`swagger-ui-py` package ships the Swagger UI 5 distribution (OpenAPI 3.1); its static files are
served under ``ASSETS_PATH`` and the plugin points at them.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.router import Router
from litestar.static_files import create_static_files_router

from rfr.entrypoints.http.access_control import public

ASSETS_PATH = "/console-assets"
CONSOLE_PATH = "/swagger"  # under the schema router: /schema/swagger
_STATIC = Path(swagger_ui.__file__).resolve().parent / "static"
_SERVED = ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css", "favicon-32x32.png")


def console_plugin() -> SwaggerRenderPlugin:
    return SwaggerRenderPlugin(
        path=CONSOLE_PATH,
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
    )


def console_assets() -> Router:
    missing = [name for name in _SERVED if not (_STATIC / name).is_file()]
    if missing:
        raise RuntimeError(f"swagger-ui-py is installed without {', '.join(missing)}")
    return create_static_files_router(
        path=ASSETS_PATH, directories=[_STATIC], include_in_schema=False, **public()
    )
