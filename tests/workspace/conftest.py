"""Fixtures for the workspace tests: a real JupyterHub whose users' servers are the DevPlane
auth proxy, each in front of a real workspace (entrypoint -> ttyd -> tmux) run locally."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from devplane_dev.hostile_ttyd import HostileTtyd
from devplane_dev.local_workspace import LocalWorkspace
from devplane_dev.localhub import LocalHub
from devplane_dev.procs import short_tempdir

# alice: plain owner; carol: a workspace that lets hub admins in; dave: activity tests;
# erin: refused only by the log-flood test, whose proxy's refusal-line budget per minute
# (devplane_authproxy/logs.py) no other test may have spent first.
# bob: another plain user; admin: a hub admin (the hub grants admins access to servers).
# mallory: lets hub admins in, and her own server answers on her ttyd socket instead of ttyd.
WORKSPACE_OWNERS = ("alice", "carol", "dave", "erin")
FLOOD_TARGET = "erin"
HOSTILE_OWNER = "mallory"
USERS = {
    "alice": False,
    "bob": False,
    "carol": False,
    "dave": False,
    "erin": False,
    "mallory": False,
    "admin": True,
}


# Seconds an identity the hub confirmed is trusted: the proxies re-check open terminals this
# often, so the revocation tests wait a few seconds, not the production default.
IDENTITY_MAX_AGE = 2.0


@dataclass
class Deployment:
    hub: LocalHub
    workspaces: dict[str, LocalWorkspace]
    hostile: HostileTtyd
    identity_max_age: float = IDENTITY_MAX_AGE
    flood_target: str = FLOOD_TARGET


@pytest.fixture(scope="session")
def deployment() -> Iterator[Deployment]:
    root = short_tempdir("dpw-")
    workspaces = {
        # ttyd's own keep-alive ping every second, so the idle-tab test sees plenty of it.
        name: LocalWorkspace(root / name, extra_env={"DEVPLANE_TTYD_PING_INTERVAL": "1"})
        for name in WORKSPACE_OWNERS
    }
    hostile = HostileTtyd(root / HOSTILE_OWNER)
    hub = LocalHub(
        root / "hub",
        users=USERS,
        upstream_template=f"unix:{root}/{{username}}/run/ttyd.sock",
        activity_file_template=f"{root}/{{username}}/run/activity",
        admin_access=True,
        # The hub passes JUPYTERHUB_ADMIN_ACCESS=1 (its admin_access is on); alice's
        # workspace overrides that with the explicit DevPlane setting, carol's does not.
        env_by_user={"alice": {"DEVPLANE_ALLOW_ADMIN_ACCESS": "false"}},
        spawner_environment={
            "DEVPLANE_ACTIVITY_INTERVAL": "1",
            "DEVPLANE_IDENTITY_MAX_AGE": str(IDENTITY_MAX_AGE),
        },
    )
    try:
        for workspace in workspaces.values():
            workspace.start()
        hostile.start()
        hub.start()
        for name in (*WORKSPACE_OWNERS, HOSTILE_OWNER):
            hub.start_server(name)
        yield Deployment(hub, workspaces, hostile)
    finally:
        hub.stop()
        hostile.stop()
        for workspace in workspaces.values():
            workspace.stop()
        if not os.environ.get("DEVPLANE_KEEP_TEST_DIRS"):
            shutil.rmtree(root, ignore_errors=True)
