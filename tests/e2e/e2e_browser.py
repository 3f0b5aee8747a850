"""What a person does in the browser, as Playwright steps: sign in, start, use the terminal.

The terminal text is read from xterm.js's own buffer (ttyd exposes its Terminal as
`window.term`): that is exactly what the page shows, without depending on the renderer.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root in a container; chromium's sandbox needs user namespaces
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
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


def start_from_spawn_page(page: Page, hub_url: str, username: str, shots: Shots) -> list[str]:
    """Start the server from the spawn form (if profiles are offered) and watch the progress
    page until the terminal shows up. Returns the progress messages seen."""
    if "/hub/spawn" not in page.url or "/spawn-pending/" in page.url:
        page.goto(f"{hub_url}/hub/spawn")
    if page.locator("#spawn_form").count():
        shots(page, "spawn-form")
        page.click("#spawn_form button[type=submit]")
    messages: list[str] = []
    deadline = time.monotonic() + 120
    terminal_url = f"{hub_url}/user/{username}/"
    while not page.url.startswith(terminal_url):
        assert time.monotonic() < deadline, f"never reached the terminal; at {page.url}"
        if "/spawn-pending/" in page.url:
            try:
                text = page.locator("#progress-message").inner_text(timeout=1000).strip()
            except Exception:  # the page navigated away between the check and the read
                text = ""
            if text and text not in messages:
                messages.append(text)
                shots(page, f"progress-{len(messages)}")
            # The hub marks a failed start by turning the bar red: fail now, with its words.
            if page.locator("#progress-bar.bg-danger").count():
                shots(page, "spawn-failed")
                raise AssertionError(f"the workspace failed to start: {messages[-1:]}")
        time.sleep(0.2)
    return messages


def wait_for_terminal(page: Page, timeout: float = 60) -> None:
    page.wait_for_selector(".xterm", timeout=timeout * 1000)
    page.wait_for_function(
        "() => window.term && window.term.buffer && window.term.buffer.active",
        timeout=timeout * 1000,
    )


def terminal_text(page: Page) -> str:
    return page.evaluate(
        """() => {
            const buf = window.term.buffer.active;
            const lines = [];
            for (let i = 0; i < buf.length; i++) {
                const line = buf.getLine(i);
                if (line) lines.push(line.translateToString(true));
            }
            return lines.join("\\n");
        }"""
    )


def wait_for_text(page: Page, pattern: str, timeout: float = 30) -> str:
    """Wait until the terminal shows text matching ``pattern`` (a regex); returns the screen."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = terminal_text(page)
        if regex.search(text):
            return text
        time.sleep(0.25)
    raise AssertionError(f"terminal never showed {pattern!r}; it shows:\n{text[-2000:]}")


def type_line(page: Page, line: str) -> None:
    page.locator(".xterm").click()
    page.keyboard.type(line, delay=5)
    page.keyboard.press("Enter")
