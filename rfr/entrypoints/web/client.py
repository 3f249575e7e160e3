"""The web client's parts, mounted by ``create_app`` beside the API's resources.

``WebClient(services, settings)`` holds what the pages share in one process: the settings, the
session store (opened on first use) and the template engine. ``routes()`` gives the pages' router
(every module of ``rfr.entrypoints.web.pages``, under ``/app``, with the session middleware and
the HTML error pages) and the static files' router; ``template_config()`` the Jinja2 engine;
``install(app)`` puts the client in the application's state, where pages and the middleware find it.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Litestar, Router
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from rfr.entrypoints.composition import Services
from rfr.entrypoints.http.access_control import public
from rfr.entrypoints.web import pages
from rfr.entrypoints.web.config import WebSettings
from rfr.entrypoints.web.errors import WEB_EXCEPTION_HANDLERS
from rfr.entrypoints.web.navigation import NavLink, role_names
from rfr.entrypoints.web.security import STATIC_PATH, WEB_PATH, session_middleware
from rfr.entrypoints.web.sessions import SessionStore

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATE_KEY = "rfr_web"


def page_modules() -> list[Any]:
    """Every module of ``rfr.entrypoints.web.pages``, in name order (``_``-prefixed ones are helpers)."""
    found = []
    for info in sorted(pkgutil.iter_modules(pages.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            found.append(importlib.import_module(f"{pages.__name__}.{info.name}"))
    return found


def when(value: Any) -> str:
    """A time as people read it, in UTC: ``2026-11-01 12:00:05 UTC``."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# A perceived age band (``PerceivedAgeBand``) as people say it.
AGE_BAND_NAMES = {
    "under_13": "under 13",
    "13_15": "13 to 15",
    "16_17": "16 to 17",
    "18_plus": "18 or over",
    "unknown": "unknown (handled as under 16)",
}


def age_band(value: str) -> str:
    return AGE_BAND_NAMES.get(value, value)


def template_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = when
    env.filters["age_band"] = age_band
    env.filters["role_names"] = role_names
    return env


@attrs.define(eq=False)
class WebClient:
    services: Services
    settings: WebSettings = attrs.field(factory=WebSettings.from_env)
    _sessions: SessionStore | None = attrs.field(default=None, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

    @property
    def sessions(self) -> SessionStore:
        with self._lock:
            if self._sessions is None:
                self._sessions = SessionStore.in_data_dir(
                    self.services.settings.data_dir,
                    now=self.services.clock.now,
                    idle=self.settings.idle,
                    absolute=self.settings.absolute,
                )
            return self._sessions

    @property
    def nav_links(self) -> list[NavLink]:
        return [link for module in page_modules() for link in getattr(module, "NAV", ())]

    def routes(self) -> list[Router]:
        handlers = [handler for module in page_modules() for handler in getattr(module, "ROUTES", ())]
        pages_router = Router(
            path=WEB_PATH,
            route_handlers=handlers,
            middleware=[session_middleware],
            exception_handlers=WEB_EXCEPTION_HANDLERS,
            include_in_schema=False,
            tags=["web client"],
        )
        static = create_static_files_router(
            path=STATIC_PATH, directories=[STATIC], include_in_schema=False, **public()
        )
        return [pages_router, static]

    def template_config(self) -> TemplateConfig[JinjaTemplateEngine]:
        return TemplateConfig(instance=JinjaTemplateEngine.from_environment(template_environment()))

    def install(self, app: Litestar) -> None:
        app.state[STATE_KEY] = self


def web_client_of(app: Litestar) -> WebClient:
    return app.state[STATE_KEY]
