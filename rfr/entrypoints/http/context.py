"""What every request handler shares: the one application, the clock and the settings.

``create_app`` builds one ``HttpContext`` and keeps it in the Litestar app's state; handlers
get their use cases through ``use_case``, a dependency that builds the use case on each
request from the context (use cases are cheap: they hold the application and the clock).
Anything expensive (a face engine, a biometric store) is built once per process with
``HttpContext.component(name, build)``.

    dependencies={"users": use_case(lambda ctx: UserAdministration(ctx.app, ctx.clock))}
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
from rfr.entrypoints.http.config import HttpSettings
from rfr.infrastructure.settings import Settings

T = TypeVar("T")
STATE_KEY = "rfr"


@attrs.define(eq=False)
class HttpContext:
    settings: Settings
    http: HttpSettings
    app: RfrApplication
    clock: Clock
    # Set when this start bootstrapped an empty store: where the first token was written.
    bootstrap_token_file: Path | None = None
    _components: dict[str, Any] = attrs.field(factory=dict, init=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, init=False)

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
