"""The review's "refused" list, kept: what an attacker tried against alice's terminal, and lost.

carol (she has a workspace of her own, so a valid cookie for it) or nobody at all attacks
alice's workspace through configurable-http-proxy, like a browser or a hand-written client
would. Tokens in URLs, other users, admins and WebSocket Origin tricks are in
test_workspace_access.py; these are the rest: cookie swaps and forgeries, tokens in
``Authorization``, path traversal, OAuth callback forgery, oversized headers and request
smuggling. Each raw request goes out byte for byte as written here (no client normalizes a
path on the way).
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import socket
from urllib.parse import urlsplit

import pytest
import requests
from devplane_dev.ttyd_client import handshake_status

_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")


def exchange(port: int, request: bytes, timeout: float = 10) -> bytes:
    """Send ``request`` to 127.0.0.1:``port`` as is; everything the server answers until it
    closes the connection (or has answered a WebSocket handshake)."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
            while data := sock.recv(65536):
                received += data
                if received.startswith(b"HTTP/1.1 101") and b"\r\n\r\n" in received:
                    break
        except ConnectionResetError:
            pass  # a server may reset a connection it refuses
    return received


def statuses(response: bytes) -> list[int]:
    return [int(code) for code in _STATUS.findall(response)]


def ws_handshake(path: str, host: str, cookie: str, origin: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Protocol: tty\r\nOrigin: {origin}\r\nCookie: {cookie}\r\n\r\n"
    ).encode()


@pytest.fixture(scope="module")
def carol(deployment) -> requests.Session:
    session = deployment.hub.login("carol")
    deployment.hub.open_server(session, "carol")
    return session


def _all_cookies(session: requests.Session) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in session.cookies)


def _page_refused(hub, cookie: str, **headers: str) -> bool:
    """alice's page with these credentials is not served: a login redirect or a refusal."""
    response = requests.get(
        f"{hub.url}/user/alice/", headers={"Cookie": cookie, **headers}, allow_redirects=False,
        timeout=10,
    )  # fmt: skip
    return response.status_code in {302, 403} and "ttyd" not in response.text


async def test_carol_s_cookie_under_alice_s_name_is_refused(deployment, carol):
    hub = deployment.hub
    value = carol.cookies.get("jupyterhub-user-carol")
    swapped = f"jupyterhub-user-alice={value}; jupyterhub-session-id=" + (
        carol.cookies.get("jupyterhub-session-id") or ""
    )
    assert await asyncio.to_thread(_page_refused, hub, swapped)
    assert await handshake_status(hub.ws_url("alice"), swapped, hub.origin) == 403
    # And all of carol's own cookies, sent to alice's workspace, are no key to it either.
    everything = _all_cookies(carol)
    assert await asyncio.to_thread(_page_refused, hub, everything)
    assert await handshake_status(hub.ws_url("alice"), everything, hub.origin) == 403


@pytest.mark.parametrize(
    "value",
    [
        "forged",
        # tornado's signed-value format, with a signature of the forger's making
        "2|1:0|10:1700000000|21:jupyterhub-user-alice|8:Zm9yZ2Vk|" + "0" * 64,
        "{token}",  # a real token of alice's, but not signed by her proxy
    ],
)
async def test_forged_cookies_are_refused(deployment, value):
    hub = deployment.hub
    scopes = {"scopes": ["access:servers!user=alice"]}
    token = hub.api("POST", "/users/alice/tokens", expect=(200, 201), json=scopes).json()["token"]
    cookie = f"jupyterhub-user-alice={value.format(token=token)}"
    assert await asyncio.to_thread(_page_refused, hub, cookie)
    assert await handshake_status(hub.ws_url("alice"), cookie, hub.origin) == 403


async def test_a_valid_token_in_an_authorization_header_is_refused(deployment):
    hub = deployment.hub
    scopes = {"scopes": ["access:servers!user=alice"]}
    token = hub.api("POST", "/users/alice/tokens", expect=(200, 201), json=scopes).json()["token"]
    for scheme in ("token", "bearer", "Bearer"):
        header = {"Authorization": f"{scheme} {token}"}
        assert await asyncio.to_thread(_page_refused, hub, "", **header)
        netloc = urlsplit(hub.url).netloc
        handshake = ws_handshake("/user/alice/ws", netloc, "", hub.origin).replace(
            b"Cookie: \r\n", f"Authorization: {scheme} {token}\r\n".encode()
        )
        assert statuses(await asyncio.to_thread(exchange, hub.port, handshake)) == [403]


TRAVERSALS = [
    "/user/carol/../alice/ws",
    "/user/carol/%2e%2e/alice/ws",
    "/user/carol/%2E%2E/alice/ws",
    "/user/carol/..%2falice/ws",
    "/user/carol/%2e%2e%2falice%2fws",
    "/user/carol//../alice/ws",
    "//user/alice/ws",
    "/user/carol/ws/../../alice/ws",
]


