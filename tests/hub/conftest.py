"""Fixtures for the hub tests: the OIDC provider, the proxy and a hub using DevPlane's config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hubharness import PROFILES, Hub, OidcProvider, Proxy


@pytest.fixture(scope="module")
def login_stack(tmp_path_factory) -> Iterator[tuple[Hub, OidcProvider]]:
    """Proxy + OIDC provider + hub; no cluster needed as long as nobody spawns."""
    workdir: Path = tmp_path_factory.mktemp("hub-login")
    proxy = Proxy(workdir)
    oidc = OidcProvider(workdir, redirect_uri=f"{proxy.url}/hub/oauth_callback")
    hub = Hub(workdir, proxy, oidc, namespace="unused", profiles=PROFILES)
    try:
        hub.start()
        yield hub, oidc
    finally:
        hub.stop()
        oidc.stop()
        proxy.stop()
