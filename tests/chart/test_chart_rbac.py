"""RBAC: the hub and the operator can do exactly what they use, and nothing else.

Checked against a real install with `kubectl auth can-i --as=system:serviceaccount:...`, so
it is the API server's own answer, not a reading of the manifests. (The idle culler is a
hub-managed service: it calls only the hub's REST API, and its permissions are a JupyterHub
role — test_chart_settings_contract.py checks that role's scopes. The proxy has no
permissions at all.) Three angles:
  - the full list of what each identity may do (`can-i --list`) equals the expected table;
  - a set of things each must be allowed (the calls its code makes);
  - a set of things none may do (Secrets elsewhere, pods/exec, cluster-wide reads, RBAC).
The hub's table is also derived from the spawner's source, so a new API call in the spawner
without a matching Role change fails here rather than in production.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml
from chart_helpers import ROOT, Release
from devplane_dev.operator_process import OperatorProcess
from devplane_dev.workspaces import hub_secret_manifest

from devplane_api.v1alpha1 import GROUP, PLURAL

pytestmark = pytest.mark.cluster

SAMPLE = ROOT / "config" / "samples" / "workspace.yaml"
# The Workspace resource as RBAC and `kubectl auth can-i` name it (resource.group).
WORKSPACES = f"{PLURAL}.{GROUP}"

# What each identity may do in the workspace namespace: resource -> verbs. Resources as
# `kubectl auth can-i --list` prints them (resource.group).
HUB_WORKSPACE_NS = {
    WORKSPACES: {"get", "list", "watch", "create", "patch", "delete"},
    "secrets": {"create", "update", "delete"},
    "events": {"list", "watch"},
}
# The operator (operator/devplane_operator): kopf watches + the cache's LISTs; status written
# through the subresource only; children created, read, patched and deleted (never replaced);
# Events created; a Secret read by name (the hub Secret's owner, checked before a pod gets it).
CHILD_VERBS = {"get", "list", "watch", "create", "patch", "delete"}
OPERATOR_WORKSPACE_NS = {
    WORKSPACES: {"list", "watch"},
    f"{WORKSPACES}/status": {"patch"},
    # blockOwnerDeletion on children, under OwnerReferencesPermissionEnforcement admission.
    f"{WORKSPACES}/finalizers": {"update"},
    "pods": CHILD_VERBS,
    "services": CHILD_VERBS,
    "configmaps": CHILD_VERBS,
    "persistentvolumeclaims": CHILD_VERBS,
    "networkpolicies.networking.k8s.io": CHILD_VERBS,
    "events": {"create"},
    "secrets": {"get"},
}
# Granted to every authenticated identity by the cluster's default roles; not ours.
BASELINE = {
    "selfsubjectreviews.authentication.k8s.io",
    "selfsubjectaccessreviews.authorization.k8s.io",
    "selfsubjectrulesreviews.authorization.k8s.io",
}

FORBIDDEN_EVERYWHERE = [
    # (verb, resource[/subresource], namespace or None for --all-namespaces / cluster scope)
    ("get", "secrets", "kube-system"),
    ("list", "secrets", "default"),
    ("create", "pods/exec", "WS"),
    ("create", "pods/portforward", "WS"),
    ("get", "pods/log", "RELEASE"),
    ("list", "namespaces", None),
    ("list", "nodes", None),
    ("list", WORKSPACES, "default"),
    ("list", "pods", "kube-system"),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", None),
    ("create", "clusterroles.rbac.authorization.k8s.io", None),
    ("create", "rolebindings.rbac.authorization.k8s.io", "WS"),
    ("escalate", "roles.rbac.authorization.k8s.io", "WS"),
    ("bind", "roles.rbac.authorization.k8s.io", "WS"),
    ("create", "serviceaccounts/token", "RELEASE"),
    ("get", "secrets", "RELEASE"),  # the proxy token reaches pods as a file or env, not via API
    ("create", "leases.coordination.k8s.io", "WS"),
]


@pytest.fixture(scope="module")
def release(install) -> Release:
    return install("defaults")


def can_i(
    kubectl, rel: Release, sa: str, verb: str, resource: str, namespace, name: str = ""
) -> bool:
    """One `kubectl auth can-i` question. ``resource`` may be "pods/exec" (a subresource;
    kubectl itself would read the part after "/" as an object name)."""
    ns = {"WS": rel.workspace_namespace, "RELEASE": rel.namespace}.get(namespace, namespace)
    where = ["--all-namespaces"] if ns is None else ["-n", ns]
    resource, _, subresource = resource.partition("/")
    what = f"{resource}/{name}" if name else resource
    extra = [f"--subresource={subresource}"] if subresource else []
    proc = kubectl("auth", "can-i", verb, what, *extra, "--as", rel.sa(sa), *where, check=False)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i: {proc.stdout} {proc.stderr}"
    return answer == "yes"


def allowed(kubectl, rel: Release, sa: str, namespace: str) -> dict[str, set[str]]:
    """`kubectl auth can-i --list` as a resource -> verbs table (resourceNames ignored)."""
    out = kubectl("auth", "can-i", "--list", "--as", rel.sa(sa), "-n", namespace)
    table: dict[str, set[str]] = {}
    for line in out.splitlines()[1:]:
        m = re.match(r"^(\S+)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$", line)
        if not m:
            continue  # non-resource URL rows (/api, /healthz, ...) of the discovery roles
        resource, _, _, verbs = m.groups()
        if resource in BASELINE:
            continue
        table.setdefault(resource, set()).update(verbs.split())
    return table


def test_hub_may_do_exactly_what_the_spawner_does(kubectl, release: Release) -> None:
    assert allowed(kubectl, release, "hub", release.workspace_namespace) == HUB_WORKSPACE_NS
    assert allowed(kubectl, release, "hub", release.namespace) == {}


def test_operator_may_do_exactly_its_job(kubectl, release: Release) -> None:
    assert (
        allowed(kubectl, release, "operator", release.workspace_namespace) == OPERATOR_WORKSPACE_NS
    )
    # In its own namespace: only the leader-election Lease (create, and its own by name).
    assert allowed(kubectl, release, "operator", release.namespace) == {
        "leases.coordination.k8s.io": {"create", "get", "update"}
    }
    lease = "leases.coordination.k8s.io"
    own = f"{release.name}-devplane-operator"
    assert can_i(kubectl, release, "operator", "update", lease, "RELEASE", name=own)
    assert not can_i(kubectl, release, "operator", "update", lease, "RELEASE", name="other")
    assert not can_i(kubectl, release, "operator", "update", lease, "RELEASE")
    # Secrets: one by name, in the workspace namespace; never a listing or a watch.
    assert can_i(kubectl, release, "operator", "get", "secrets", "WS", name="ws-alice-hub")
    for verb in ("list", "watch", "create", "update", "patch", "delete"):
        assert not can_i(kubectl, release, "operator", verb, "secrets", "WS"), verb


def test_proxy_has_no_kubernetes_permissions(kubectl, release: Release) -> None:
    kubectl("get", "serviceaccount", f"{release.name}-devplane-proxy", "-n", release.namespace)
    for ns in (release.workspace_namespace, release.namespace):
        assert allowed(kubectl, release, "proxy", ns) == {}


def test_only_the_expected_identities_exist(release: Release) -> None:
    """No service account or binding beyond hub, operator and proxy (a culler or other pod
    with its own identity would need its own checks here)."""
    accounts = {d["metadata"]["name"] for d in release.manifest if d["kind"] == "ServiceAccount"}
    prefix = f"{release.name}-devplane-"
    assert accounts == {prefix + "hub", prefix + "operator", prefix + "proxy"}
    bindings = [d for d in release.manifest if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    subjects = {s["name"] for b in bindings for s in b["subjects"]}
    assert subjects == {prefix + "hub", prefix + "operator"}


@pytest.mark.parametrize("sa", ["hub", "operator", "proxy"])
def test_nobody_may_reach_beyond_their_job(kubectl, release: Release, sa: str) -> None:
    granted = [
        (verb, resource, ns)
        for verb, resource, ns in FORBIDDEN_EVERYWHERE
        if can_i(kubectl, release, sa, verb, resource, ns)
    ]
    assert granted == []


def test_must_be_allowed(kubectl, release: Release) -> None:
    """Spot checks through can-i's single-question path (not only --list)."""
    for verb in ("create", "patch", "delete", "watch"):
        assert can_i(kubectl, release, "hub", verb, WORKSPACES, "WS")
    assert can_i(kubectl, release, "hub", "update", "secrets", "WS")
    assert not can_i(kubectl, release, "hub", "get", "secrets", "WS")
    assert can_i(kubectl, release, "operator", "patch", f"{WORKSPACES}/status", "WS")
    assert can_i(kubectl, release, "operator", "create", "pods", "WS")
    assert not can_i(kubectl, release, "operator", "create", WORKSPACES, "WS")


