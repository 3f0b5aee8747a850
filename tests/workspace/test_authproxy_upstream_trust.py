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
from devplane_dev.ttyd_client import handshake_status

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
