"""Who reaches a terminal: the owner over HTTP and WebSocket; nobody else, no URL tokens.

Everything is real: JupyterHub with its OAuth, configurable-http-proxy, the DevPlane auth
proxy as each user's server, ttyd on a unix socket, tmux.
"""

from __future__ import annotations

import asyncio
import re

import pytest
import requests
from devplane_dev.ttyd_client import handshake_status


def test_readiness_check_answers_with_hub_version(deployment):
    response = requests.get(f"{deployment.hub.url}/user/alice/api", timeout=10)
    assert response.status_code == 200
    assert response.headers["X-JupyterHub-Version"] == response.json()["version"]


def test_no_identity_is_sent_to_hub_login(deployment):
    hub = deployment.hub
    first = requests.get(f"{hub.url}/user/alice/", allow_redirects=False, timeout=10)
    assert first.status_code == 302
    assert first.headers["Location"].startswith("/hub/api/oauth2/authorize?")
    assert "client_id=jupyterhub-user-alice" in first.headers["Location"]
    # Followed like a browser, the OAuth flow ends on the hub's login form.
    final = requests.get(f"{hub.url}/user/alice/", timeout=10)
    assert final.url.startswith(f"{hub.url}/hub/login")
    assert 'name="password"' in final.text


def test_owner_gets_ttyd_page_with_httponly_cookie_and_no_external_assets(deployment):
    hub = deployment.hub
    alice = hub.login("alice")
    page = hub.open_server(alice, "alice")
    assert page.status_code == 200
    assert page.url == f"{hub.url}/user/alice/"
    assert "<title>ttyd - Terminal</title>" in page.text
    # Air-gapped: the page must not pull scripts, styles or fonts from anywhere.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text)
    cookie = next(c for c in alice.cookies if c.name == "jupyterhub-user-alice")
    assert cookie.path == "/user/alice/"
    assert cookie.has_nonstandard_attr("HttpOnly")


def test_ttyd_token_fetch_from_the_page_does_not_loop_through_login(deployment):
    """ttyd's page fetch()es ``token`` before connecting; the hub's xsrf rules would refuse
    the cookie on such a request, so the proxy answers it itself (ttyd has no credential)."""
    hub = deployment.hub
    alice = hub.login("alice")
    hub.open_server(alice, "alice")
    fetch_headers = {"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "same-origin"}
    for session in (alice, requests.Session()):  # the owner, and nobody at all
        response = session.get(
            f"{hub.url}/user/alice/token", headers=fetch_headers, allow_redirects=False, timeout=10
        )
        assert response.status_code == 200, response.headers.get("Location")
        assert response.json() == {"token": ""}


async def test_owner_types_a_command_and_reads_its_output(deployment):
    hub = deployment.hub
    alice = hub.login("alice")
    async with await hub.open_terminal(alice, "alice") as term:
        # The shell computes 42, so a match is output, not the echo of what we typed.
        await term.run("echo owner-$((6*7))-ok", r"owner-42-ok")


async def test_reconnect_lands_in_the_same_tmux_session(deployment):
    hub = deployment.hub
    alice = hub.login("alice")
    async with await hub.open_terminal(alice, "alice") as first:
        await first.run(
            "export DP_MARK=mark-$((100+23)); echo scrollback-$((7*6))", r"scrollback-42"
        )

    async with await hub.open_terminal(alice, "alice") as second:
        # Reattaching redraws the screen: the earlier output is there without typing.
        await second.read_until(r"scrollback-42")
        # And it is the same shell: the variable set before the reconnect is still set.
        await second.run('echo "again-$DP_MARK"', r"again-mark-123")
    sessions = deployment.workspaces["alice"].tmux("list-sessions", "-F", "#{session_name}")
    assert sessions.split() == ["main"]


async def test_other_user_is_refused_on_http_and_websocket(deployment):
    hub = deployment.hub
    bob = hub.login("bob")
    # The hub itself refuses to hand bob a token for alice's server.
    assert hub.open_server(bob, "alice").status_code == 403
    status = await handshake_status(
        hub.ws_url("alice"), hub.cookie_header(bob, "/user/alice/ws"), hub.origin
    )
    assert status == 403


async def test_admin_with_a_valid_token_is_refused_unless_the_workspace_allows_it(deployment):
    hub = deployment.hub
    admin = hub.login("admin")
    # The hub (admin_access on) completes OAuth for the admin, so the refusal below is the
    # auth proxy's own decision: alice's workspace has DEVPLANE_ALLOW_ADMIN_ACCESS=false.
    refused = hub.open_server(admin, "alice")
    assert refused.status_code == 403
    assert refused.url == f"{hub.url}/user/alice/"
    assert any(c.name == "jupyterhub-user-alice" for c in admin.cookies)
    status = await handshake_status(
        hub.ws_url("alice"), hub.cookie_header(admin, "/user/alice/ws"), hub.origin
    )
    assert status == 403

    # carol's workspace follows the hub's admin_access (JUPYTERHUB_ADMIN_ACCESS=1).
    assert hub.open_server(admin, "carol").status_code == 200
    async with await hub.open_terminal(admin, "carol") as term:
        await term.run("echo admin-$((40+2))", r"admin-42")


async def test_a_token_in_the_url_is_never_accepted(deployment):
    hub = deployment.hub
    scopes = {"scopes": ["access:servers!user=alice"]}
    token = hub.api("POST", "/users/alice/tokens", expect=(200, 201), json=scopes).json()["token"]
    # The token is valid for alice's server, but only as a header/cookie, never in a URL.
    response = await asyncio.to_thread(
        requests.get, f"{hub.url}/user/alice/?token={token}", allow_redirects=False, timeout=10
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/hub/api/oauth2/authorize?")
    status = await handshake_status(f"{hub.ws_url('alice')}?token={token}", "", hub.origin)
    assert status == 403


# Origins that are not the hub's own (http://127.0.0.1:PORT), by the trick they try.
ORIGIN_TRICKS = {
    "evil": "http://evil.example",
    "missing": None,  # a client that sends none is not a browser on our page either
    "null": "null",  # sandboxed frames and file: pages
    "suffix": "http://{netloc}.evil.example",
    "userinfo, ours as the user": "http://{netloc}@evil.example",
    "userinfo, ours as the host": "http://evil@{netloc}",
    "another port": "http://127.0.0.1:{other_port}",
    "https on an http host": "https://{netloc}",  # finding 13: the scheme was not compared
    "ours with a path": "http://{netloc}/user/alice/",
}


@pytest.mark.parametrize("trick", list(ORIGIN_TRICKS))
async def test_websocket_from_another_origin_is_refused(deployment, trick):
    hub = deployment.hub
    alice = await asyncio.to_thread(hub.login, "alice")
    await asyncio.to_thread(hub.open_server, alice, "alice")
    cookie = hub.cookie_header(alice, "/user/alice/ws")
    template = ORIGIN_TRICKS[trick]
    netloc = hub.origin.split("://", 1)[1]
    origin = template and template.format(netloc=netloc, other_port=hub.port + 1)
    assert await handshake_status(hub.ws_url("alice"), cookie, origin) == 403
    # The same cookie from the hub's own origin opens the terminal.
    assert await handshake_status(hub.ws_url("alice"), cookie, hub.origin) == 101
