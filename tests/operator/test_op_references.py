"""What a Workspace may reference, enforced by the real operator (issue 13, finding 5).

Whoever can write a Workspace must not be able to hand its pod a Secret that is not its own,
nor run an image from anywhere. So the operator accepts only its own hub Secret (named for
this Workspace and owned by it, as the spawner writes it), API-key Secrets on the allow-list,
and images from the allowed registries. Anything else is refused: phase Failed, Ready reason
`Refused` with a message that says what is wrong and how to fix it, a Warning Event — and no
pod, so the Secret never reaches a container.
"""

from __future__ import annotations

import base64
import json

from devplane_dev.workspaces import EXAMPLE_PROVIDER, hub_secret_manifest
from devplane_operator import kube as kube_module
from devplane_operator.kube import Kube
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from op_helpers import (
    apply,
    condition,
    get,
    wait_for,
    wait_ready,
    workspace,
    workspace_event_reasons,
)

from devplane_api import naming


def decided(kubectl, ns: str, name: str) -> dict:
    """The Workspace once the operator has decided about it: Running or Failed."""

    def check():
        ws = get(kubectl, ns, "workspace", name)
        phase = ((ws or {}).get("status") or {}).get("phase")
        return ws if phase in ("Running", "Failed") else None

    return wait_for(f"workspace {name} to be Running or Failed", check)


def assert_refused(kubectl, ns: str, name: str, *words: str) -> dict:
    """``name`` is Failed with reason Refused, its message holds ``words``, it has no pod and
    a Warning Event says so."""
    ws = decided(kubectl, ns, name)
    ready = condition(ws, "Ready")
    assert ws["status"]["phase"] == "Failed", ws["status"]
    assert (ready["status"], ready["reason"]) == ("False", "Refused"), ready
    for word in words:
        assert word in ws["status"]["message"], ws["status"]["message"]
    pod = naming.child_name(name)
    wait_for(f"no pod {pod}", lambda: get(kubectl, ns, "pod", pod) is None, timeout=60)
    wait_for("a Warning Event Refused", lambda: "Refused" in (
        workspace_event_reasons(kubectl, ns, name, type_="Warning")))  # fmt: skip
    return ws


def stored_with_hub_secret(kubectl, ns: str, owner: str) -> dict:
    """``owner``'s stopped Workspace and its hub Secret, written as the spawner writes them."""
    apply(kubectl, ns, workspace(owner, started=False))
    ws = get(kubectl, ns, "workspace", naming.workspace_name(owner))
    apply(kubectl, ns, hub_secret_manifest(ws))
    return ws


def test_another_users_hub_secret_is_refused(kubectl, ws_namespace):
    ns, _ = ws_namespace
    stored_with_hub_secret(kubectl, ns, "bob")
    mallory = workspace("mallory")
    mallory["spec"]["hubSecretRef"] = {"name": naming.child_name("bob", "hub")}
    apply(kubectl, ns, mallory)

    # The message names the Secret asked for and the only one allowed.
    assert_refused(kubectl, ns, "mallory", "ws-bob-hub", "ws-mallory-hub")


def test_a_hub_secret_the_workspace_does_not_own_is_refused(kubectl, ws_namespace):
    """The right name is not enough: a Secret of that name that this Workspace does not own
    (written by someone else, or left behind by an earlier Workspace) is refused too."""
    ns, _ = ws_namespace
    apply(kubectl, ns, workspace("dave", started=False))
    dave = get(kubectl, ns, "workspace", "dave")
    foreign = hub_secret_manifest(dave)
    del foreign["metadata"]["ownerReferences"]
    apply(kubectl, ns, foreign)
    kubectl("patch", "ws", "dave", "-n", ns, "--type=merge", "-p", '{"spec":{"started":true}}')

    assert_refused(kubectl, ns, "dave", "ws-dave-hub", "ownerReference")

    # The fix the message gives: the hub writes the Secret again, owned by the Workspace, and
    # starts it again.
    kubectl("delete", "secret", "ws-dave-hub", "-n", ns)
    apply(kubectl, ns, hub_secret_manifest(dave))
    kubectl("patch", "ws", "dave", "-n", ns, "--type=merge", "-p", '{"spec":{"started":false}}')
    kubectl("patch", "ws", "dave", "-n", ns, "--type=merge", "-p", '{"spec":{"started":true}}')
    wait_ready(kubectl, ns, "dave")


