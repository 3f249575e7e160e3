"""`rfr serve`: the HTTP API on uvicorn, over the store named by RFR_DATA_DIR / RFR_PERSISTENCE."""

from __future__ import annotations

import argparse
import sys

from rfr.entrypoints.http.config import HttpSettings
from rfr.entrypoints.http.context import context_of
from rfr.infrastructure.settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    serve = subparsers.add_parser("serve", help="run the HTTP API (OpenAPI reference at /schema)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    serve.add_argument(
        "--log-level", default="info", choices=("critical", "error", "warning", "info", "debug")
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    # Imported here so other commands do not pay for the web stack.
    import uvicorn

    from rfr.entrypoints.http.app import OPENAPI_JSON_PATH, SCHEMA_PATH, create_app
    from rfr.entrypoints.http.swagger_ui import CONSOLE_PATH

    try:
        settings, http = Settings.from_env(), HttpSettings.from_env()
    except ValueError as e:
        print(f"rfr serve: {e}", file=sys.stderr)
        return 2
    api = create_app(settings, http=http)
    base = f"http://{args.host}:{args.port}"
    print(f"rfr API on {base}  (data: {settings.data_dir})", flush=True)
    print(f"  API reference (works offline): {base}{SCHEMA_PATH}", flush=True)
    print(f"  Interactive console (Swagger): {base}{SCHEMA_PATH}{CONSOLE_PATH}", flush=True)
    print(f"  OpenAPI document:              {base}{OPENAPI_JSON_PATH}", flush=True)
    token_file = context_of(api).bootstrap_token_file
    if token_file is not None:
        print(
            f"  New installation: administrator {http.bootstrap_admin!r} was created. Their one-time token "
            f"is in {token_file} (mode 0600).\n  Exchange it: POST {base}/tokens/exchange with "
            "'Authorization: Bearer <that token>', keep the bearer token returned, then delete the file.",
            flush=True,
        )
    uvicorn.run(api, host=args.host, port=args.port, log_level=args.log_level)
    return 0
