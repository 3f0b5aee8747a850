"""What a person does in the browser, as Playwright steps: sign in and start a workspace.

Reading and typing into the terminal are the harness's (``devplane_dev.browser``), shared with
the auth proxy's browser test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Page

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
# page (the hub's spawn-pending page follows the stream with an EventSource) is handed to
# Python as it arrives, so it is kept when the page then navigates on to the server.
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


def wait_for_server_page(page: Page, hub_url: str, username: str, timeout: float = 90) -> None:
    """Until the browser has been taken to the user's server (the terminal's URL)."""
    server = f"{hub_url}/user/{username}/"
    page.wait_for_url(lambda url: url.startswith(server), timeout=timeout * 1000)
