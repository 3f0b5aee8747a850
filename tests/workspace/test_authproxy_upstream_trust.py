"""What the auth proxy sends to the ttyd socket, and what it lets come back from it.

The workspace's owner controls whatever answers on the ttyd socket. mallory's workspace has her
own server there (``devplane_dev.hostile_ttyd``): it records every request head it receives,
answers pages with its own HTML and a ``Set-Cookie`` for the hub's login cookie, and upgrades
WebSockets with the same cookie. Her workspace lets hub admins in, as carol's does.
"""

from __future__ import annotations

import asyncio

import pytest
import requests
from devplane_dev.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    add_session_cookies,
    csp_violations,
    record_csp_violations,
    type_line,
    wait_for_terminal,
    wait_for_text,
)
from devplane_dev.ttyd_client import TtydSession, handshake_status
from devplane_dev.ttyd_page import fetch_page
from playwright.sync_api import sync_playwright

from devplane_authproxy.terminal_page import TerminalPage

INJECTED_PATHS = ["ws%0d%0aX-Injected:%20yes", "ws%0aX-Injected:%20yes", "ws%00", "ws%09x"]


@pytest.fixture(scope="module")
def mallory(deployment) -> requests.Session:
    session = deployment.hub.login("mallory")
    deployment.hub.open_server(session, "mallory")
    return session


@pytest.mark.parametrize("path", INJECTED_PATHS)
async def test_control_characters_in_the_path_are_refused_before_the_upstream(
    deployment, mallory, path
):
    """Finding 8: a percent-decoded CR LF written into the upstream request was a header."""
    hub = deployment.hub
    seen = len(deployment.hostile.requests())
    cookie = hub.cookie_header(mallory, "/user/mallory/ws")
    assert await handshake_status(hub.ws_url("mallory", path), cookie, hub.origin) == 400
    response = await asyncio.to_thread(
        mallory.get, f"{hub.url}/user/mallory/{path}", allow_redirects=False, timeout=10
    )
    assert response.status_code == 400
    assert "control character" in response.text
    delivered = deployment.hostile.requests()[seen:]
    assert not [line for head in delivered for line in head if "X-Injected" in line]


def _hostile_cookies(responses: list[requests.Response]) -> list[str]:
    return [
        value
        for response in responses
        for name, value in response.raw.headers.items()
        if name.lower() == "set-cookie" and "hostile" in value
    ]


async def test_an_admin_gets_the_proxy_s_page_and_no_cookie_from_the_owner_s_socket(deployment):
    """Finding 1: the page and headers of whatever answers on the ttyd socket reached any
    admin who opened the workspace, on the hub's origin; a Set-Cookie replaced the admin's
    hub login cookie."""
    hub = deployment.hub
    admin = await asyncio.to_thread(hub.login, "admin")
    hub_cookie = admin.cookies.get("jupyterhub-hub-login", path="/hub/")
    page = await asyncio.to_thread(hub.open_server, admin, "mallory")
    assert page.status_code == 200
    assert page.content == TerminalPage.load().html
    assert "HOSTILE-PAGE" not in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp
    assert "connect-src 'self'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert not _hostile_cookies([*page.history, page])

    seen = len(deployment.hostile.requests())
    session = await TtydSession.open(
        hub.ws_url("mallory"), cookie=hub.cookie_header(admin, "/user/mallory/ws"),
        origin=hub.origin,
    )  # fmt: skip
    try:
        # The terminal stream itself is the owner's (it is her shell), and it gets through.
        await session.read_until(r"HOSTILE-OUTPUT")
        assert "set-cookie" not in {name.lower() for name in session.ws.response.headers}
    finally:
        await session.close()
    assert admin.cookies.get("jupyterhub-hub-login", path="/hub/") == hub_cookie
    assert "hostile-cookie" not in hub.cookie_header(admin, "/hub/")

    # Nothing but the WebSocket was asked of the socket, and nothing of the admin's with it.
    delivered = deployment.hostile.requests()[seen:]
    assert delivered, "the terminal's WebSocket never reached the socket"
    for head in delivered:
        assert head[0] == "GET /ws HTTP/1.1"
        names = {line.split(":", 1)[0].lower() for line in head[1:]}
        assert names == {
            "host", "upgrade", "connection", "sec-websocket-version", "sec-websocket-key",
            "sec-websocket-protocol",
        }  # fmt: skip


async def test_only_the_terminal_s_paths_are_served(deployment, mallory):
    """Nothing under the prefix but the page, ``token`` and ``ws`` reaches anyone, and nothing
    but the WebSocket reaches the socket."""
    hub = deployment.hub
    seen = len(deployment.hostile.requests())
    for path in ("index.html", "ws", "assets/app.js", "x/"):
        response = await asyncio.to_thread(
            mallory.get, f"{hub.url}/user/mallory/{path}", allow_redirects=False, timeout=10
        )
        assert response.status_code in {400, 404}, path
        assert "HOSTILE" not in response.text
    response = await asyncio.to_thread(
        mallory.post, f"{hub.url}/user/mallory/", data="x", allow_redirects=False, timeout=10
    )
    assert response.status_code in {403, 405}
    assert deployment.hostile.requests()[seen:] == []


def test_the_proxy_s_copy_is_the_page_the_pinned_ttyd_serves(deployment):
    """The copy in the package is ttyd's own page: alice's workspace runs the pinned ttyd.
    After a ttyd upgrade, ``python -m devplane_dev.ttyd_page`` refreshes the copy."""
    assert fetch_page(deployment.workspaces["alice"].socket) == TerminalPage.load().html


def test_in_a_browser_the_page_runs_under_its_policy_and_the_socket_sets_no_cookie(deployment):
    """The page's Content-Security-Policy lets ttyd's terminal work (not one violation), and
    an admin's browser that opened mallory's terminal keeps its own hub cookie."""
    hub = deployment.hub
    alice = hub.login("alice")
    admin = hub.login("admin")
    hub.open_server(admin, "mallory")  # the OAuth dance (and the hub's "authorize" form)
    hub_cookie = admin.cookies.get("jupyterhub-hub-login", path="/hub/")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            add_session_cookies(context, alice, hub.url)
            page = context.new_page()
            record_csp_violations(page)
            page.goto(f"{hub.url}/user/alice/")
            wait_for_terminal(page)
            type_line(page, "echo csp-$((6*7))-ok")
            wait_for_text(page, r"csp-42-ok")
            assert csp_violations(page) == []

            context = browser.new_context()
            add_session_cookies(context, admin, hub.url)
            page = context.new_page()
            page.goto(f"{hub.url}/user/mallory/")
            wait_for_terminal(page)
            wait_for_text(page, r"HOSTILE-OUTPUT")  # her stream, in the proxy's page
            assert "HOSTILE-PAGE" not in page.content()
            kept = {c["name"]: c["value"] for c in context.cookies(f"{hub.url}/hub/")}
            assert kept["jupyterhub-hub-login"] == hub_cookie
        finally:
            browser.close()