# ------------------------------------------------------------------ derived from the code

# kubernetes_asyncio method verb -> RBAC verb
_VERBS = {"get": "get", "list": "list", "create": "create", "patch": "patch",
          "replace": "update", "delete": "delete"}  # fmt: skip
_RESOURCES = {"custom_object": WORKSPACES, "secret": "secrets", "event": "events"}


def _calls_in(paths) -> dict[str, set[str]]:
    """Kubernetes API calls in the source: resource -> RBAC verbs (watch for w.stream(list_*))."""
    calls: dict[str, set[str]] = {}
    call = re.compile(
        r"\.(get|list|create|patch|replace|delete)_namespaced_(custom_object|secret|event)\b"
    )
    watched = re.compile(r"stream\(\s*self\.\w+\.list_namespaced_(custom_object|secret|event)")
    for path in paths:
        text = path.read_text()
        for verb, kind in call.findall(text):
            calls.setdefault(_RESOURCES[kind], set()).add(_VERBS[verb])
        for kind in watched.findall(text):
            calls.setdefault(_RESOURCES[kind], set()).add("watch")
        unknown = re.findall(r"\.\w+_namespaced_(?!custom_object|secret|event)(\w+)\(", text)
        assert not unknown, f"{path}: API calls this test does not map yet: {unknown}"
    return calls


