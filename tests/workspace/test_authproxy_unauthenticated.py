"""What a stranger without a cookie can make an auth proxy do: its memory, its log.

The requests go where an attacker's would: through configurable-http-proxy to alice's auth
proxy, with no cookie at all. The figures each flood measured are printed (``pytest -s``) and
recorded in docs/workspace.md.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import DefaultCookiePolicy

import requests
from devplane_dev.poll import wait_for
from devplane_dev.procs import rss_bytes
from devplane_dev.ttyd_client import handshake_status

MIB = 1024 * 1024


def flood(url: str, count: int, tail_bytes: int, workers: int = 4) -> set[int]:
    """``count`` cookie-less GETs of ``url`` + a distinct tail of ``tail_bytes``; the statuses."""
    local = threading.local()

    def get(i: int) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()  # keep-alive, but never a cookie
            local.session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
        tail = f"{i:08d}".ljust(tail_bytes, "x")
        return local.session.get(f"{url}{tail}", allow_redirects=False, timeout=30).status_code

    with ThreadPoolExecutor(workers) as pool:
        return set(pool.map(get, range(count)))


def logged_everything_so_far(hub, owner: str) -> None:
    """Return once ``owner``'s proxy has written the lines of every request answered so far:
    it logs in order, so a readiness check's line after them marks the end."""
    needle = f"GET /user/{owner}/api "
    seen = hub.log().count(needle)
    assert requests.get(f"{hub.url}/user/{owner}/api", timeout=10).status_code == 200
    wait_for("the readiness check's log line", lambda: hub.log().count(needle) > seen, 30)


def test_a_flood_of_refusals_adds_a_bounded_amount_to_the_log(deployment):
    """Finding 15: 3,000 cookie-less requests with long paths added ~36 MB to a proxy's log."""
    hub, owner = deployment.hub, deployment.flood_target
    logged_everything_so_far(hub, owner)
    mark, size = len(hub.log()), hub.log_size()
    # Refused all: a path under the prefix that is not the terminal's is a 404 (it was a
    # redirect into the OAuth flow before ttyd's page became the proxy's own).
    assert flood(f"{hub.url}/user/{owner}/", 3000, 12 * 1024) <= {302, 404}
    logged_everything_so_far(hub, owner)
    grown = hub.log_size() - size
    print(f"\nlog growth for 3,000 refusals with 12 KiB paths: {grown / 1024:.1f} KiB")
    assert grown < 64 * 1024
    new = hub.log()[mark:]
    # Refusals are still seen: the first ones, shortened, and a note that the rest are counted.
    refusals = [line for line in new.splitlines() if f"GET /user/{owner}/0000" in line]
    assert refusals and max(map(len, refusals)) < 600
    assert "counting the rest instead of writing them" in new


def test_a_flood_of_strangers_leaves_the_proxy_s_memory_bounded(deployment):
    """Finding 3: every cookie-less GET stored its whole URL as OAuth state for 10 minutes;
    8,000 of them with 15 KB paths took a proxy from 71 to 192 MB (limit 256 Mi). The page
    is only at the prefix now, so the long part is the query string."""
    hub = deployment.hub
    pid = hub.server_pid("alice")
    before = rss_bytes(pid)
    # The page's URL with a long query: each is a navigation sent into the OAuth flow.
    assert flood(f"{hub.url}/user/alice/?", 8000, 15 * 1024) == {302}
    grown = rss_bytes(pid) - before
    print(f"\nRSS {before / MIB:.1f} MiB -> {(before + grown) / MIB:.1f} MiB for 8,000 strangers")
    assert grown < 16 * MIB


async def test_secrets_in_query_strings_never_reach_the_log(deployment):
    """Finding 12: the proxy logged whole query strings, ?token= and the OAuth code= with them."""
    hub = deployment.hub
    secret = secrets.token_hex(16)
    mark = len(hub.log())
    alice = await asyncio.to_thread(hub.login, "alice")
    await asyncio.to_thread(hub.open_server, alice, "alice")
    for session in (requests.Session(), alice):  # nobody, and the owner
        for path in (f"?token={secret}", f"oauth_callback?code={secret}&state={secret}"):
            await asyncio.to_thread(
                session.get, f"{hub.url}/user/alice/{path}", allow_redirects=False, timeout=10
            )
    url = f"{hub.ws_url('alice')}?token={secret}&access_token={secret}"
    assert await handshake_status(url, "", hub.origin) == 403

    def logged() -> str:
        new = hub.log()[mark:]
        # All five requests were logged, each with the names of its parameters.
        return new if new.count("/user/alice/oauth_callback?code=") >= 2 else ""

    log = await asyncio.to_thread(wait_for, "the proxy's lines about those requests", logged, 15)
    assert "?token=" in log
    assert secret not in log


def test_a_stranger_s_fetch_gets_403_and_no_login_flow(deployment):
    """Finding 3: only a page load (a navigation) is worth an OAuth state and a redirect; a
    script's request without identity gets 403 and costs the proxy nothing."""
    hub = deployment.hub
    for mode in ("cors", "no-cors", "same-origin"):
        response = requests.get(
            f"{hub.url}/user/alice/", headers={"Sec-Fetch-Mode": mode}, allow_redirects=False,
            timeout=10,
        )  # fmt: skip
        assert response.status_code == 403, mode
        assert "Set-Cookie" not in response.headers
    navigation = requests.get(
        f"{hub.url}/user/alice/", headers={"Sec-Fetch-Mode": "navigate"}, allow_redirects=False,
        timeout=10,
    )  # fmt: skip
    assert navigation.status_code == 302
