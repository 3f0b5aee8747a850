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

import re

import pytest
from chart_helpers import ROOT, Release

pytestmark = pytest.mark.cluster

# What each identity may do in the workspace namespace: resource -> verbs. Resources as
# `kubectl auth can-i --list` prints them (resource.group).
HUB_WORKSPACE_NS = {
    "workspaces.devplane.io": {"get", "list", "watch", "create", "patch", "delete"},
    "secrets": {"create", "update", "patch", "delete"},
    "events": {"list", "watch"},
}
# The operator (operator/devplane_operator): kopf watches + the cache's LISTs; status written
# through the subresource only; children created, read, patched and deleted (never replaced);
# Events created.
CHILD_VERBS = {"get", "list", "watch", "create", "patch", "delete"}
OPERATOR_WORKSPACE_NS = {
    "workspaces.devplane.io": {"list", "watch"},
    "workspaces.devplane.io/status": {"patch"},
    # blockOwnerDeletion on children, under OwnerReferencesPermissionEnforcement admission.
    "workspaces.devplane.io/finalizers": {"update"},
    "pods": CHILD_VERBS,
    "services": CHILD_VERBS,
    "configmaps": CHILD_VERBS,
    "persistentvolumeclaims": CHILD_VERBS,
    "networkpolicies.networking.k8s.io": CHILD_VERBS,
    "events": {"create"},
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
    ("list", "workspaces.devplane.io", "default"),
    ("list", "pods", "kube-system"),
    ("create", "customresourcedefinitions.apiextensions.k8s.io", None),
    ("create", "clusterroles.rbac.authorization.k8s.io", None),
    ("create", "rolebindings.rbac.authorization.k8s.io", "WS"),
    ("escalate", "roles.rbac.authorization.k8s.io", "WS"),
    ("bind", "roles.rbac.authorization.k8s.io", "WS"),
    ("create", "serviceaccounts/token", "RELEASE"),
    ("get", "secrets", "RELEASE"),  # the chart's own tokens reach pods as env, never via API
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
    assert not can_i(kubectl, release, "operator", "get", "secrets", "WS")


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
        assert can_i(kubectl, release, "hub", verb, "workspaces.devplane.io", "WS")
    assert can_i(kubectl, release, "hub", "update", "secrets", "WS")
    assert not can_i(kubectl, release, "hub", "get", "secrets", "WS")
    assert can_i(kubectl, release, "operator", "patch", "workspaces.devplane.io/status", "WS")
    assert can_i(kubectl, release, "operator", "create", "pods", "WS")
    assert not can_i(kubectl, release, "operator", "create", "workspaces.devplane.io", "WS")


# ------------------------------------------------------------------ derived from the code

# kubernetes_asyncio method verb -> RBAC verb
_VERBS = {"get": "get", "list": "list", "create": "create", "patch": "patch",
          "replace": "update", "delete": "delete"}  # fmt: skip
_RESOURCES = {"custom_object": "workspaces.devplane.io", "secret": "secrets", "event": "events"}


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
