"""One composition root: the HTTP API, the worker and the CLI run on one ``Services`` (ADR 0009).

Each builds it from ``Settings`` and takes the application, the clock, the biometrics and every
use case from it; the biometrics are built once, on first use, whichever thread asks first.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from litestar import Litestar
from litestar.datastructures import State

from rfr.application.app import RfrApplication
from rfr.application.services.base import UseCase
from rfr.application.services.biometric_support import Biometrics
from rfr.entrypoints import composition
from rfr.entrypoints.cli import main
from rfr.entrypoints.cli import report as report_cli
from rfr.entrypoints.cli import worker as worker_cli
from rfr.entrypoints.composition import BiometricOptions, Services
from rfr.entrypoints.http.app import create_app
from rfr.entrypoints.http.context import STATE_KEY, context_of
from rfr.infrastructure.persistence import application_env
from rfr.infrastructure.settings import Settings

# Every use case ``Services`` offers without arguments; ``access()`` is checked apart.
USE_CASES = (
    "audit",
    "users",
    "policy_settings",
    "policy_exceptions",
    "offences",
    "legal_holds",
    "libraries",
    "library_approvals",
    "enrolment",
    "import_jobs",
    "probes",
    "endorsements",
    "searches",
    "search_execution",
    "ucc",
    "ucc_screening",
    "erasure",
    "usage_reports",
    "report_schedules",
    "report_delivery",
    "retention_sweep",
)
BIOMETRIC_USE_CASES = {"enrolment", "probes", "search_execution", "ucc_screening", "erasure"}


class StillClock:
    def now(self) -> datetime:
        return datetime(2024, 3, 1, 9, tzinfo=UTC)


class CountingBiometrics:
    """A biometrics factory that counts its calls; slow, so racing threads overlap."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> Biometrics:
        self.calls += 1
        time.sleep(0.05)
        return cast(Biometrics, object())


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, persistence="memory")


def _memory_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RFR_PERSISTENCE", "memory")


def test_every_use_case_runs_on_the_one_application_and_clock(tmp_path: Path) -> None:
    clock = StillClock()
    factory = CountingBiometrics()
    with Services(_settings(tmp_path), clock=clock, biometrics=factory) as services:
        for name in USE_CASES:
            use_case = getattr(services, name)
            assert isinstance(use_case, UseCase), name
            assert use_case.app is services.app and use_case.clock is clock, name
        assert services.access().app is services.app
        for name in BIOMETRIC_USE_CASES:
            assert getattr(services, name).bio is services.biometrics, name
    assert factory.calls == 1


