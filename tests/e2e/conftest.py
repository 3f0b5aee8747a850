"""Fixtures for the end-to-end tests: a headless chromium driven by Playwright (the system
they drive is `make demo` itself, started by test_e2e_installed.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from devplane_dev.browser import CHROMIUM, CHROMIUM_ARGS
from e2e_browser import Shots
from playwright.sync_api import Browser, Page, sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: Playwright's sync API keeps an event loop marked as running
    # in this thread while it is open, which would break every later test that calls
    # asyncio.run() ("cannot be called from a running event loop").
    with sync_playwright() as pw:
        # Debian's chromium, never a downloaded one: the machines are offline.
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name)


@pytest.fixture
def new_page(browser: Browser, shots: Shots) -> Iterator:
    """Factory for pages in separate browser contexts (separate cookie jars = separate people)."""
    contexts = []

    def make() -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
