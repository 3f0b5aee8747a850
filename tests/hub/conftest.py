"""Fixtures for the hub tests: the OIDC provider, the proxy and a hub using DevPlane's config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from devplane_dev.hub import Hub
from devplane_dev.oidc import OidcProvider
from devplane_dev.proxy import ConfigurableHttpProxy
from hub_testdata import PROFILES, USERS


@pytest.fixture(scope="module")
def login_stack(tmp_path_factory) -> Iterator[tuple[Hub, OidcProvider]]:
    """Proxy + OIDC provider + hub; no cluster needed as long as nobody spawns."""
    workdir: Path = tmp_path_factory.mktemp("hub-login")
    proxy = ConfigurableHttpProxy(workdir)
    oidc = OidcProvider(workdir, f"{proxy.url}/hub/oauth_callback", USERS.values())
    hub = Hub(workdir, proxy, oidc, namespace="unused", profiles=PROFILES)
    try:
        hub.start()
        yield hub, oidc
    finally:
        hub.stop()
        oidc.stop()
        proxy.stop()
