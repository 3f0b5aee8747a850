"""What a Workspace may reference (policy.py), without a cluster: every rule and its message.

test_op_references.py runs the same rules in the real operator against the real API server.
"""

from __future__ import annotations

import json

import pytest
from devplane_dev.workspaces import EXAMPLE_PROVIDER, EXAMPLE_PROVIDERS_JSON, workspace_manifest
from devplane_operator.model import Refused, parse_workspace
from devplane_operator.policy import check_hub_secret, check_spec
from devplane_operator.settings import image_allowed, load_settings

from devplane_api.v1alpha1 import API_VERSION, KIND

ENV = {
    "DEVPLANE_NAMESPACES": "ws",
    "DEVPLANE_LLM_PROVIDERS": EXAMPLE_PROVIDERS_JSON,
    "DEVPLANE_WORKSPACE_IMAGE": "registry.example/devplane/workspace:1",
    "DEVPLANE_ALLOWED_IMAGE_REGISTRIES": "registry.example/devplane,mirror.example:5000",
    "DEVPLANE_API_KEY_SECRETS": "llm-key",
}


def ws(owner: str = "alice", **spec):
    body = workspace_manifest(owner, **spec)
    body["metadata"] |= {"namespace": "ws", "uid": f"uid-of-{owner}"}
    return parse_workspace(body, load_settings([], ENV))


def refusal(workspace, **env) -> str:
    with pytest.raises(Refused) as info:
        check_spec(workspace, load_settings([], {**ENV, **env}))
    return str(info.value)


@pytest.mark.parametrize(
    ("image", "allowed"),
    [
        ("registry.example/devplane/workspace:1", True),
        ("registry.example/devplane/team/ws@sha256:0123", True),
        ("mirror.example:5000/anything:1", True),
        ("registry.example/devplane-tools/miner:1", False),  # look-alike path
        ("registry.example/devplane", False),  # the prefix itself is no image under it
        ("registry.example.evil/devplane/ws:1", False),  # look-alike host
        ("mirror.example/anything:1", False),  # another port is another registry
        ("mirror.example:50001/anything:1", False),
        ("devplane/workspace:1", False),  # a short name resolves elsewhere
    ],
)
def test_an_image_is_allowed_only_under_a_prefix(image, allowed):
    assert image_allowed(image, ("registry.example/devplane", "mirror.example:5000")) is allowed


def test_a_workspace_that_references_only_its_own_is_accepted():
    key = {**EXAMPLE_PROVIDER, "apiKeySecretRef": {"name": "llm-key", "key": "api-key"}}
    check_spec(ws(ai={"providers": [key]}), load_settings([], ENV))
    check_spec(ws(image="mirror.example:5000/team/ws:2"), load_settings([], ENV))


def test_another_hub_secret_is_refused_naming_the_own_one():
    other = ws("mallory", hubSecretRef={"name": "ws-bob-hub"})
    message = refusal(other)
    assert "'ws-bob-hub'" in message and "'ws-mallory-hub'" in message
    assert "set spec.hubSecretRef.name to 'ws-mallory-hub'" in message


def test_an_api_key_secret_off_the_list_is_refused_naming_the_list_and_the_setting():
    stolen = {**EXAMPLE_PROVIDER, "apiKeySecretRef": {"name": "ws-bob-hub", "key": "T"}}
    message = refusal(ws("mallory", ai={"providers": [stolen]}))
    assert "spec.ai.providers[0].apiKeySecretRef names the Secret 'ws-bob-hub'" in message
    assert "(allowed: llm-key)" in message and "DEVPLANE_API_KEY_SECRETS" in message
    # No list at all: "none" rather than an empty pair of brackets.
    assert "(allowed: none)" in refusal(ws("mallory", ai={"providers": [stolen]}),
                                        DEVPLANE_API_KEY_SECRETS="")  # fmt: skip


def test_the_default_providers_secrets_are_allowed_with_them():
    own = {**EXAMPLE_PROVIDER, "apiKeySecretRef": {"name": "vllm-key", "key": "k"}}
    settings = load_settings(
        [], {**ENV, "DEVPLANE_API_KEY_SECRETS": "", "DEVPLANE_LLM_PROVIDERS": json.dumps([own])}
    )
    check_spec(ws(ai={"providers": [own]}), settings)


def test_an_image_from_elsewhere_is_refused_naming_the_registries_and_the_setting():
    message = refusal(ws(image="elsewhere.example/ws:1"))
    assert "'elsewhere.example/ws:1' is not from an allowed registry" in message
    assert "(registry.example/devplane, mirror.example:5000)" in message
    assert "DEVPLANE_ALLOWED_IMAGE_REGISTRIES" in message


def _owner_ref(uid: str, kind: str = KIND, api_version: str = API_VERSION) -> dict:
    return {"apiVersion": api_version, "kind": kind, "name": "alice", "uid": uid}


@pytest.mark.parametrize(
    ("refs", "accepted"),
    [
        ([_owner_ref("uid-of-alice")], True),
        ([_owner_ref("uid-of-someone"), _owner_ref("uid-of-alice")], True),
        ([], False),
        ([_owner_ref("uid-of-an-earlier-alice")], False),
        ([_owner_ref("uid-of-alice", kind="Deployment", api_version="apps/v1")], False),
    ],
)
def test_the_hub_secret_must_be_owned_by_this_very_workspace(refs, accepted):
    secret = {"kind": "PartialObjectMetadata", "metadata": {"name": "ws-alice-hub"}}
    if refs:
        secret["metadata"]["ownerReferences"] = refs
    if accepted:
        check_hub_secret(ws(), secret)
        return
    with pytest.raises(Refused) as info:
        check_hub_secret(ws(), secret)
    message = str(info.value)
    assert "'ws-alice-hub' does not belong to this Workspace" in message
    assert "uid uid-of-alice" in message and "start the server again from the hub" in message


def test_a_hub_secret_not_written_yet_is_left_to_the_kubelet():
    check_hub_secret(ws(), None)
