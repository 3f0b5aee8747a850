"""The hub tests' people, profiles and login stack (a uniquely named module: pytest puts this
directory on sys.path, and the tests import it by name)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from devplane_dev.hub import Hub
from devplane_dev.oidc import ADMINS_GROUP, USERS_GROUP, OidcProvider, OidcUser
from devplane_dev.proxy import ConfigurableHttpProxy

USERS = {
    u.username: u
    for u in (
        OidcUser("alice", "alice-pw"),
        OidcUser("bob", "bob-pw"),
        OidcUser("root", "root-pw", (USERS_GROUP, ADMINS_GROUP)),
        OidcUser("mallory", "mallory-pw", ("contractors",)),
    )
}

# Profiles the hub tests offer; broken-image names a registry the local cluster treats as
# unreachable (any host ending in .invalid), so its pod stays in ImagePullBackOff.
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


@contextlib.contextmanager
def login_stack(
    workdir: Path, users: Iterable[OidcUser], **env: str
) -> Iterator[tuple[Hub, OidcProvider]]:
    """Proxy + OIDC provider with ``users`` + hub (configured with ``env``); no cluster is
    needed as long as nobody spawns (with PROFILES, the page after login is the spawn form)."""
    proxy = ConfigurableHttpProxy(workdir)
    oidc = OidcProvider(workdir, f"{proxy.url}/hub/oauth_callback", users)
    hub = Hub(workdir, proxy, oidc, namespace="unused", profiles=PROFILES, extra_env=env)
    try:
        hub.start()
        yield hub, oidc
    finally:
        hub.stop()
        oidc.stop()
        proxy.stop()
