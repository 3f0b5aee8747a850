"""The local cluster's real node (hack/devplane_dev/realnode.py): kubelet, containerd, CNI,
kube-proxy, CoreDNS and kube-router's firewall, really running DevPlane's workspace image.

Deselected only with DEVCLUSTER_REAL_NODE=0 (tests/conftest.py); otherwise a missing part fails
them, never skips them. Traffic goes only to this cluster's pods, from other pods of it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

import pytest
from devplane_dev import devcluster
from devplane_dev.images import app_version
from devplane_dev.poll import wait_for
from devplane_dev.realnode_config import NODE_LABEL, NODE_NAME, NODE_TAINT
from devplane_dev.realnode_pods import FS_GROUP, UID, create_ready, listener, sleeper

pytestmark = [pytest.mark.real_node, pytest.mark.cluster]


@pytest.fixture(scope="module")
def workspace_image(kubeconfig) -> str:
    """DevPlane's workspace image, copied from podman's store into the node's containerd."""
    ref = f"localhost/devplane/workspace:{app_version()}"
    try:
        devcluster.run_cli("load-images", ref)
    except devcluster.DevclusterError as err:
        pytest.fail(f"could not give the real node {ref}: {err}", pytrace=False)
    return ref


def fetch(kubectl, ns: str, pod: str, url: str) -> subprocess.CompletedProcess:
    """GET ``url`` from inside ``pod`` (python3 in the workspace image), 2 s timeout."""
    code = (
        f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=2).read().decode())"
    )
    return kubectl("exec", "-n", ns, pod, "--", "python3", "-c", code, check=False)


def test_node_is_ready_tainted_and_labelled(kubectl):
    node = kubectl("get", "node", NODE_NAME, json_out=True)
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == devcluster.read_versions()["KUBERNETES_VERSION"]
    assert info["containerRuntimeVersion"].startswith("containerd://")
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert not addresses["InternalIP"].startswith("127."), addresses
    assert node["metadata"]["labels"][NODE_LABEL[0]] == NODE_LABEL[1]
    assert NODE_TAINT in node["spec"]["taints"]
    # kwok's node is as it was: no taint, so everything that does not ask for the real node
    # (the benchmarks' pods, every kwok-based test) still lands there.
    kwok = kubectl("get", "node", devcluster.NODE_NAME, json_out=True)
    assert not kwok["spec"].get("taints")


def test_scheduling_keeps_kwok_pods_and_real_pods_apart(kubectl, make_namespace, workspace_image):
    ns = make_namespace("sched")
    plain = sleeper("plain", "registry.example.test/devplane/workspace:1")
    del plain["spec"]["nodeSelector"], plain["spec"]["tolerations"]
    untolerated = sleeper("untolerated", workspace_image)
    del untolerated["spec"]["tolerations"]
    real = sleeper("real", workspace_image)
    kubectl(
        "apply", "-n", ns, "-f", "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [plain, untolerated, real]}),
    )  # fmt: skip

    def node_of(name: str) -> str:
        return kubectl("get", "pod", name, "-n", ns, json_out=True)["spec"].get("nodeName", "")

    assert wait_for("the plain pod to be scheduled", lambda: node_of("plain")) == (
        devcluster.NODE_NAME
    )
    assert wait_for("the real pod to be scheduled", lambda: node_of("real")) == NODE_NAME

    # Selecting the real node without tolerating its taint is not enough.
    def unschedulable() -> bool:
        pod = kubectl("get", "pod", "untolerated", "-n", ns, json_out=True)
        reasons = {c.get("reason") for c in pod["status"].get("conditions", [])}
        return "Unschedulable" in reasons

    wait_for("the untolerated pod to be reported unschedulable", unschedulable, 30)
    assert node_of("untolerated") == ""


def test_restricted_pod_runs_the_workspace_image_as_uid_1000_read_only_with_fsgroup(
    kubectl, make_namespace, workspace_image
):
    ns = make_namespace("pod", restricted=True)
    create_ready(kubectl, ns, sleeper("ws", workspace_image))

    def run(*argv: str) -> subprocess.CompletedProcess:
        return kubectl("exec", "-n", ns, "ws", "--", *argv, check=False)

    assert run("id", "-u").stdout.strip() == str(UID)
    assert str(FS_GROUP) in run("id", "-G").stdout.split()
    root = run("touch", "/probe")
    assert root.returncode != 0 and "Read-only file system" in root.stderr, root
    assert run("stat", "-c", "%g", "/data").stdout.strip() == str(FS_GROUP)
    wrote = run("sh", "-c", "echo kept > /data/file && stat -c '%u %g' /data/file")
    assert wrote.stdout.strip() == f"{UID} {FS_GROUP}", wrote
    # The capabilities the container kept: none.
    caps = run("grep", "CapEff", "/proc/self/status").stdout.split()
    assert caps[-1] == "0000000000000000", caps
    token = run("ls", "/var/run/secrets/kubernetes.io/serviceaccount")
    assert token.returncode != 0


