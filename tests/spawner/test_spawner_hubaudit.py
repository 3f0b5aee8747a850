"""Which hub requests are audit events (devplane_spawner.hubaudit.classify): pure."""

from __future__ import annotations

import pytest

from devplane_spawner.hubaudit import classify


@pytest.mark.parametrize(
    ("method", "path", "status", "expected"),
    [
        ("POST", "api/users/alice/server", 202, ("server.start", {"user": "alice", "server": ""})),
        ("DELETE", "api/users/alice/server", 204, ("server.stop", {"user": "alice", "server": ""})),
        ("POST", "api/users/al%40ex/servers/dev", 201,
         ("server.start", {"user": "al@ex", "server": "dev"})),
        ("DELETE", "api/users/bob/servers/dev/", 403,
         ("server.stop", {"user": "bob", "server": "dev"})),
        ("POST", "spawn/alice", 302, ("server.start", {"user": "alice", "server": ""})),
        ("POST", "spawn/alice/dev", 302, ("server.start", {"user": "alice", "server": "dev"})),
        ("GET", "oauth_callback", 302, ("login", {})),
        ("GET", "oauth_callback", 403, None),
        ("GET", "api/users/alice/server/progress", 200, None),
        ("GET", "spawn/alice", 200, None),  # the form itself starts nothing
        # /hub/spawn: the signed-in user's own server (the user is filled in from the actor).
        ("POST", "spawn", 302, ("server.start", {"user": "", "server": ""})),
        ("GET", "spawn", 302, ("server.start", {"user": "", "server": ""})),  # no form to show
        ("GET", "spawn", 200, None),
        ("GET", "api/users/alice", 200, None),
    ],
)  # fmt: skip
def test_server_actions_and_logins_are_recognised(method, path, status, expected):
    assert classify(method, path, status) == expected
