"""What every request handler shares: the composition root's one ``Services`` and the HTTP settings.

``create_app`` builds one ``HttpContext`` around the ``Services`` of
``rfr.entrypoints.composition`` (the application, the clock, the biometrics and every use
case, the same object the worker and the CLI build) and keeps it in the Litestar app's
state. Handlers get their use cases through ``use_case``, a dependency that takes the use case
from ``context.services`` on each request (use cases are cheap: they hold the application and
the clock; the biometrics are built once per process by ``Services``). Anything else the API
alone keeps per process (the runner of import jobs; the jobs themselves are stored, ADR 0017) is
built once with ``HttpContext.component(name, build)``.

    dependencies={"users": use_case(lambda ctx: ctx.services.users)}
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import attrs
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide

from rfr.application.app import RfrApplication
from rfr.application.ports import Clock
from rfr.entrypoints.composition import Services
from rfr.entrypoints.http.config import HttpSettings
from rfr.infrastructure.settings import Settings

T = TypeVar("T")
STATE_KEY = "rfr"


@attrs.define(eq=False)
class HttpContext:
    services: Services
    http: HttpSettings
    # Set when this start bootstrapped an empty store: where the first token was written.
    bootstrap_token_file: Path | None = None
    _components: dict[str, Any] = attrs.field(factory=dict, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def app(self) -> RfrApplication:
        """The one application (``services.app``)."""
        return self.services.app

    @property
    def clock(self) -> Clock:
        return self.services.clock

    def component(self, name: str, build: Callable[[HttpContext], T]) -> T:
        """The process-wide instance named ``name``, built by ``build(self)`` on first use."""
        with self._lock:
            if name not in self._components:
                self._components[name] = build(self)
            return self._components[name]


def context_of(app: Litestar) -> HttpContext:
    return app.state[STATE_KEY]


def use_case(build: Callable[[HttpContext], T]) -> Provide:
    """A dependency that gives a handler ``build(context)``; see the module docstring."""

    def provide(state: State) -> Any:
        return build(state[STATE_KEY])

    return Provide(provide, sync_to_thread=False)
