"""Isolation of workspace pods on the real node: what a user can reach from inside their
workspace, and who can reach it (issue 12 item 6, issue 13 findings 2 and 6).

The real operator makes two users' Workspaces (pods from DevPlane's own images, their
NetworkPolicies enforced by kube-router); the other parties are pods that listen where the
real ones would: the hub (8081), configurable-http-proxy (8000 public, 8001 API), an LLM
endpoint (8000, and 9000 that no rule opens) and a pod in an unrelated namespace. Every
"blocked" verdict has a control: the same target is open from a pod no policy restricts (or,
for a workspace, from the proxy), so it is the policy that blocks, not a missing listener.
The matrix itself is in docs/architecture.md ("Isolation, tested on the real node").
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from devplane_dev import devcluster, realnode
from devplane_dev.images import app_version
from devplane_dev.operator_process import OperatorProcess, install_crd
from devplane_dev.poll import wait_for
from devplane_dev.realnode_config import LOCAL_STORAGE_CLASS, NODE_LABEL, NODE_TAINT
from devplane_dev.realnode_pods import (
    BLOCKED,
    OPEN,
    create_ready,
    listener,
    probe,
    service,
    sleeper,
)
from devplane_dev.workspaces import hub_secret_manifest, workspace_manifest
from op_helpers import condition, wait_ready

from devplane_api import naming
from devplane_api.v1alpha1 import PROXY_PORT

pytestmark = [pytest.mark.real_node, pytest.mark.cluster]

HUB_LABELS = {"app.kubernetes.io/name": "devplane", "app.kubernetes.io/component": "hub"}
PROXY_LABELS = {"app.kubernetes.io/name": "devplane", "app.kubernetes.io/component": "proxy"}
HUB_PORT, PROXY_PUBLIC_PORT, PROXY_API_PORT = 8081, 8000, 8001
LLM_PORT, LLM_OTHER_PORT, OUTSIDER_PORT = 8000, 9000, 8080


@dataclass
class World:
    ws: str
    hub: str
    llm: str
    other: str
    kubectl: object
    ips: dict[str, str] = field(default_factory=dict)
    workspaces: dict[str, str] = field(default_factory=dict)  # owner -> Workspace name

    def probe(self, ns: str, pod: str, targets: list[str], container: str = "") -> dict:
        return probe(self.kubectl, ns, pod, targets, container)

    def from_workspace(self, owner: str, targets: list[str]) -> dict[str, str]:
        pod = naming.child_name(self.workspaces[owner])
        return self.probe(self.ws, pod, targets, container="workspace")

    def workspace_service(self, owner: str) -> str:
        return f"{naming.child_name(self.workspaces[owner])}.{self.ws}.svc:{PROXY_PORT}"


def hub_secret_data(owner: str, world_id: str, hub_ns: str) -> dict[str, str]:
    """What the spawner would write for ``owner``; the client id carries ``world_id`` so the
    test can find this very auth proxy among the machine's processes."""
    prefix = f"/user/{owner}/"
    return {
        "JUPYTERHUB_USER": owner,
        "JUPYTERHUB_API_TOKEN": f"token-of-{owner}",
        "JUPYTERHUB_API_URL": f"http://proxy.{hub_ns}.svc:{PROXY_PUBLIC_PORT}/hub/api",
        "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{owner}-{world_id}",
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"{prefix}oauth_callback",
        "JUPYTERHUB_BASE_URL": "/",
        "JUPYTERHUB_SERVER_NAME": "",
    }


