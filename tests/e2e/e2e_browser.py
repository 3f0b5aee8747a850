"""What a person does in the browser, as Playwright steps: sign in and start a workspace.

Reading and typing into the terminal are the harness's (``devplane_dev.browser``), shared with
the auth proxy's browser test.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"


class Shots:
    """Numbered screenshots for one test: test-artifacts/e2e/<test>/<NN>-<step>.png."""

    def __init__(self, test_name: str) -> None:
        self.dir = ARTIFACTS / re.sub(r"[^\w.-]+", "_", test_name)
        self.dir.mkdir(parents=True, exist_ok=True)
        for old in self.dir.glob("*.png"):
            old.unlink()
        self.count = 0

    def __call__(self, page: Page, step: str) -> Path:
        self.count += 1
        path = self.dir / f"{self.count:02d}-{step}.png"
        page.screenshot(path=str(path))
        return path


def sign_in(page: Page, hub_url: str, username: str, password: str, shots: Shots) -> None:
    """From the hub's front door through the OIDC provider's login form, back to the hub."""
    page.goto(f"{hub_url}/hub/login")
    # The hub may show a "Sign in with ..." button first, or auto-redirect to the provider.
    if "/hub/login" in page.url:
        shots(page, "hub-login")
        page.click("a[href*='oauth_login']")
    page.wait_for_selector("input[name=username]", timeout=15_000)
    assert "/interaction/" in page.url, f"expected the OIDC login page, got {page.url}"
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    shots(page, "oidc-login")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(re.escape(hub_url) + r"/(hub|user)/"), timeout=30_000)


# Installed before any script of every page: each event a progress stream delivers to the
# page is kept in window.devplaneProgress, in arrival order (the hub's spawn-pending page
# follows the stream with an EventSource).
PROGRESS_RECORDER = """(() => {
  const Native = window.EventSource;
  if (!Native || window.devplaneProgress) return;
  window.devplaneProgress = [];
  window.EventSource = class extends Native {
    constructor(url, init) {
      super(url, init);
      this.addEventListener("message", (e) => {
        if (String(url).includes("/progress")) window.devplaneProgress.push(JSON.parse(e.data));
      });
    }
  };
})()"""


def record_progress(page: Page) -> None:
    """From now on, every page loaded in ``page`` records the progress events it receives."""
    page.add_init_script(PROGRESS_RECORDER)


# The same, handing each event to Python as it arrives: kept when the page then navigates
# on to the server (window.devplaneProgress goes with the page that had it).
PROGRESS_FORWARDER = """(() => {
  const Native = window.EventSource;
  if (!Native || window.devplaneForwarding) return;
  window.devplaneForwarding = true;
  window.EventSource = class extends Native {
    constructor(url, init) {
      super(url, init);
      this.addEventListener("message", (e) => {
        if (String(url).includes("/progress")) window.devplaneProgressEvent(e.data);
      });
    }
  };
})()"""


def forward_progress(page: Page) -> list[dict]:
    """A list that receives, in arrival order, every progress event any page loaded in
    ``page`` from now on receives, whatever page it then goes on to."""
    received: list[dict] = []
    page.expose_function("devplaneProgressEvent", lambda data: received.append(json.loads(data)))
    page.add_init_script(PROGRESS_FORWARDER)
    return received


def progress_received(page: Page) -> list[dict]:
    """The progress events the current page has received so far."""
    return page.evaluate("() => window.devplaneProgress || []")


def request_start(page: Page, hub_url: str, username: str, shots: Shots) -> None:
    """Submit the spawn form (if profiles are offered) and land on the spawn-pending page.

    Only for a spawn that cannot finish yet (see e2e_support.runner_held): a start already
    done when the pending page loads is sent straight on to the server."""
    if "/hub/spawn" not in page.url or "/spawn-pending/" in page.url:
        page.goto(f"{hub_url}/hub/spawn")
    if page.locator("#spawn_form").count():
        shots(page, "spawn-form")
        page.click("#spawn_form button[type=submit]")
    pending = f"{hub_url}/hub/spawn-pending/{username}"
    page.wait_for_url(lambda url: url.startswith(pending), timeout=30_000)


def wait_for_progress(page: Page, message: str, timeout: float = 45) -> list[dict]:
    """Until the page has received a progress event saying ``message`` (or a failure)."""
    with contextlib.suppress(PlaywrightTimeoutError):  # reported below, with what it did get
        page.wait_for_function(
            """(message) => (window.devplaneProgress || []).some(
                (e) => e.message === message || e.failed)""",
            arg=message,
            timeout=timeout * 1000,
        )
    events = progress_received(page)
    assert any(e.get("message") == message for e in events), (
        f"the spawn-pending page never received {message!r}; it received: {events}"
    )
    return events


def wait_for_server_page(page: Page, hub_url: str, username: str, timeout: float = 90) -> None:
    """Until the browser has been taken to the user's server (the terminal's URL)."""
    server = f"{hub_url}/user/{username}/"
    page.wait_for_url(lambda url: url.startswith(server), timeout=timeout * 1000)
