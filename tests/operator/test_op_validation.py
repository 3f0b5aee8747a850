"""The API server itself rejects bad Workspaces, with a field-level message (CRD schema + CEL).

No operator is involved: this is the CRD in chart/crds/ doing its job. Creates use a
server-side dry run (full validation, nothing stored); the update rules (immutability,
no shrinking) patch a stored Workspace.
"""

from __future__ import annotations

import copy
import json
import uuid

import pytest
from devplane_dev.workspaces import EXAMPLE_PROVIDER as PROVIDER
from op_helpers import apply, workspace


def _without(path: str):
    def change(ws):
        *parents, leaf = path.split(".")
        node = ws
        for p in parents:
            node = node[p]
        del node[leaf]

    return change


def _set(path: str, value):
    def change(ws):
        *parents, leaf = path.split(".")
        node = ws
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value

    return change


@pytest.fixture(scope="module")
def shared_namespace(kubectl, crd):
    """One namespace for all dry-run creates (nothing is stored): saves a namespace per case."""
    name = f"opval-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", name)
    kubectl("label", "namespace", name, "devplane.io/test=true")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


INVALID_CREATES = {
    "missing owner": (_without("spec.owner"), "spec.owner: Required value"),
    "empty owner": (_set("spec.owner", ""), "spec.owner: Invalid value"),
    "missing hubSecretRef": (_without("spec.hubSecretRef"), "spec.hubSecretRef: Required value"),
    "unknown reclaimPolicy": (
        _set("spec.storage", {"reclaimPolicy": "Keep"}),
        'spec.storage.reclaimPolicy: Unsupported value: "Keep"',
    ),
    "size not a quantity": (
        _set("spec.storage", {"size": "ten gigs"}),
        'spec.storage.size: Invalid value: "string": must be a Kubernetes quantity',
    ),
    "cpu limit not a quantity": (
        _set("spec.resources", {"limits": {"cpu": "lots"}}),
        'spec.resources.limits.cpu: Invalid value: "string": must be a Kubernetes quantity',
    ),
    "request above limit": (
        _set("spec.resources", {"requests": {"memory": "8Gi"}, "limits": {"memory": "4Gi"}}),
        'spec.resources.requests.memory: Invalid value: "object": '
        "requests.memory must be less than or equal to limits.memory",
    ),
    "no providers": (
        _set("spec.ai", {"providers": []}),
        "spec.ai.providers: Invalid value: 0: spec.ai.providers in body should have at least 1",
    ),
    "duplicate provider names": (
        _set("spec.ai", {"providers": [PROVIDER, {**PROVIDER, "models": ["other"]}]}),
        'spec.ai.providers: Invalid value: "array": provider names must be unique',
    ),
    "ftp base URL": (
        _set("spec.ai", {"providers": [{**PROVIDER, "baseURL": "ftp://llm/v1"}]}),
        'spec.ai.providers[0].baseURL: Invalid value: "string": must be an http:// or https://',
    ),
    "base URL without host": (
        _set("spec.ai", {"providers": [{**PROVIDER, "baseURL": "http:///v1"}]}),
        "spec.ai.providers[0].baseURL: Invalid value",
    ),
    "unknown default model": (
        _set("spec.ai", {"providers": [PROVIDER], "defaultModel": "gpt-4"}),
        'spec.ai.defaultModel: Invalid value: "object": defaultModel must be one of the '
        "providers' models",
    ),
    "bad provider name": (
        _set("spec.ai", {"providers": [{**PROVIDER, "name": "Bad_Name"}]}),
        'spec.ai.providers[0].name: Invalid value: "Bad_Name"',
    ),
    "model list empty": (
        _set("spec.ai", {"providers": [{**PROVIDER, "models": []}]}),
        "spec.ai.providers[0].models: Invalid value: 0",
    ),
    "image with spaces": (
        _set("spec.image", "my image:1"),
        'spec.image: Invalid value: "my image:1"',
    ),
    "server name with a slash": (
        _set("spec.serverName", "a/b"),
        'spec.serverName: Invalid value: "a/b"',
    ),
    "started not a boolean": (
        _set("spec.started", "yes"),
        'spec.started: Invalid value: "string": spec.started in body must be of type boolean',
    ),
    "api key ref without key": (
        _set("spec.ai", {"providers": [{**PROVIDER, "apiKeySecretRef": {"name": "s"}}]}),
        "spec.ai.providers[0].apiKeySecretRef.key: Required value",
    ),
    "git email not an address": (
        _set("spec.gitIdentity", {"email": "alice at example.org"}),
        'spec.gitIdentity.email: Invalid value: "alice at example.org"',
    ),
    "a DEVPLANE_ variable in extraEnv": (
        _set("spec.extraEnv", [{"name": "DEVPLANE_TTYD_SOCKET", "value": "/x"}]),
        "DEVPLANE_ variables are DevPlane's own",
    ),
    "a volume with two sources": (
        _set(
            "spec.extraVolumes",
            [{"name": "d", "mountPath": "/d", "emptyDir": {}, "configMap": {"name": "c"}}],
        ),
        "a volume needs exactly one of configMap, persistentVolumeClaim, emptyDir",
    ),
    "a hostPath volume": (
        _set("spec.extraVolumes", [{"name": "h", "mountPath": "/h", "hostPath": {"path": "/"}}]),
        'unknown field "spec.extraVolumes[0].hostPath"',
    ),
    "a mount path in other words": (
        _set("spec.extraVolumes", [{"name": "h", "mountPath": "/home//dev", "emptyDir": {}}]),
        "must be a clean absolute path (no //, . or .. parts)",
    ),
    "a workspace's own Secret to pull with": (
        _set("spec.imagePullSecrets", [{"name": "ws-bob-hub"}]),
        "names starting with ws- or home- are the workspaces' own objects",
    ),
    "an unknown toleration operator": (
        _set("spec.scheduling", {"tolerations": [{"key": "k", "operator": "Matches"}]}),
        'spec.scheduling.tolerations[0].operator: Unsupported value: "Matches"',
    ),
}


