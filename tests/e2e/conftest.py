"""Fixtures for the end-to-end tests: the local runner as a subprocess, the whole demo stack
(exactly what `make demo` runs), and a headless chromium driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from devplane_dev.browser import CHROMIUM, CHROMIUM_ARGS
from devplane_dev.localrunner.stack import DemoConfig, DemoStack
from devplane_dev.procs import StartError
from e2e_browser import ARTIFACTS, Shots
from playwright.sync_api import Browser, Page, sync_playwright

START_BUDGET = 240  # seconds for the whole stack (a cold control plane included)


@pytest.fixture(scope="session")
def demo() -> Iterator[DemoStack]:
    """The system `make demo` runs, on random ports and in a fresh namespace."""
    # Kept under test-artifacts/ (not pytest's rotating tmp dirs) so the logs of every
    # component and workspace container are there to read after a failure.
    state = ARTIFACTS / "stack"
    shutil.rmtree(state, ignore_errors=True)
    stack = DemoStack(DemoConfig.for_tests(state))
    try:
        stack.start()
    except StartError as err:
        pytest.fail(f"the demo stack did not start: {err}", pytrace=False)
    assert stack.ready_after < START_BUDGET, f"the stack took {stack.ready_after:.0f}s to start"
    yield stack
    left = stack.stop()
    assert left == [], f"processes of the demo still running after stop: {left}"


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
