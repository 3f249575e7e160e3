"""Each path's ``OPTIONS`` answer lists every method the path serves (RFC 9110, issue 8).

Litestar 2 gives each path an automatic ``OPTIONS`` handler whose ``Allow`` header is read,
per request, from the route that created it (``HTTPRoute.create_options_handler`` closes over
that route). But a path is registered one handler at a time: when a second handler adds a
method (``GET`` and ``POST`` as two functions, or in two routers), Litestar builds a new route
with every handler and keeps the first route's ``OPTIONS`` handler, which still answers with
the first route's methods only. Litestar bug 4169, fixed in Litestar 3 only.

``answer_options_for_served_routes`` points each automatic ``OPTIONS`` handler at the route
the application actually serves. Nothing else changes: the same handler answers (public, as
``access_control.is_automatic_options`` says), and a wrong method was already a 405 whose
``Allow`` lists the path's methods (Litestar's router reads them from the served route).
"""

from __future__ import annotations

from litestar import Litestar
from litestar.routes import HTTPRoute

from rfr.entrypoints.http.access_control import is_automatic_options

# The name under which Litestar's automatic OPTIONS handler holds the route it answers for.
_ROUTE_VARIABLE = "self"


def answer_options_for_served_routes(app: Litestar) -> None:
    """Makes each path's automatic ``OPTIONS`` handler list the methods of ``app``'s route."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or "OPTIONS" not in route.route_handler_map:
            continue
        handler, _ = route.route_handler_map["OPTIONS"]
        if not is_automatic_options(handler):
            continue  # an OPTIONS handler of our own answers for itself
        fn = handler.fn
        names = fn.__code__.co_freevars
        if _ROUTE_VARIABLE not in names or fn.__closure__ is None:
            continue  # not the handler this works around (a Litestar that fixed it)
        cell = fn.__closure__[names.index(_ROUTE_VARIABLE)]
        if isinstance(cell.cell_contents, HTTPRoute):
            cell.cell_contents = route
