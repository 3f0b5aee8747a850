"""Real installs of every value set on the local control plane.

`helm install --wait` into a fresh namespace pair per value set (the release namespace enforces
PodSecurity `restricted`, and so does the workspace namespace the chart makes): every object
must be accepted by the API server (schema validation, admission) and every pod admitted and
Running (kwok plays the kubelet). Server-side dry-run would skip admission of the pods the
Deployments create, which is where a PodSecurity violation shows up.
"""

from __future__ import annotations

import json

import pytest
from chart_helpers import CHART, VALUE_SETS, Release

pytestmark = pytest.mark.cluster

NAMESPACED_LIST = (
    "deployments,services,serviceaccounts,configmaps,secrets,persistentvolumeclaims,"
    "roles,rolebindings,networkpolicies,ingresses,limitranges,resourcequotas"
)


def _live(kubectl, rel: Release) -> set[tuple[str, str, str]]:
    live = set()
    for ns in (rel.namespace, rel.workspace_namespace):
        listing = kubectl("get", NAMESPACED_LIST, "-n", ns, json_out=True)
        for item in listing["items"]:
            live.add((item["kind"], ns, item["metadata"]["name"]))
    return live


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_install_every_object_accepted_every_pod_admitted(kubectl, install, value_set: str) -> None:
    rel = install(value_set)
    assert rel.manifest, "helm get manifest returned nothing"

    # Every object of the release exists.
    expected = set()
    for doc in rel.manifest:
        if doc["kind"] == "Namespace":
            ns = kubectl("get", "namespace", doc["metadata"]["name"], json_out=True)
            labels = ns["metadata"]["labels"]
            assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
            continue
        expected.add((doc["kind"], doc["metadata"]["namespace"], doc["metadata"]["name"]))
    assert expected - _live(kubectl, rel) == set()

    # Every Deployment's pods were admitted under `restricted` and run.
    deployments = [d for d in rel.manifest if d["kind"] == "Deployment"]
    assert deployments
    for dep in deployments:
        name = dep["metadata"]["name"]
        live = kubectl("get", "deployment", name, "-n", rel.namespace, json_out=True)
        assert live["status"].get("readyReplicas") == dep["spec"]["replicas"], name
        selector = ",".join(f"{k}={v}" for k, v in dep["spec"]["selector"]["matchLabels"].items())
        pods = kubectl("get", "pods", "-n", rel.namespace, "-l", selector, json_out=True)["items"]
        assert [p["status"]["phase"] for p in pods] == ["Running"] * dep["spec"]["replicas"], name


def test_workspace_namespace_rejects_a_privileged_pod(kubectl, install) -> None:
    """The namespace the chart makes really enforces `restricted` (not only carries a label):
    a pod that a user could use to escape is refused at admission."""
    rel = install("minimal")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "escape", "namespace": rel.workspace_namespace},
        "spec": {
            "containers": [
                {"name": "c", "image": "busybox", "securityContext": {"privileged": True}}
            ]
        },
    }
    proc = kubectl("apply", "-f", "-", stdin=json.dumps(pod), check=False)
    assert proc.returncode != 0
    assert "violates PodSecurity" in proc.stderr and "restricted" in proc.stderr


def test_upgrade_keeps_generated_tokens(helm, kubectl, install, kubeconfig) -> None:
    """`helm upgrade` must not rotate the proxy token and cookie secret (that would log every
    user out and cut the hub off its proxy)."""
    rel = install("minimal", "--set", "culler.timeout=3600")
    secret = f"{rel.name}-devplane-hub"
    before = kubectl("get", "secret", secret, "-n", rel.namespace, json_out=True)["data"]
    result = helm(
        "upgrade", rel.name, str(CHART), "-n", rel.namespace, "--reuse-values",
        "--set", "culler.timeout=7200", "--wait", "--timeout", "120s", kubeconfig=kubeconfig,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    after = kubectl("get", "secret", secret, "-n", rel.namespace, json_out=True)["data"]
    assert after == before


def test_notes_give_the_url_and_the_next_steps(install) -> None:
    behind_ingress = install("ingress-tls")
    assert "https://devplane.example.internal/devplane/" in behind_ingress.notes
    assert "port-forward" not in behind_ingress.notes
    bare = install("defaults")
    assert f"port-forward svc/{bare.name}-devplane-proxy-public 8000:80" in bare.notes
    assert "Login is not configured" in bare.notes
    assert "No LLM endpoint is configured" in bare.notes
    assert f"kubectl -n {bare.workspace_namespace} get workspaces" in bare.notes
