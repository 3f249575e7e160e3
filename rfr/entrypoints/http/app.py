"""The HTTP API, composed in one place: ``create_app(settings)``.

It builds the composition root's ``Services`` (``rfr.entrypoints.composition``: the one
``RfrApplication`` on the configured store, the clock, the biometrics, every use case),
bootstraps an empty store (first administrator and a one-time token written to
``$RFR_DATA_DIR/bootstrap-admin.token``, mode 0600), mounts every module of
``rfr.entrypoints.http.resources``, puts the access guard in front of every route
(``access_control``) and turns every error into a problem (``problems``). Start it with
``rfr serve``.

Documentation: ``/schema`` is a plain HTML reference that needs no network (every UI Litestar
bundles loads its scripts from a CDN); ``/schema/openapi.json`` is the OpenAPI document, with
every body a named schema whose fields are described and every operation's roles
(``openapi_contract``).
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from rfr.application.app import RfrApplication
from rfr.application.ports import Clock
from rfr.application.services.access import IssuedToken
from rfr.entrypoints.composition import Services
from rfr.entrypoints.http import resources
from rfr.entrypoints.http.access_control import (
    SECURITY_SCHEME,
    UndeclaredAccess,
    access_guard,
    current_principal,
    public,
    undeclared_routes,
)
from rfr.entrypoints.http.allowed_methods import answer_options_for_served_routes
from rfr.entrypoints.http.config import BOOTSTRAP_TOKEN_FILE, HttpSettings
from rfr.entrypoints.http.context import STATE_KEY, HttpContext
from rfr.entrypoints.http.metrics import count_requests
from rfr.entrypoints.http.openapi_contract import FieldDocs, document_operations
from rfr.entrypoints.http.openapi_page import OfflineReferencePlugin
from rfr.entrypoints.http.problems import EXCEPTION_HANDLERS
from rfr.entrypoints.http.strict_input import screen_request
from rfr.entrypoints.http.swagger_ui import console_assets, console_plugin
from rfr.entrypoints.web.client import WebClient
from rfr.entrypoints.web.config import WebSettings
from rfr.infrastructure.settings import Settings

SCHEMA_PATH = "/schema"
OPENAPI_JSON_PATH = f"{SCHEMA_PATH}/openapi.json"
API_VERSION = "0.1.0"

log = logging.getLogger("rfr.http")


def resource_routes() -> list[Any]:
    """The ``ROUTES`` of every module in ``rfr.entrypoints.http.resources``, in name order."""
    found: list[Any] = []
    for info in sorted(pkgutil.iter_modules(resources.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{resources.__name__}.{info.name}")
        found.extend(getattr(module, "ROUTES", ()))
    return found


def write_bootstrap_token(data_dir: Path, issued: IssuedToken) -> Path:
    """Writes the one-time token for the first administrator, readable by the owner only."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / BOOTSTRAP_TOKEN_FILE
    # Created with 0600 from the start: no moment where another user could read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(issued.secret + "\n")
    os.chmod(path, 0o600)
    return path


def bootstrap(settings: Settings, http: HttpSettings) -> Path | None:
    """On an empty store: the first administrator, and the file holding their one-time token."""
    with Services(settings) as services:
        issued = services.access().bootstrap(http.bootstrap_admin, ttl=http.bootstrap_token_ttl)
    if issued is None:
        return None
    log.info("bootstrapped administrator %r", http.bootstrap_admin)
    return write_bootstrap_token(settings.data_dir, issued)


def app_from_env() -> Litestar:
    """The API over the environment's settings: what each process of ``rfr serve --workers N``
    builds (an empty store was bootstrapped before they started)."""
    return create_app(Settings.from_env(), http=HttpSettings.from_env())


def create_app(
    settings: Settings,
    *,
    http: HttpSettings | None = None,
    clock: Clock | None = None,
    application: RfrApplication | None = None,
    services: Services | None = None,
    extra_routes: Sequence[Any] = (),
    bootstrap: bool = True,
    web: WebSettings | None = None,
) -> Litestar:
    """The API over ``settings``' store, run on the composition root's ``Services``.

    They are built here, over ``application`` and ``clock`` if given (tests), unless ``services``
    is given (then built by the caller over the same settings, and closed by the caller).
    ``extra_routes`` are mounted beside the resources (they must declare access too).
    With ``bootstrap``, an empty store gets its first administrator and token file.
    The web client's pages (``rfr.entrypoints.web``) are mounted under ``/app`` with ``web``'s
    session settings (default: from the environment).
    """
    http = http or HttpSettings.from_env()
    owns_services = services is None
    if services is None:
        services = Services(settings, application=application, clock=clock)
    elif application is not None or clock is not None or services.settings != settings:
        raise ValueError("give either services built over these settings, or an application and a clock")
    context = HttpContext(services=services, http=http)
    web_client = WebClient(services, web or WebSettings.from_env())
    if bootstrap:
        issued = services.access().bootstrap(http.bootstrap_admin, ttl=http.bootstrap_token_ttl)
        if issued is not None:
            context.bootstrap_token_file = write_bootstrap_token(settings.data_dir, issued)
            log.info("bootstrapped administrator %r", http.bootstrap_admin)
    openapi = OpenAPIConfig(
        title="Retrospective facial recognition API",
        version=API_VERSION,
        description="Governed searches with an audit trail. Every route names the roles it allows; "
        "errors are RFC 9457 problems (see /problems).",
        components=Components(
            security_schemes={SECURITY_SCHEME: SecurityScheme(type="http", scheme="bearer")}
        ),
        render_plugins=[
            OfflineReferencePlugin(path="/"),
            JsonRenderPlugin(path="/openapi.json"),
            console_plugin(),
        ],
        # A handler's docstring is its operation's description: written once, for readers of both.
        use_handler_docstrings=True,
        # The documentation's own routes are public and left out of the document, as Litestar
        # leaves them by default: they describe the API, they are not part of its contract.
        openapi_router=Router(path=SCHEMA_PATH, route_handlers=[], include_in_schema=False, **public()),
    )
    api = Litestar(
        route_handlers=[*resource_routes(), console_assets(), *web_client.routes(), *extra_routes],
        guards=[access_guard],
        dependencies={"principal": Provide(current_principal, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi,
        # Each body and view type's fields are described from its docstring (openapi_contract).
        plugins=[FieldDocs()],
        request_max_body_size=http.max_request_bytes,
        # Media type, JSON depth, strict types and size, before any parameter is read.
        before_request=screen_request,
        state=None,
        # Services (or a store) passed in belong to the caller, who closes them.
        on_shutdown=[services.close] if owns_services else [],
        # The web client's pages (rfr.entrypoints.web); the API's routes render no templates.
        template_config=web_client.template_config(),
    )
    api.state[STATE_KEY] = context
    # Every answer counted by route template and status for the live metrics (ADR 0024).
    count_requests(api)
    web_client.install(api)
    missing = undeclared_routes(api)
    if missing:
        raise UndeclaredAccess(f"routes without allow() or public(): {', '.join(missing)}")
    # Each operation states its roles, read from the same declaration the guard reads.
    document_operations(api)
    # OPTIONS lists every method of its path, however many handlers serve it.
    answer_options_for_served_routes(api)
    return api