def test_service_name_resolves_through_coredns_and_routes_to_the_pod(
    kubectl, make_namespace, workspace_image
):
    ns = make_namespace("svc", restricted=True)
    create_ready(
        kubectl,
        ns,
        listener("web-0", workspace_image, {"app": "web"}),
        sleeper("client", workspace_image),
    )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(service))
    cluster_ip = kubectl("get", "service", "web", "-n", ns, json_out=True)["spec"]["clusterIP"]

    fqdn = f"web.{ns}.svc.cluster.local"
    resolved = kubectl("exec", "-n", ns, "client", "--", "getent", "hosts", fqdn)
    assert resolved.split()[0] == cluster_ip
    # The short name through the pod's search path, and the Service routes to its endpoint
    # (kube-proxy's rules may come a moment after the Service).
    got = wait_for(
        "the Service to answer by name",
        lambda: fetch(kubectl, ns, "client", "http://web/index.html").stdout.strip(),
        30,
    )
    assert got == "web-0"
    # Names outside the cluster are not resolved: the node has no way out.
    outside = kubectl("exec", "-n", ns, "client", "--", "getent", "hosts", "example.com",
                      check=False)  # fmt: skip
    assert outside.returncode != 0


def test_network_policy_is_enforced(kubectl, make_namespace, workspace_image):
    ns = make_namespace("netpol", restricted=True)
    pods = create_ready(
        kubectl,
        ns,
        listener("server", workspace_image, {"app": "server"}),
        sleeper("allowed", workspace_image, {"access": "yes"}),
        sleeper("denied", workspace_image, {"access": "no"}),
    )
    url = f"http://{pods['server']['status']['podIP']}:8080/index.html"

    def reaches(client: str) -> Callable[[], bool]:
        return lambda: fetch(kubectl, ns, client, url).stdout.strip() == "server"

    # Without a policy both connect: a refusal below is the policy's doing.
    wait_for("the allowed pod to connect before the policy", reaches("allowed"), 30)
    wait_for("the denied pod to connect before the policy", reaches("denied"), 30)
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "server-from-allowed"},
        "spec": {
            "podSelector": {"matchLabels": {"app": "server"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"access": "yes"}}}],
                    "ports": [{"protocol": "TCP", "port": 8080}],
                }
            ],
        },
    }
    kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(policy))
    t0 = time.monotonic()
    wait_for("kube-router to refuse the denied pod", lambda: not reaches("denied")(), 60)
    enforced_after = time.monotonic() - t0
    refused = fetch(kubectl, ns, "denied", url)
    assert refused.returncode != 0 and "server" not in refused.stdout, refused
    assert reaches("allowed")(), "the pod the policy allows was refused too"
    assert enforced_after < 60


def test_the_node_network_has_no_way_out():
    """The pods' bridge and the link to the host are the node's only routes: no default route
    and no masquerade, so a pod can reach nothing beyond this cluster (read, not probed)."""
    holder = (devcluster.STATE / "node" / "pids" / "namespaces.pid").read_text().strip()

    def inside(*argv: str) -> str:
        return subprocess.run(
            ["nsenter", f"--target={holder}", "--net", "--", *argv],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip

    routes = inside("ip", "-4", "route").splitlines()
    assert not [r for r in routes if r.startswith("default")], routes
    assert len(routes) == 2, routes  # the bridge's /25 and the host link's /30
    nat = inside("iptables-save", "-t", "nat")
    # kube-proxy's only masquerade is for Service traffic it marks itself.
    masquerades = [r for r in nat.splitlines() if "MASQUERADE" in r]
    assert all("KUBE-POSTROUTING" in r for r in masquerades), masquerades
    guard = inside("iptables-save", "-t", "mangle")
    assert "-A FORWARD -j DEVCLUSTER-GUARD" in guard