@pytest.fixture(scope="module")
def world(kubectl, kubeconfig: Path, bin_dir: Path, tmp_path_factory) -> Iterator[World]:
    version = app_version()
    workspace_image = f"localhost/devplane/workspace:{version}"
    hub_image = f"localhost/devplane/hub:{version}"
    try:
        devcluster.run_cli("load-images", workspace_image, hub_image)
    except devcluster.DevclusterError as err:
        pytest.fail(f"could not give the real node DevPlane's images: {err}", pytrace=False)
    realnode.ensure_local_volumes(realnode.layout(), bin_dir, available=4)
    install_crd([str(bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig)])

    world_id = uuid.uuid4().hex[:8]
    names = {role: f"iso-{role}-{world_id}" for role in ("ws", "hub", "llm", "other")}
    restricted = {"pod-security.kubernetes.io/enforce": "restricted"}
    for name in names.values():
        kubectl.create_namespace(name, {"devplane.io/test": "true", **restricted})
    world = World(**names, kubectl=kubectl)
    operator = None
    try:
        pods = create_ready(
            kubectl, world.hub,
            listener("hub", workspace_image, HUB_LABELS, [HUB_PORT]),
            listener("proxy", workspace_image, PROXY_LABELS, [PROXY_PUBLIC_PORT, PROXY_API_PORT]),
            service("hub", HUB_LABELS, [HUB_PORT]),
            service("proxy", PROXY_LABELS, [PROXY_PUBLIC_PORT, PROXY_API_PORT]),
        )  # fmt: skip
        pods |= create_ready(
            kubectl, world.llm,
            listener("vllm", workspace_image, {"app": "vllm"}, [LLM_PORT, LLM_OTHER_PORT]),
            service("vllm", {"app": "vllm"}, [LLM_PORT, LLM_OTHER_PORT]),
        )  # fmt: skip
        pods |= create_ready(
            kubectl, world.other,
            listener("outsider", workspace_image, {"app": "outsider"}, [OUTSIDER_PORT]),
            service("outsider", {"app": "outsider"}, [OUTSIDER_PORT]),
            sleeper("prober", workspace_image),
        )  # fmt: skip
        world.ips = {name: pod["status"]["podIP"] for name, pod in pods.items()}

        provider = {
            "name": "vllm",
            "baseURL": f"http://vllm.{world.llm}.svc:{LLM_PORT}/v1",
            "models": ["qwen"],
        }
        operator = OperatorProcess(
            kubeconfig,
            [world.ws],
            env={
                "DEVPLANE_WORKSPACE_IMAGE": workspace_image,
                "DEVPLANE_AUTHPROXY_IMAGE": hub_image,
                "DEVPLANE_ALLOWED_IMAGE_REGISTRIES": "localhost/devplane",
                "DEVPLANE_IMAGE_PULL_POLICY": "Never",
                "DEVPLANE_WORKSPACE_NODE_SELECTOR": "=".join(NODE_LABEL),
                "DEVPLANE_WORKSPACE_TOLERATIONS": json.dumps([{**NODE_TAINT, "operator": "Equal"}]),
                "DEVPLANE_STORAGE_CLASS": LOCAL_STORAGE_CLASS,
                "DEVPLANE_LLM_PROVIDERS": json.dumps([provider]),
                # As the chart sets them: the hub and proxy in their namespace, the hub API
                # through the proxy's public port.
                "DEVPLANE_HUB_NAMESPACE": world.hub,
                "DEVPLANE_HUB_API_SELECTOR": ",".join(f"{k}={v}" for k, v in PROXY_LABELS.items()),
                "DEVPLANE_HUB_API_PORT": str(PROXY_PUBLIC_PORT),
            },
            log_path=tmp_path_factory.mktemp("iso") / "operator.log",
        ).start()
        operator.wait_ready()
        for owner in ("alice", "bob"):
            manifest = workspace_manifest(owner, metadata={"namespace": world.ws})
            kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
            stored = kubectl("get", "workspace", manifest["metadata"]["name"], "-n", world.ws,
                             json_out=True)  # fmt: skip
            secret = hub_secret_manifest(stored, hub_secret_data(owner, world_id, world.hub))
            kubectl("apply", "-f", "-", stdin=json.dumps(secret))
            world.workspaces[owner] = manifest["metadata"]["name"]
        for owner, name in world.workspaces.items():
            ws = wait_ready(kubectl, world.ws, name, timeout=180)
            world.ips[owner] = ws["status"]["podIP"]
        world.ips["world_id"] = world_id
        yield world
    finally:
        if operator is not None:
            operator.stop()
        for name in names.values():
            kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found",
                    check=False)  # fmt: skip


def assert_blocked(results: dict[str, str], targets: list[str]) -> None:
    wrong = {t: results[t] for t in targets if results[t] not in BLOCKED}
    assert not wrong, f"reachable (or not resolvable) though the policy should block it: {wrong}"


def assert_open(results: dict[str, str], targets: list[str]) -> None:
    wrong = {t: results[t] for t in targets if results[t] != OPEN}
    assert not wrong, f"not reachable: {wrong}"


def test_a_workspace_reaches_dns_its_llm_endpoint_and_the_hub_api_through_the_proxy(world):
    allowed = [
        f"vllm.{world.llm}.svc:{LLM_PORT}",  # the name resolves (DNS) and the port is open
        f"{world.ips['vllm']}:{LLM_PORT}",
        f"proxy.{world.hub}.svc:{PROXY_PUBLIC_PORT}",  # JUPYTERHUB_API_URL's way
    ]
    assert_open(world.from_workspace("alice", allowed), allowed)