def test_hub_role_matches_the_spawner_source() -> None:
    sources = sorted((ROOT / "devplane_spawner").glob("*.py"))
    assert _calls_in(sources) == HUB_WORKSPACE_NS


def test_operator_role_matches_the_operator_source() -> None:
    """Every Kubernetes call in the operator goes through kube.Kube; the kinds it names
    literally (Lease, Event, Pod) and the generic child writes must map onto the Role."""
    sources = sorted((ROOT / "operator" / "devplane_operator").glob("*.py"))
    text = "\n".join(p.read_text() for p in sources)
    calls = set(re.findall(r"kube\.(get|list|create|patch|replace|delete)\(\s*\"(\w+)\"", text))
    assert ("create", "Event") in calls and ("replace", "Lease") in calls
    verbs = {"get": "get", "list": "list", "create": "create", "patch": "patch",
             "replace": "update", "delete": "delete"}  # fmt: skip
    tables = {
        "Event": OPERATOR_WORKSPACE_NS["events"],
        "Pod": OPERATOR_WORKSPACE_NS["pods"],
        "Secret": OPERATOR_WORKSPACE_NS["secrets"],
        "Lease": {"create", "get", "update"},
    }
    for verb, kind in calls:
        assert verbs[verb] in tables[kind], f"the operator calls {verb} on {kind}"
    # It never replaces (PUT) anything but its Lease, so no `update` on children or Workspaces.
    replaced = set(re.findall(r"kube\.replace\(\s*\"?(\w+)", text))
    assert replaced == {"Lease"}
    # Status goes through the subresource; the Workspace itself is never patched.
    workspace_patches = re.findall(r"kube\.patch\(\s*KIND,(.{0,300}?)\)\n", text, re.S)
    assert workspace_patches
    assert all('subresource="status"' in call for call in workspace_patches)


# ------------------------------------------------------------------ the real programs


