"""The hub tests' people and profiles (a uniquely named module: pytest puts this directory on
sys.path, and the tests import it by name)."""

from __future__ import annotations

from devplane_dev.oidc import ADMINS_GROUP, USERS_GROUP, OidcUser

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