def test_api_keys_come_only_from_allow_listed_secrets(kubectl, make_namespace, run_operator):
    ns = make_namespace("op")
    run_operator(ns, DEVPLANE_API_KEY_SECRETS="llm-key")
    stored_with_hub_secret(kubectl, ns, "bob")
    # The attack of the issue: another user's server token as "the LLM API key", which the
    # attacker's gateway would then present for them.
    stolen = {"name": naming.child_name("bob", "hub"), "key": "JUPYTERHUB_API_TOKEN"}
    apply(kubectl, ns, workspace("mallory", ai={
        "providers": [{**EXAMPLE_PROVIDER, "apiKeySecretRef": stolen}]}))  # fmt: skip

    assert_refused(kubectl, ns, "mallory", "ws-bob-hub", "llm-key", "DEVPLANE_API_KEY_SECRETS")

    # An allow-listed Secret is used as before.
    allowed = {"name": "llm-key", "key": "api-key"}
    apply(kubectl, ns, workspace("carol", ai={
        "providers": [{**EXAMPLE_PROVIDER, "apiKeySecretRef": allowed}]}))  # fmt: skip
    wait_ready(kubectl, ns, "carol")
    containers = {c["name"]: c for c in get(kubectl, ns, "pod", "ws-carol")["spec"]["containers"]}

    def refs(container: str) -> list[dict]:
        env = containers[container].get("env", [])
        return [e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e]

    # The key reaches the auth proxy's container (its LLM gateway), never the user's.
    assert refs("authproxy") == [allowed]
    assert refs("workspace") == []


def test_images_come_only_from_allowed_registries(kubectl, make_namespace, run_operator):
    ns = make_namespace("op")
    registry = "registry.example.internal/devplane"
    run_operator(
        ns,
        DEVPLANE_ALLOWED_IMAGE_REGISTRIES=registry,
        DEVPLANE_WORKSPACE_IMAGE=f"{registry}/workspace:1",
    )
    apply(kubectl, ns, workspace("erin"))
    wait_ready(kubectl, ns, "erin")

    # A look-alike path is not under the prefix.
    lookalike = "registry.example.internal/devplane-tools/miner:1"
    apply(kubectl, ns, workspace("mallory", image=lookalike))
    assert_refused(kubectl, ns, "mallory", lookalike, registry, "DEVPLANE_ALLOWED_IMAGE_REGISTRIES")

    # A running workspace switched to an image from elsewhere loses its pod.
    patch = {"spec": {"image": "elsewhere.example/ws:1"}}
    kubectl("patch", "ws", "erin", "-n", ns, "--type=merge", "-p", json.dumps(patch))
    assert_refused(kubectl, ns, "erin", "elsewhere.example/ws:1")


async def test_the_operator_reads_a_secrets_metadata_never_its_data(
    kubectl, kubeconfig, namespace, monkeypatch
):
    """RBAC cannot grant less than `get` on Secrets, so the operator asks for less: the API
    server answers with the metadata alone."""
    kubectl("create", "secret", "generic", "s", "--from-literal=token=sekrit", "-n", namespace)

    async def configuration() -> k8s.Configuration:  # the admin's kubeconfig, not the pod's
        config = k8s.Configuration()
        await k8s_config.load_kube_config(str(kubeconfig), client_configuration=config)
        return config

    monkeypatch.setattr(kube_module, "load_configuration", configuration)
    kube = await Kube.connect()
    try:
        answer = await kube.get("Secret", namespace, "s", metadata_only=True)
        missing = await kube.get("Secret", namespace, "absent", metadata_only=True)
    finally:
        await kube.close()
    assert answer is not None and answer["kind"] == "PartialObjectMetadata"
    assert answer["metadata"]["name"] == "s"
    text = json.dumps(answer)
    assert "data" not in answer and base64.b64encode(b"sekrit").decode() not in text
    assert missing is None
