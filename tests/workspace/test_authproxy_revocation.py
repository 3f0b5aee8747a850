"""Revocation reaches open terminals: a logged-out or revoked identity loses its terminal.

The auth proxies re-check the identity behind every open terminal with the hub every
``DEVPLANE_IDENTITY_MAX_AGE`` seconds (2 s in these tests, 30 s by default) and close the
connection once the hub no longer confirms it.
"""

from __future__ import annotations

import asyncio
import time

import requests
from devplane_dev.ttyd_client import TtydSession, handshake_status

# A check is one hub request after the interval; this covers it on a busy machine.
SLACK = 3.0


def _session_tokens(hub, session: requests.Session, owner: str) -> list[dict]:
    """The OAuth tokens the hub issued to ``owner``'s server for this browser session."""
    session_id = session.cookies.get("jupyterhub-session-id")
    tokens = hub.api("GET", f"/users/{owner}/tokens", expect=(200,)).json()["api_tokens"]
    return [t for t in tokens if t["session_id"] == session_id and t["oauth_client"]]


async def _closed_after(term: TtydSession, limit: float) -> float:
    """Seconds until the proxy closed ``term``; fails once ``limit`` has passed."""
    start = time.monotonic()
    try:
        await asyncio.wait_for(term.ws.wait_closed(), limit)
    except TimeoutError:
        await term.run("echo still-$((20+1))-open", r"still-21-open")
        raise AssertionError(f"the terminal still works {limit:.0f}s after revocation") from None
    return time.monotonic() - start


async def test_a_revoked_token_closes_the_open_terminal(deployment):
    hub = deployment.hub
    alice = await asyncio.to_thread(hub.login, "alice")
    term = await hub.open_terminal(alice, "alice")
    await term.run("echo open-$((20+1))", r"open-21")
    tokens = await asyncio.to_thread(_session_tokens, hub, alice, "alice")
    assert tokens, "the hub issued no token to alice's server for this session"
    for token in tokens:
        await asyncio.to_thread(
            hub.api, "DELETE", f"/users/alice/tokens/{token['id']}", expect=(204,)
        )
    waited = await _closed_after(term, 4 * deployment.identity_max_age + SLACK)
    print(f"\nrevoked token: terminal closed {waited:.2f}s later")
    assert waited <= deployment.identity_max_age + SLACK
    # And the same cookie opens nothing any more.
    cookie = hub.cookie_header(alice, "/user/alice/ws")
    assert await handshake_status(hub.ws_url("alice"), cookie, hub.origin) == 403


async def test_logging_out_closes_the_open_terminal(deployment):
    hub = deployment.hub
    alice = await asyncio.to_thread(hub.login, "alice")
    term = await hub.open_terminal(alice, "alice")
    await term.run("echo open-$((30+1))", r"open-31")
    # The hub deletes the tokens of the session that logs out.
    cookie = hub.cookie_header(alice, "/user/alice/ws")
    await asyncio.to_thread(alice.get, f"{hub.url}/hub/logout", timeout=10)
    waited = await _closed_after(term, 4 * deployment.identity_max_age + SLACK)
    print(f"\nlogout: terminal closed {waited:.2f}s later")
    assert waited <= deployment.identity_max_age + SLACK
    assert await handshake_status(hub.ws_url("alice"), cookie, hub.origin) == 403


async def test_an_identity_that_still_holds_keeps_its_terminal(deployment):
    """Several re-checks pass without a trace: the terminal stays open and usable."""
    hub = deployment.hub
    alice = await asyncio.to_thread(hub.login, "alice")
    async with await hub.open_terminal(alice, "alice") as term:
        await term.run("echo first-$((40+1))", r"first-41")
        deadline = time.monotonic() + 3 * deployment.identity_max_age
        count = 0
        while time.monotonic() < deadline:  # typing all along, as someone working would
            count += 1
            await term.run(f"echo tick-$(({count}*1000))", rf"tick-{count * 1000}\b")
            await asyncio.sleep(0.5)
        assert count >= 3