def create_refused(kubectl, namespace: str, case: str) -> tuple[str, str]:
    """Server-side dry-run create of INVALID_CREATES[case]: (its stderr, the words expected).
    Also used against the oldest API server (test_op_compat.py)."""
    change, expected = INVALID_CREATES[case]
    body = workspace("alice")
    change(body)
    proc = kubectl(
        "create", "--dry-run=server", "-n", namespace, "-f", "-",
        stdin=json.dumps(body), check=False,
    )  # fmt: skip
    assert proc.returncode != 0, f"{case}: accepted"
    return proc.stderr, expected


@pytest.mark.parametrize("case", sorted(INVALID_CREATES))
def test_invalid_workspace_is_rejected_with_a_field_message(case, kubectl, shared_namespace):
    stderr, expected = create_refused(kubectl, shared_namespace, case)
    assert expected in stderr, stderr


def test_the_valid_base_is_accepted_and_defaulted(kubectl, shared_namespace):
    """Guards the cases above: they fail because of their one change, not the base."""
    body = workspace("alice", ai={"providers": [PROVIDER], "defaultModel": "vllm/qwen"})
    out = kubectl(
        "create", "--dry-run=server", "-n", shared_namespace, "-o", "json", "-f", "-",
        stdin=json.dumps(body),
    )  # fmt: skip
    spec = json.loads(out)["spec"]
    assert spec["started"] is True
    assert spec["serverName"] == ""
    assert spec["storage"] == {"reclaimPolicy": "Retain"}


INVALID_UPDATES = {
    "owner changed": (
        {"spec": {"owner": "mallory"}},
        'spec.owner: Invalid value: "string": owner is immutable',
    ),
    "serverName changed": (
        {"spec": {"serverName": "other"}},
        'spec.serverName: Invalid value: "string": serverName is immutable',
    ),
    "volume shrunk": (
        {"spec": {"storage": {"size": "1Gi"}}},
        'spec.storage.size: Invalid value: "string": the home volume cannot shrink',
    ),
    "storage class changed": (
        {"spec": {"storage": {"storageClassName": "fast"}}},
        'spec.storage.storageClassName: Invalid value: "string": storageClassName is immutable',
    ),
}


def test_immutable_fields_and_shrinking_are_rejected_on_update(kubectl, crd, namespace):
    base = workspace("alice", storage={"size": "5Gi", "storageClassName": "standard"})
    apply(kubectl, namespace, copy.deepcopy(base))
    for case, (patch, expected) in INVALID_UPDATES.items():
        proc = kubectl(
            "patch", "workspace", "alice", "-n", namespace, "--type=merge",
            "-p", json.dumps(patch), check=False,
        )  # fmt: skip
        assert proc.returncode != 0, f"{case}: accepted"
        assert expected in proc.stderr, f"{case}: {proc.stderr}"
    # Growing the volume and stopping are fine.
    kubectl(
        "patch", "workspace", "alice", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"storage": {"size": "6Gi"}, "started": False}}),
    )  # fmt: skip
