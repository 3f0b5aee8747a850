"""Resource bounds per user (issue 13, finding 7): the workspace namespace's LimitRange and
ResourceQuota, and the hub's limit on named servers.

The render tests read what the chart makes; the cluster test applies the chart's own
LimitRange and ResourceQuota to a namespace and lets the real operator run Workspaces against
the real API server's admission: what is over a bound is refused there, and the Workspace says
so in the API server's words.
"""

from __future__ import annotations

import json
import uuid

import pytest
from chart_helpers import container_env, find, one
from devplane_dev.kubectl import TEST_NAMESPACE
from devplane_dev.operator_process import OperatorProcess, install_crd
from devplane_dev.poll import wait_for
from devplane_dev.workspaces import workspace_manifest


def test_the_workspace_namespace_is_bounded_by_default(render) -> None:
    docs = render("defaults")
    (limits,) = find(docs, "LimitRange")
    assert limits["metadata"]["namespace"] == "devplane-workspaces"
    container, volume = limits["spec"]["limits"]
    assert container["type"] == "Container"
    assert container["max"] == {"cpu": "4", "memory": "16Gi", "ephemeral-storage": "20Gi"}
    # A pod that names no resources gets the workspaces' defaults, so the quota can count it.
    # Scratch space too: a maximum without a default would be every container's request.
    assert container["default"] == {"cpu": "2", "memory": "4Gi", "ephemeral-storage": "10Gi"}
    assert container["defaultRequest"] == {
        "cpu": "250m",
        "memory": "512Mi",
        "ephemeral-storage": "256Mi",
    }
    assert volume == {"type": "PersistentVolumeClaim", "max": {"storage": "100Gi"}}

    (quota,) = find(docs, "ResourceQuota")
    assert quota["metadata"]["namespace"] == "devplane-workspaces"
    hard = quota["spec"]["hard"]
    for key in ("pods", "persistentvolumeclaims",
                "requests.storage", "requests.cpu", "requests.memory", "limits.cpu",
                "limits.memory", "secrets", "configmaps", "services"):  # fmt: skip
        assert key in hard, key
    # Not the Workspaces themselves: a quota on a just-installed CRD refuses every Workspace
    # until the quota controller's next full resync (minutes), i.e. every first spawn.
    assert "count/workspaces.devplane.io" not in hard

    # Named servers, when turned on, are limited per user unless the admin says otherwise.
    hub = one(docs, "Deployment", "-hub")["spec"]["template"]["spec"]["containers"][0]
    assert container_env(hub)["DEVPLANE_NAMED_SERVER_LIMIT"] == "3"


def test_the_bounds_can_be_sized_or_left_to_the_admin(render) -> None:
    sized = render(
        "defaults",
        "--set-string", "workspaces.limitRange.containerMax.cpu=8",
        "--set", "workspaces.limitRange.volumeMax=1Ti",
        "--set", "workspaces.resourceQuota.hard.pods=30",
    )  # fmt: skip
    (limits,) = find(sized, "LimitRange")
    assert limits["spec"]["limits"][0]["max"]["cpu"] == "8"
    assert limits["spec"]["limits"][1]["max"] == {"storage": "1Ti"}
    assert find(sized, "ResourceQuota")[0]["spec"]["hard"]["pods"] == "30"
    off = render(
        "defaults",
        "--set", "workspaces.limitRange.enabled=false",
        "--set", "workspaces.resourceQuota.enabled=false",
    )  # fmt: skip
    assert not find(off, "LimitRange") and not find(off, "ResourceQuota")


@pytest.mark.cluster
def test_admission_holds_each_workspace_and_the_namespace_to_the_bounds(
    render, kubectl, kubeconfig, tmp_path
) -> None:
    docs = render("defaults", "--set", "workspaces.resourceQuota.hard.pods=1")
    namespace = f"bounds-{uuid.uuid4().hex[:8]}"
    install_crd(kubectl.argv)
    kubectl.create_namespace(namespace, TEST_NAMESPACE)
    operator = OperatorProcess(kubeconfig, [namespace], log_path=tmp_path / "operator.log")
    try:
        for doc in (*find(docs, "LimitRange"), *find(docs, "ResourceQuota")):
            doc["metadata"]["namespace"] = namespace
            kubectl("apply", "-f", "-", stdin=json.dumps(doc))
        operator.start()
        operator.wait_ready()

        def apply(body: dict) -> None:
            kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))

        def settled(name: str) -> dict:
            def check():
                ws = kubectl("get", "ws", name, "-n", namespace, json_out=True)
                phase = (ws.get("status") or {}).get("phase")
                return ws if phase in ("Running", "Failed") else None

            return wait_for(f"{name} to be Running or Failed", check)

        # Over the per-container maximum: the API server refuses the pod.
        apply(workspace_manifest("big", resources={"limits": {"cpu": "8"}}))
        big = settled("big")
        assert big["status"]["phase"] == "Failed", operator.tail()
        assert "maximum cpu usage per Container is 4" in big["status"]["message"]
        # Over the largest home volume: the API server refuses the claim.
        apply(workspace_manifest("hoarder", storage={"size": "1Ti"}))
        hoarder = settled("hoarder")
        assert hoarder["status"]["phase"] == "Failed", operator.tail()
        assert (
            "maximum storage usage per PersistentVolumeClaim is 100Gi"
            in (hoarder["status"]["message"])
        )
        # Within the bounds: runs, and fills the namespace's quota of one pod...
        apply(workspace_manifest("alice"))
        assert settled("alice")["status"]["phase"] == "Running", operator.tail()
        # ...so the next one is refused by the quota, in its words.
        apply(workspace_manifest("bob"))
        bob = settled("bob")
        assert bob["status"]["phase"] == "Failed", operator.tail()
        assert "exceeded quota" in bob["status"]["message"]
    finally:
        operator.stop()
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
