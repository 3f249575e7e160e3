"""`rfr serve`: the HTTP API on uvicorn, over the store named by RFR_DATA_DIR / RFR_PERSISTENCE.

``--workers N`` runs N API processes behind the one port (uvicorn's own workers, each building
the application from the environment). They share the event store and the data folder's
biometric store and index files; each process's indexes catch up from the event log before
each search (ADR 0014), so what one process enrols another finds. With the embedded SQLite
store the processes take turns to write; PostgreSQL (RFR_PERSISTENCE=postgres) is the store
for several processes in production (ADR 0016).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rfr.entrypoints.http.config import HttpSettings
from rfr.entrypoints.http.context import context_of
from rfr.infrastructure.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser(
        "serve", help="run the HTTP API (OpenAPI reference at /schema) and the web client (/app/)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API processes sharing the port (default 1); use RFR_PERSISTENCE=postgres for several",
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    # Imported here so other commands do not pay for the web stack.
    import uvicorn

    from rfr.entrypoints.http.app import bootstrap, create_app

    try:
        settings, http = Settings.from_env(), HttpSettings.from_env()
    except ValueError as e:
        print(f"rfr serve: {e}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("rfr serve: --workers must be at least 1", file=sys.stderr)
        return 2
    base = f"http://{args.host}:{args.port}"
    if http.metrics_port is not None and not _serve_metrics(http.metrics_port, args.workers):
        return 2
    if args.workers == 1:
        api = create_app(settings, http=http)
        _banner(base, settings, context_of(api).bootstrap_token_file, http.bootstrap_admin)
        uvicorn.run(api, host=args.host, port=args.port, log_level=args.log_level)
        return 0
    # Bootstrapped here, once, before the processes start: their race for it would be safe (one
    # wins, ADR of the bootstrap), but only this process can tell the operator where the token is.
    _banner(base, settings, bootstrap(settings, http), http.bootstrap_admin)
    print(f"  {args.workers} API processes share the port", flush=True)
    uvicorn.run(
        "rfr.entrypoints.http.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
    )
    return 0


def _serve_metrics(port: int, workers: int) -> bool:
    """The live metrics on 127.0.0.1:``port`` with no token (RFR_METRICS_PORT, ADR 0024), served by
    this process: the only one of ``--workers N`` that binds no API socket of its own."""
    from prometheus_client import start_http_server

    from rfr.infrastructure.metrics import MULTIPROC_DIR_VARIABLE, multiprocess_dir, scrape_registry

    if workers > 1 and multiprocess_dir() is None:
        # This process answers no request: without the shared folder it would count nothing.
        print(
            f"rfr serve: RFR_METRICS_PORT with --workers {workers} needs {MULTIPROC_DIR_VARIABLE} "
            "(a folder shared by the API processes and the worker, emptied before they start)",
            file=sys.stderr,
        )
        return False
    try:
        # Loopback only, whatever --host says: whoever reaches this port reads it without a token.
        start_http_server(port, addr="127.0.0.1", registry=scrape_registry())
    except OSError as e:
        print(f"rfr serve: cannot serve the metrics on 127.0.0.1:{port}: {e}", file=sys.stderr)
        return False
    print(f"  Live metrics (no token, loopback only): http://127.0.0.1:{port}/metrics", flush=True)
    return True


def _banner(base: str, settings: Settings, token_file: Path | None, admin: str) -> None:
    from rfr.entrypoints.http.app import OPENAPI_JSON_PATH, SCHEMA_PATH
    from rfr.entrypoints.http.swagger_ui import CONSOLE_PATH
    from rfr.entrypoints.web.security import WEB_PATH

    print(f"rfr API on {base}  (data: {settings.data_dir}, store: {settings.persistence})", flush=True)
    print(f"  Web client:                    {base}{WEB_PATH}/  (sign in with a bearer token)", flush=True)
    print(f"  API reference (works offline): {base}{SCHEMA_PATH}", flush=True)
    print(f"  Interactive console (Swagger): {base}{SCHEMA_PATH}{CONSOLE_PATH}", flush=True)
    print(f"  OpenAPI document:              {base}{OPENAPI_JSON_PATH}", flush=True)
    if token_file is not None:
        print(
            f"  New installation: administrator {admin!r} was created. Their one-time token "
            f"is in {token_file} (mode 0600).\n  Exchange it: POST {base}/tokens/exchange with "
            "'Authorization: Bearer <that token>', keep the bearer token returned, then delete the file;\n"
            f"  that bearer token also signs you in to the web client at {base}{WEB_PATH}/.",
            flush=True,
        )