def test_biometrics_are_built_on_first_use_once_whichever_thread_asks(tmp_path: Path) -> None:
    factory = CountingBiometrics()
    with Services(_settings(tmp_path), biometrics=factory) as services:
        # A use case without biometrics opens none; nor does the sweep, until it must erase.
        assert services.searches and services.retention_sweep
        assert factory.calls == 0
        seen: list[Biometrics] = []
        threads = [threading.Thread(target=lambda: seen.append(services.biometrics)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert factory.calls == 1
        assert len(seen) == 8 and all(b is seen[0] for b in seen)
        assert services.open_biometrics() is seen[0]


def test_default_biometrics_are_the_embedded_ones_built_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[tuple[Settings, BiometricOptions | None]] = []

    def fake_build(settings: Settings, options: BiometricOptions | None = None) -> Biometrics:
        built.append((settings, options))
        return cast(Biometrics, object())

    monkeypatch.setattr(composition, "build_biometrics", fake_build)
    options = BiometricOptions(max_pixels=1000, top_k=3)
    with Services(_settings(tmp_path), biometric_options=options) as services:
        assert services.probes.bio is services.enrolment.bio
    assert built == [(_settings(tmp_path), options)]


def test_services_close_only_the_application_they_opened(tmp_path: Path) -> None:
    app = RfrApplication(env=application_env(_settings(tmp_path)))
    borrowed = Services(_settings(tmp_path), application=app)
    assert borrowed.app is app and not borrowed.owns_app
    owned = Services(_settings(tmp_path))
    assert owned.owns_app and owned.app is not app
    closed: list[str] = []
    app.close = lambda: closed.append("borrowed")  # type: ignore[method-assign]
    owned.app.close = lambda: closed.append("owned")  # type: ignore[method-assign]
    borrowed.close()
    owned.close()
    assert closed == ["owned"]


class SpyServices(Services):
    """``Services`` that remember each one built and each use case taken from them."""

    built: list[SpyServices] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kwargs = kwargs
        self.taken: list[str] = []
        self.closed = False
        SpyServices.built.append(self)

    def __getattribute__(self, name: str) -> Any:
        if name in USE_CASES:
            object.__getattribute__(self, "taken").append(name)
        return super().__getattribute__(name)

    def close(self) -> None:
        self.closed = True
        super().close()


def _http_dependencies(api: Litestar) -> dict[str, Any]:
    """Every use case dependency of every route, resolved as a request would resolve it."""
    state = State({STATE_KEY: context_of(api)})
    found: dict[str, Any] = {}
    for route in api.routes:
        for handler in getattr(route, "route_handlers", ()):
            for name, provide in handler.resolve_dependencies().items():
                if name != "principal":
                    found[f"{handler} {name}"] = provide.dependency(state)
    return found


def test_the_http_api_takes_every_use_case_from_its_services(tmp_path: Path) -> None:
    factory = CountingBiometrics()
    services = SpyServices(_settings(tmp_path), clock=StillClock(), biometrics=factory)
    try:
        api = create_app(_settings(tmp_path), services=services, bootstrap=False)
        context = context_of(api)
        assert context.services is services
        assert context.app is services.app and context.clock is services.clock
        resolved = _http_dependencies(api)
        use_cases = {k: v for k, v in resolved.items() if isinstance(v, UseCase)}
        assert len(use_cases) >= 15
        for where, use_case in use_cases.items():
            assert use_case.app is services.app and use_case.clock is services.clock, where
        # Every use case but the worker's is taken from the services by some route.
        assert set(services.taken) == set(USE_CASES) - {"report_delivery", "retention_sweep"}
        # Probes, enrolment, searching, screening and erasure each ask; one build serves all.
        assert factory.calls == 1
        # A caller's services are the caller's to close.
        assert api.on_shutdown == []
    finally:
        services.close()


def test_create_app_builds_its_services_over_a_given_application_and_clock(tmp_path: Path) -> None:
    clock = StillClock()
    with Services(_settings(tmp_path)) as outer:
        api = create_app(_settings(tmp_path), application=outer.app, clock=clock, bootstrap=False)
        services = context_of(api).services
        assert services.app is outer.app and services.clock is clock and not services.owns_app
        with pytest.raises(ValueError):
            create_app(_settings(tmp_path), services=outer, clock=clock)
    own = create_app(_settings(tmp_path), bootstrap=False)
    assert context_of(own).services.owns_app
    assert own.on_shutdown == [context_of(own).services.close]
    context_of(own).services.close()


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> type[SpyServices]:
    SpyServices.built = []
    monkeypatch.setattr(worker_cli, "Services", SpyServices)
    monkeypatch.setattr(report_cli, "Services", SpyServices)
    return SpyServices


def test_the_worker_runs_on_one_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: type[SpyServices]
) -> None:
    _memory_env(tmp_path, monkeypatch)
    monkeypatch.setenv("RFR_SEARCH_TOP_K", "7")
    assert main(["worker", "--once"]) == 0
    (services,) = spy.built
    assert services.taken == ["report_delivery", "retention_sweep"]
    assert services.kwargs["biometric_options"] == BiometricOptions(top_k=7)
    # Nothing was due for deletion: no model was opened, and the store was closed.
    assert services._biometrics is None
    assert services.closed


def test_the_usage_report_command_runs_on_one_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spy: type[SpyServices]
) -> None:
    _memory_env(tmp_path, monkeypatch)
    # Nobody is registered in a fresh store: the report is refused.
    assert main(["report", "usage", "--user", "nobody"]) == report_cli.EXIT_REFUSED
    (services,) = spy.built
    assert services.taken == ["usage_reports"]
    assert services.kwargs["create_tables"] is False
    assert services.closed
