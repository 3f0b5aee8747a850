"""Fixtures for the hub tests: the OIDC provider, the proxy and a hub using DevPlane's config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hubharness import Hub, OidcProvider, Proxy

PROFILES = [
    {
        "slug": "small",
        "display_name": "Small",
        "description": "1 CPU, 2 GiB",
        "default": True,
        "resources": {"limits": {"cpu": "1", "memory": "2Gi"}},
    },
    {
        "slug": "large",
        "display_name": "Large",
        "description": "4 CPUs, 8 GiB",
        "resources": {"limits": {"cpu": "4", "memory": "8Gi"}},
    },
    {
        "slug": "broken-image",
        "display_name": "Broken image",
        "description": "An image no registry serves",
        "image": "registry.invalid/devplane/workspace:missing",
    },
]


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
