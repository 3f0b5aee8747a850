"""The browser side of the tests: Debian's chromium, ttyd's terminal in a page, CSP reports.

The terminal text is read from xterm.js's own buffer (ttyd exposes its Terminal as
`window.term`): that is exactly what the page shows, without depending on the renderer.
"""

from __future__ import annotations

import re
import time

import requests
from playwright.sync_api import BrowserContext, Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # we run as root in a container; chromium's sandbox needs user namespaces
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


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


# Installed before any script of a page: every Content-Security-Policy violation it reports.
CSP_RECORDER = """(() => {
  window.devplaneCspViolations = [];
  document.addEventListener("securitypolicyviolation", (e) =>
    window.devplaneCspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`));
})()"""


def record_csp_violations(page: Page) -> None:
    """From now on, every page loaded in ``page`` records the CSP violations it reports."""
    page.add_init_script(CSP_RECORDER)


def csp_violations(page: Page) -> list[str]:
    return page.evaluate("() => window.devplaneCspViolations || []")


def add_session_cookies(context: BrowserContext, session: requests.Session, url: str) -> None:
    """Give a browser context the cookies a requests session collected at ``url`` (a login
    done with the harness's form-filling client)."""
    context.add_cookies(
        [
            {"name": c.name, "value": c.value, "url": f"{url}{c.path or '/'}"}
            for c in session.cookies
        ]
    )
