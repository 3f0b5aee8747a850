"""hack/home-volumes.py finds and reclaims the home volumes of departed users (issue 13,
finding 7), against the real operator, API server and hub.

Retained home volumes outlive their Workspaces on purpose (a re-created user gets their files
back); the script must tell apart a volume in use, one whose owner still exists (kept), and
one whose Workspace and owner are both gone (reclaimable), and delete only the last kind.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from devplane_dev.hub import NO_LOGIN, Hub
from devplane_dev.proxy import ConfigurableHttpProxy
from op_helpers import apply, get, wait_for, wait_ready, workspace

from devplane_api import naming

SCRIPT = "hack/home-volumes.py"


@pytest.fixture
def hub(tmp_path, ws_namespace):
    """A real hub (DevPlane's config, driven by its API token only) over the namespace."""
    proxy = ConfigurableHttpProxy(tmp_path)
    hub = Hub(tmp_path, proxy, None, ws_namespace[0], [], extra_env=NO_LOGIN)
    try:
        hub.start()
        yield hub
    finally:
        hub.stop()
        proxy.stop()


def states(output: str) -> dict[str, str]:
    """VOLUME -> STATE from the script's table."""
    lines = output.strip().splitlines()
    start = lines[0].index("STATE")
    return {line.split()[0]: line[start:] for line in lines[1:]}


def test_volumes_of_departed_owners_are_found_and_only_those_reclaimed(
    kubectl, kubeconfig, bin_dir, ws_namespace, hub, tmp_path
):
    ns, _ = ws_namespace
    apply(kubectl, ns, workspace("alice"), workspace("bob"), workspace("carol", "dev"))
    for name in ("alice", "bob", naming.workspace_name("carol", "dev")):
        wait_ready(kubectl, ns, name)
    # bob left (the admin deleted him: the hub deleted his Workspace); carol deleted her named
    # server "dev" but is still a user. Both volumes stay (reclaimPolicy Retain).
    kubectl("delete", "ws", "bob", naming.workspace_name("carol", "dev"), "-n", ns)
    hub.api("POST", "/users/alice", expect=(201,))
    hub.api("POST", "/users/carol", expect=(201,))

    def run(*extra: str) -> subprocess.CompletedProcess:
        argv = [sys.executable, SCRIPT, "-n", ns, "--kubectl", str(bin_dir / "kubectl")]
        argv += ["--kubeconfig", str(kubeconfig), *extra]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)

    # Without the hub: which volumes no Workspace uses, nothing more.
    listing = run()
    assert listing.returncode == 0, listing.stderr
    assert states(listing.stdout) == {
        "home-alice": "in use",
        "home-bob": "no Workspace (owner not checked: give --hub-url)",
        "home-carol--dev": "no Workspace (owner not checked: give --hub-url)",
    }
    refused = run("--delete")
    assert refused.returncode == 2
    assert "--delete needs --hub-url and --hub-token-file" in refused.stderr

    token = tmp_path / "token"
    token.write_text(hub.token)
    reclaimed = run("--hub-url", hub.url, "--hub-token-file", str(token), "--delete")
    assert reclaimed.returncode == 0, reclaimed.stderr
    assert states(reclaimed.stdout.split("\ndeleted")[0]) == {
        "home-alice": "in use",
        "home-bob": "reclaimable: no Workspace, owner gone",
        "home-carol--dev": "kept: the owner still exists",
    }
    assert reclaimed.stdout.strip().endswith("deleted home-bob")
    wait_for("bob's volume to be gone", lambda: get(kubectl, ns, "pvc", "home-bob") is None)
    assert get(kubectl, ns, "pvc", "home-alice") is not None
    assert get(kubectl, ns, "pvc", "home-carol--dev") is not None


def test_a_hub_that_cannot_answer_is_an_error_not_a_deletion(
    kubectl, kubeconfig, bin_dir, ws_namespace, tmp_path
):
    ns, _ = ws_namespace
    apply(kubectl, ns, workspace("dora"))
    wait_ready(kubectl, ns, "dora")
    kubectl("delete", "ws", "dora", "-n", ns)
    token = tmp_path / "token"
    token.write_text("not-a-token")
    argv = [sys.executable, SCRIPT, "-n", ns, "--kubectl", str(bin_dir / "kubectl")]
    argv += ["--kubeconfig", str(kubeconfig), "--hub-url", "http://127.0.0.1:9"]
    argv += ["--hub-token-file", str(token), "--delete"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "cannot reach the hub at http://127.0.0.1:9/hub/api/users/dora" in proc.stderr
    assert get(kubectl, ns, "pvc", "home-dora") is not None