def test_a_workspace_reaches_nothing_else(world):
    ips = world.ips
    blocked = [
        # other users' pods, on the one port they listen on, by address and by Service
        f"{ips['bob']}:{PROXY_PORT}",
        world.workspace_service("bob"),
        # the hub's own port and the proxy's API port
        f"{ips['hub']}:{HUB_PORT}",
        f"hub.{world.hub}.svc:{HUB_PORT}",
        f"{ips['proxy']}:{PROXY_API_PORT}",
        f"proxy.{world.hub}.svc:{PROXY_API_PORT}",
        # the LLM endpoint's other port
        f"{ips['vllm']}:{LLM_OTHER_PORT}",
        f"vllm.{world.llm}.svc:{LLM_OTHER_PORT}",
        # the Kubernetes API
        "kubernetes.default.svc:443",
        # anything else in the cluster
        f"{ips['outsider']}:{OUTSIDER_PORT}",
        f"outsider.{world.other}.svc:{OUTSIDER_PORT}",
    ]
    results = world.from_workspace("alice", blocked)
    assert_blocked(results, blocked)
    # Controls: each of those answers someone whom no policy restricts (bob's pod admits
    # only the hub and the proxy, so the proxy is its control).
    controls = [t for t in blocked if str(PROXY_PORT) not in t.rsplit(":", 1)[1]]
    assert_open(world.probe(world.other, "prober", controls), controls)
    bob = [f"{ips['bob']}:{PROXY_PORT}", world.workspace_service("bob")]
    assert_open(world.probe(world.hub, "proxy", bob), bob)


def test_only_the_hub_and_the_proxy_reach_a_workspace(world):
    alice = [f"{world.ips['alice']}:{PROXY_PORT}", world.workspace_service("alice")]
    assert_open(world.probe(world.hub, "proxy", alice), alice)
    assert_open(world.probe(world.hub, "hub", alice), alice)
    assert_blocked(world.probe(world.other, "prober", alice), alice)
    assert_blocked(world.from_workspace("bob", alice), alice)


def test_the_workspace_container_is_unprivileged(world):
    pod = naming.child_name(world.workspaces["alice"])

    def run(*argv: str):
        return world.kubectl("exec", "-n", world.ws, pod, "-c", "workspace", "--", *argv,
                             check=False)  # fmt: skip

    assert run("id", "-u").stdout.strip() == "1000"
    assert run("touch", "/probe").returncode != 0  # read-only root
    assert run("ls", "/var/run/secrets/kubernetes.io/serviceaccount").returncode != 0
    assert run("sh", "-c", "touch ~/kept && ls ~/kept").returncode == 0  # its home is writable
    caps = run("grep", "CapEff", "/proc/self/status").stdout.split()
    assert caps[-1] == "0000000000000000", caps


def auth_proxy_pid(world_id: str, owner: str) -> int:
    """The host pid of ``owner``'s auth proxy in this world (by its client id)."""
    marker = f"JUPYTERHUB_CLIENT_ID=jupyterhub-user-{owner}-{world_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"devplane_authproxy" in (entry / "cmdline").read_bytes() and marker in (
                entry / "environ"
            ).read_bytes().split(b"\0"):
                return int(entry.name)
        except OSError:
            continue
    raise AssertionError(f"no auth proxy process of {owner} found")


def test_a_workspace_whose_auth_proxy_is_not_ready_gets_no_traffic(world):
    """Finding 2 / item 7: routing depends on the proxy container being Ready. A frozen proxy
    fails its readiness probe; the Service then leads nowhere, so nothing the user might run
    in its place is reached, and the Workspace stops saying Ready."""
    kubectl, pod = world.kubectl, naming.child_name(world.workspaces["alice"])
    service = [world.workspace_service("alice")]
    assert_open(world.probe(world.hub, "proxy", service), service)

    def pod_ready() -> bool:
        conditions = kubectl("get", "pod", pod, "-n", world.ws, json_out=True)["status"]
        return {c["type"]: c["status"] for c in conditions.get("conditions", [])}["Ready"]

    def workspace() -> dict:
        return kubectl("get", "workspace", world.workspaces["alice"], "-n", world.ws,
                       json_out=True)  # fmt: skip

    pid = auth_proxy_pid(world.ips["world_id"], "alice")
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_for("the pod to be not Ready", lambda: pod_ready() == "False", 60)
        results = world.probe(world.hub, "proxy", service)
        assert results[service[0]] in BLOCKED, results
        wait_for(
            "the Workspace to stop saying Ready",
            lambda: condition(workspace(), "Ready").get("status") == "False",
            60,
        )
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for("the pod to be Ready again", lambda: pod_ready() == "True", 60)
    wait_for(
        "the Service to lead to the proxy again",
        lambda: world.probe(world.hub, "proxy", service)[service[0]] == OPEN,
        30,
    )