def _token_kubeconfig(kubectl, kubeconfig: Path, rel: Release, sa: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the component's service account (a TokenRequest
    token, like the projected one its pod gets), on the same API server."""
    token = kubectl(
        "create", "token", f"{rel.name}-devplane-{sa}", "-n", rel.namespace, "--duration=1h"
    ).strip()
    admin = json.loads(kubeconfig.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": sa, "user": {"token": token}}],
        "contexts": [{"name": sa, "context": {"cluster": admin["clusters"][0]["name"],
                                              "user": sa, "namespace": rel.namespace}}],
        "current-context": sa,
    }  # fmt: skip
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def test_real_operator_and_hub_calls_work_with_exactly_these_roles(
    kubectl, kubeconfig: Path, release: Release, tmp_path: Path
) -> None:
    """The other half of "exactly": the granted rights are enough. The real operator runs
    with the operator's service-account token and the environment the chart gives it; the
    hub's calls are made with the hub's token. A Workspace then goes all the way to Running
    in the chart's restricted workspace namespace (so the operator's pods are admitted there)."""
    ws_ns = release.workspace_namespace
    hub_cfg = _token_kubeconfig(kubectl, kubeconfig, release, "hub", tmp_path / "hub.json")
    op_cfg = _token_kubeconfig(kubectl, kubeconfig, release, "operator", tmp_path / "op.json")

    def as_hub(*args: str, check: bool = True, stdin: str | None = None):
        proc = kubectl("--kubeconfig", str(hub_cfg), *args, stdin=stdin, check=False)
        if check:
            assert proc.returncode == 0, f"as the hub: kubectl {' '.join(args)}: {proc.stderr}"
        return proc

    (deployment,) = [
        d for d in release.manifest
        if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-operator")
    ]  # fmt: skip
    env = {
        e["name"]: e["value"]
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        if "value" in e and e["name"] not in ("DEVPLANE_METRICS_PORT", "DEVPLANE_NAMESPACES")
    }
    env |= {"POD_NAMESPACE": release.namespace, "POD_NAME": "operator-under-test"}
    operator = OperatorProcess(
        op_cfg, [ws_ns], env=env, log_path=tmp_path / "operator.log", leader_election=True
    ).start()
    try:
        operator.wait_ready(timeout=90)  # Lease taken, cache primed: list/watch all work
        # The spawner's writes, as the hub: the Workspace, then the credentials Secret owned
        # by it (created, never read back: the hub has no `get` on Secrets). The Workspace is
        # created stopped and started once its Secret exists, so that the operator surely
        # reads the Secret's owner before it creates the pod.
        sample = yaml.safe_load(SAMPLE.read_text())
        sample["spec"]["started"] = False
        as_hub("create", "-n", ws_ns, "-f", "-", stdin=json.dumps(sample))
        ws = json.loads(as_hub("get", "workspace", "alice", "-n", ws_ns, "-o", "json").stdout)
        as_hub("create", "-f", "-", stdin=json.dumps(hub_secret_manifest(ws)))
        as_hub("patch", "workspace", "alice", "-n", ws_ns, "--type=merge",
               "-p", '{"spec": {"started": true}}')  # fmt: skip
        phase = ""
        # Generous: with namespaced rights only, kopf spends its first ~60 s retrying the two
        # cluster-wide lists it may not do (see the end of this test) before its watches run.
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and phase != "Running":
            phase = as_hub(
                "get", "workspace", "alice", "-n", ws_ns, "-o", "jsonpath={.status.phase}"
            ).stdout
            time.sleep(1)
        assert phase == "Running", operator.tail()
        # The operator built every child in the restricted namespace.
        for kind, name in [("pod", "ws-alice"), ("service", "ws-alice"),
                           ("networkpolicy", "ws-alice"), ("configmap", "ws-alice-opencode"),
                           ("pvc", "home-alice")]:  # fmt: skip
            kubectl("get", kind, name, "-n", ws_ns)
        # Its Events, readable by the hub (the spawner shows them as progress).
        events = as_hub("get", "events", "-n", ws_ns, "-o", "json").stdout
        assert "Workspace" in events
        # Stopping: the hub patches the spec; the operator removes the pod.
        as_hub("patch", "workspace", "alice", "-n", ws_ns, "--type=merge",
               "-p", '{"spec": {"started": false}}')  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            gone = kubectl("get", "pod", "ws-alice", "-n", ws_ns, check=False).returncode != 0
            if gone:
                break
            time.sleep(1)
        assert gone, operator.tail()
        # And what the hub must not do, even now that a Secret exists to read.
        assert "Forbidden" in as_hub("get", "secret", "ws-alice-hub", "-n", ws_ns,
                                     check=False).stderr  # fmt: skip
        # Deleting the Secret (the spawner's cleanup_secret_on_stop), then the Workspace.
        as_hub("delete", "secret", "ws-alice-hub", "-n", ws_ns)
        as_hub("delete", "workspace", "alice", "-n", ws_ns)
        assert "Forbidden" in as_hub("get", "pods", "-n", ws_ns, check=False).stderr
        assert operator.proc.poll() is None, operator.tail()
    finally:
        operator.stop()
    # Nothing the operator needs was refused. kopf itself probes two cluster-wide lists at
    # start-up (CustomResourceDefinitions, Namespaces) and carries on without them; those are
    # deliberately not granted (no cluster-wide rights), everything else must have worked.
    refused = [
        line for line in (tmp_path / "operator.log").read_text().splitlines()
        if "Forbidden" in line or " 403" in line
    ]  # fmt: skip
    unexpected = [
        line for line in refused
        if "/customresourcedefinitions" not in line and "/api/v1/namespaces ->" not in line
    ]  # fmt: skip
    assert unexpected == [], "\n".join(unexpected)
