"""Fixtures for the hub tests: the OIDC provider, the proxy and a hub using DevPlane's config."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from devplane_dev.hub import Hub
from devplane_dev.oidc import OidcProvider
from hub_testdata import USERS, login_stack


@pytest.fixture(scope="module", name="login_stack")
def login_stack_fixture(tmp_path_factory) -> Iterator[tuple[Hub, OidcProvider]]:
    """Proxy + OIDC provider + hub; no cluster needed as long as nobody spawns."""
    with login_stack(tmp_path_factory.mktemp("hub-login"), USERS.values()) as stack:
        yield stack
