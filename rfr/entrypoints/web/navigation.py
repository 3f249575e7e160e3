"""The navigation: one link per area, shown only to those whose roles the area's route admits.

A page module lists its links in ``NAV`` (``NavLink(handler, label)``). Whether a user sees a
link is read from the same ``allow(...)`` declaration the access guard enforces on that route,
so a link is never shown to someone the route would refuse, and never hidden from someone it
admits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
from litestar.handlers import HTTPRouteHandler

from rfr.domain.people import Role
from rfr.entrypoints.http.access_control import route_access


@attrs.frozen
class NavLink:
    handler: HTTPRouteHandler
    label: str
    # Lower comes first.
    order: int = 50

    @property
    def admits_everyone(self) -> bool:
        access = route_access(self.handler)
        return access.public or {r.value for r in access.roles} == {r.value for r in Role}

    def admits(self, roles: Iterable[str]) -> bool:
        access = route_access(self.handler)
        return access.public or bool({r.value for r in access.roles} & set(roles))


@attrs.frozen
class ShownLink:
    href: str
    label: str
    current: bool


def navigation(links: Iterable[NavLink], roles: Iterable[str], path: str, prefix: str) -> list[ShownLink]:
    """The links ``roles`` may follow, in order; ``current`` marks the area ``path`` is in."""
    held = set(roles)
    shown = []
    for link in sorted(links, key=lambda item: (item.order, item.label)):
        if not link.admits(held):
            continue
        href = prefix + (min(link.handler.paths) if link.handler.paths else "/")
        href = href.rstrip("/") or "/"
        here = path.rstrip("/") or "/"
        current = here == href or (href != prefix and here.startswith(href + "/"))
        shown.append(ShownLink(href if href != prefix else f"{prefix}/", link.label, current))
    return shown


def role_names(roles: Iterable[Any]) -> list[str]:
    """Roles as people say them, in a fixed order."""
    return sorted(ROLE_LABELS.get(str(getattr(r, "value", r)), str(r)) for r in roles)


ROLE_LABELS = {
    "rfr_user": "RFR user",
    "approving_officer": "Approving officer",
    "sro": "Senior responsible owner",
    "operational_lead": "Operational lead",
    "administrator": "Administrator",
    "auditor": "Auditor",
    "operations": "Operations",
}
