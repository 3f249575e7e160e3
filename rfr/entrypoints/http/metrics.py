"""Counting every HTTP request the API answers, by route template and status (ADR 0024).

``count_requests(api)`` wraps the application's ASGI handler, inside Litestar's entry point but
outside its router and exception handling, so every answer is counted: a 404 for a path no
route serves, a 401 from the guard, a 500 turned into a problem. The route label is the
template of the route that matched (``/probes/{probe_id}``), never the path asked for, so no id
a caller puts in a URL becomes a label; a path no route matched counts as ``unmatched``.
"""

from __future__ import annotations

import time
from typing import Any

from litestar import Litestar

from rfr.infrastructure.metrics import HTTP_LATENCY, HTTP_REQUESTS

UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def count_requests(api: Litestar) -> None:
    api.asgi_handler = _Counted(api.asgi_handler)


class _Counted:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self._inner(scope, receive, send)
            return
        status = 500  # what the server answers if the application sends nothing
        started = time.perf_counter()
        counted = False

        def count() -> None:
            nonlocal counted
            counted = True
            # The router put the matched route's template in the scope (the same dict).
            route = scope.get("path_template") or UNMATCHED
            method = scope.get("method", "")
            method = method if method in _METHODS else "OTHER"
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)

        async def counting(message: Any) -> None:
            nonlocal status
            kind = message.get("type")
            if kind == "http.response.start":
                status = int(message["status"])
            elif kind == "http.response.body" and not message.get("more_body", False) and not counted:
                # Before the last byte goes: whoever has read the answer finds it counted.
                count()
            await send(message)

        try:
            await self._inner(scope, receive, counting)
        finally:
            if not counted:  # no complete answer was sent (an error, a client gone)
                count()
