"""What a stranger without a cookie can make an auth proxy do: its memory, its log.

The requests go where an attacker's would: through configurable-http-proxy to alice's auth
proxy, with no cookie at all. The figures each flood measured are printed (``pytest -s``) and
recorded in docs/workspace.md.
"""

from __future__ import annotations

import asyncio
import secrets

import requests
from devplane_dev.poll import wait_for
from devplane_dev.ttyd_client import handshake_status


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