@pytest.mark.parametrize("path", TRAVERSALS)
async def test_path_traversal_never_reaches_alice_s_terminal(deployment, carol, path):
    hub = deployment.hub
    netloc = urlsplit(hub.url).netloc
    handshake = ws_handshake(path, netloc, _all_cookies(carol), hub.origin)
    answer = statuses(await asyncio.to_thread(exchange, hub.port, handshake))
    assert answer and answer[0] != 101, (path, answer)
    page = f"GET {path.removesuffix('ws')} HTTP/1.1\r\nHost: {netloc}\r\nCookie: "
    page += f"{_all_cookies(carol)}\r\nConnection: close\r\n\r\n"
    answer = statuses(await asyncio.to_thread(exchange, hub.port, page.encode()))
    assert answer and answer[0] != 200, (path, answer)


def _hub_cookies_only(session: requests.Session) -> requests.Session:
    """The same person, logged in to the hub, before any server gave them a cookie."""
    fresh = requests.Session()
    for cookie in session.cookies:
        if not cookie.name.startswith("jupyterhub-user-"):
            fresh.cookies.set_cookie(cookie)
    return fresh


def _oauth_redirect(session: requests.Session, hub, owner: str) -> str:
    """Start the OAuth flow for ``owner``'s server; the URL the hub sends the browser back to
    (``/user/<owner>/oauth_callback?code=...&state=...``), not followed."""
    start = session.get(f"{hub.url}/user/{owner}/", allow_redirects=False, timeout=10)
    assert start.status_code == 302, start.status_code
    authorize = session.get(hub.url + start.headers["Location"], allow_redirects=False, timeout=10)
    assert authorize.status_code == 302, authorize.status_code
    return authorize.headers["Location"]


def _sets_alice_cookie(response: requests.Response) -> bool:
    """Whether any answer on the way set alice's proxy cookie (her identity there)."""
    return any(
        value.startswith("jupyterhub-user-alice=")
        and not value.startswith('jupyterhub-user-alice=""')
        for r in [*response.history, response]
        for value in r.raw.headers.getlist("Set-Cookie")
    )


def test_oauth_callback_forgery_is_refused(deployment, carol):
    hub = deployment.hub
    callback = f"{hub.url}/user/alice/oauth_callback"
    nobody = requests.Session()
    for query in ("code=forged", "code=forged&state=forged"):
        response = nobody.get(f"{callback}?{query}", allow_redirects=False, timeout=10)
        assert response.status_code in {400, 403}, query
        assert not _sets_alice_cookie(response)

    # alice's real callback URL (code and state), replayed by someone without her state
    # cookie, is refused before the code is used: alice still completes her own login.
    alice = _hub_cookies_only(hub.login("alice"))
    real = _oauth_redirect(alice, hub, "alice")
    replayed = nobody.get(hub.url + real, allow_redirects=False, timeout=10)
    assert replayed.status_code == 403 and not _sets_alice_cookie(replayed)
    completed = alice.get(hub.url + real, allow_redirects=False, timeout=10)
    assert completed.status_code == 302 and _sets_alice_cookie(completed)

    # carol's own code (issued to her server) with a state alice's proxy gave carol: the
    # hub refuses to exchange a code issued to another client.
    carol = _hub_cookies_only(carol)
    carols_code = urlsplit(_oauth_redirect(carol, hub, "carol")).query
    code = dict(pair.split("=", 1) for pair in carols_code.split("&"))["code"]
    start = carol.get(f"{hub.url}/user/alice/", allow_redirects=False, timeout=10)
    state = dict(
        pair.split("=", 1) for pair in urlsplit(start.headers["Location"]).query.split("&")
    )["state"]
    forged = carol.get(f"{callback}?code={code}&state={state}", allow_redirects=False, timeout=10)
    assert forged.status_code >= 400 and not _sets_alice_cookie(forged)


def _with_header_of(size: int) -> bytes:
    return (
        f"GET /user/alice/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: x={'a' * size}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


@pytest.mark.parametrize("size", [20_000, 70_000])
def test_oversized_headers_are_refused_and_the_proxy_keeps_serving(deployment, size):
    hub = deployment.hub
    # chp (node) takes 16 KiB of headers, the auth proxy (tornado) 64 KiB.
    assert statuses(exchange(hub.port, _with_header_of(size))) in ([], [400], [431])
    _, proxy_port = hub.server_address("alice")
    assert statuses(exchange(proxy_port, _with_header_of(70_000))) in ([], [400], [431])
    assert requests.get(f"{hub.url}/user/alice/api", timeout=10).status_code == 200


SMUGGLED = b"GET /user/alice/api?smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
SMUGGLING = {
    "CL.TE": b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
    "TE.CL": b"Transfer-Encoding: chunked\r\nContent-Length: 200\r\n",
    "TE obfuscated": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n",
    "two lengths": b"Content-Length: 0\r\nContent-Length: 80\r\n",
}


@pytest.mark.parametrize("trick", list(SMUGGLING))
def test_request_smuggling_gets_one_refusal_and_no_second_answer(deployment, trick):
    hub = deployment.hub
    _, proxy_port = hub.server_address("alice")
    body = b"0\r\n\r\n" + SMUGGLED
    request = (
        b"POST /user/alice/ HTTP/1.1\r\nHost: 127.0.0.1\r\n" + SMUGGLING[trick] + b"\r\n" + body
    )
    for port in (hub.port, proxy_port):
        answer = statuses(exchange(port, request))
        # One answer, a refusal, and never one for the request hidden in the body.
        assert len(answer) <= 1 and all(code >= 400 for code in answer), (port, answer)
