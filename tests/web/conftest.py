"""Fixtures of the web client's tests.

- ``web_server`` (session): one real ``rfr serve`` on a free loopback port (tests/http's harness,
  whose folder goes on ``sys.path`` here as tests/http's own conftest does), with its
  administrator; ``web_server.user(roles)`` makes users with bearer tokens through the API.
- ``browser`` (session): Debian's Chromium (/usr/bin/chromium), headless, driven by Playwright;
  one browser for the whole session, a new context (its own cookies) per test (``new_page``).
  Nothing is downloaded: Playwright is given the executable, and ``playwright install`` is never
  run. Without Chromium or Playwright the browser tests skip, but fail when CI=true: ``make test``
  installs Debian's chromium package when it is missing. ``$RFR_CHROMIUM`` names another executable.
- ``screenshots``: the folder screenshots of the main pages are written to, for review
  (``$RFR_SCREENSHOTS``, else tests/web/screenshots/, which git ignores).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "http"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_harness import LiveServer, start_with_admin

HERE = Path(__file__).resolve().parent
CHROMIUM = Path(os.environ.get("RFR_CHROMIUM", "/usr/bin/chromium"))
# What Chromium needs to start as root on a closed network, quietly (machines/python.md).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Every wait is on a condition; this bounds each one.
WAIT_MS = 15_000


def _unavailable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_with_admin(tmp_path_factory.mktemp("web") / "data")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed: `make test` installs the test extra")
    # Playwright starts the browser on a new, empty profile folder of its own, removed at close.
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser: Any, web_server: LiveServer) -> Iterator[Any]:
    """``new_page()``: a page in a context of its own (no cookies shared with any other)."""
    contexts = []

    def make() -> Any:
        context = browser.new_context(base_url=web_server.base_url)
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    folder = Path(os.environ.get("RFR_SCREENSHOTS", HERE / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
