"""The start page: who is signed in, with which roles, and the areas those roles open."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.response import Template

from rfr.entrypoints.http.access_control import EVERY_ROLE, allow
from rfr.entrypoints.web.layout import page
from rfr.entrypoints.web.navigation import NavLink


@get("/", summary="Start page", sync_to_thread=False, **allow(*EVERY_ROLE))
def home(request: Request[Any, Any, Any]) -> Template:
    """The areas the user's roles open."""
    return page(request, "home.html", title="Start")


ROUTES = [home]
NAV = [NavLink(home, "Start", order=0)]
