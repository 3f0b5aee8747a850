"""Helpers shared by the Helm chart tests (fixtures are in conftest.py).

Every helm call uses the helm built from versions.env (the `bin_dir` fixture builds it when it
is missing). Installs go to throw-away namespaces on the local control plane, one pair per
release (release namespace + workspace namespace), and are removed afterwards. The CRD is
shared with the other tests and is never deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "chart"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
# "defaults" plus one entry per chart/ci/<name>-values.yaml.
VALUE_SETS = ["defaults", *(p.name.removesuffix("-values.yaml") for p in CI_VALUES)]
# The Kubernetes version the chart is tested against (the local control plane's).
KUBE_VERSION = next(
    line.split("=", 1)[1].strip()
    for line in (ROOT / "versions.env").read_text().splitlines()
    if line.startswith("KUBERNETES_VERSION=")
)
# What helm template and lint cannot look up without a cluster (see the file).
NO_CLUSTER_VALUES = Path(__file__).resolve().parent / "no-cluster-values.yaml"
# A value set that leaves the workspace namespace to the admin (workspaces.namespace.create
# false): the tests create that namespace themselves, labelled like the chart would.
ADMIN_MADE_NAMESPACE = {"named-servers"}


def values_file(value_set: str) -> list[str]:
    """`--values` arguments of a value set ("defaults" has none)."""
    if value_set == "defaults":
        return []
    return ["--values", str(CHART / "ci" / f"{value_set}-values.yaml")]


@dataclass
class HelmResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def docs(self) -> list[dict[str, Any]]:
        """The rendered manifests, parsed (empty documents dropped)."""
        return [d for d in yaml.safe_load_all(self.stdout) if d]


def find(docs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> list[dict[str, Any]]:
    """Objects of ``kind`` whose name ends with ``name_suffix``."""
    return [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]


def one(docs: list[dict[str, Any]], kind: str, name_suffix: str) -> dict[str, Any]:
    found = find(docs, kind, name_suffix)
    assert len(found) == 1, f"expected one {kind} named *{name_suffix}, found {len(found)}"
    return found[0]


def container_env(container: dict[str, Any]) -> dict[str, Any]:
    """A container's env as name -> value (or the valueFrom dict)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def pod_specs(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(name, pod spec) of every workload in the rendering."""
    out = []
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            out.append((d["metadata"]["name"], d["spec"]["template"]["spec"]))
        elif d["kind"] == "Pod":
            out.append((d["metadata"]["name"], d["spec"]))
    return out


# ------------------------------------------------------------------ real installs


@dataclass
class Release:
    """One installed release and where its parts live."""

    name: str
    namespace: str
    workspace_namespace: str
    value_set: str
    manifest: list[dict[str, Any]] = field(default_factory=list)
    notes: str = ""  # what `helm install` printed: NOTES.txt, rendered

    def sa(self, component: str) -> str:
        """`kubectl auth can-i --as` user of a component's service account."""
        return f"system:serviceaccount:{self.namespace}:{self.name}-devplane-{component}"


def api_server_values(kubeconfig: Path) -> dict[str, Any]:
    """Chart values naming the API server of ``kubeconfig`` (address and port) for the hub's
    and the operator's NetworkPolicies, as an admin names theirs."""
    server = urlsplit(json.loads(Path(kubeconfig).read_text())["clusters"][0]["cluster"]["server"])
    return {
        "networkPolicy": {"kubeAPI": {"cidrs": [f"{server.hostname}/32"], "ports": [server.port]}}
    }


def make_test_namespace(kubectl, name: str) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "devplane.io/test": "true",
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")


def uncounted(kubectl, namespaces) -> dict[str, list[str]]:
    """What each ResourceQuota of ``namespaces`` bounds but does not count yet (the API server
    refuses every object of such a resource meanwhile, and the quota controller's first count
    can still overwrite what admission counted)."""
    missing = {}
    for ns in namespaces:
        for quota in kubectl("get", "resourcequota", "-n", ns, json_out=True)["items"]:
            used = (quota.get("status") or {}).get("used") or {}
            left = sorted(set(quota["spec"].get("hard") or {}) - set(used))
            if left:
                missing[f"{ns}/{quota['metadata']['name']}"] = left
    return missing
