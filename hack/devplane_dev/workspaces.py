"""Workspace manifests for tests and benchmarks, named as the spawner names them."""

from __future__ import annotations

import json
from typing import Any

from devplane_api import naming
from devplane_api.v1alpha1 import API_VERSION, KIND, workspace_labels

# An LLM provider as the operator's DEVPLANE_LLM_PROVIDERS and spec.ai take it. Nothing
# serves it: only the manifests the operator writes from it are looked at.
EXAMPLE_PROVIDER: dict[str, Any] = {
    "name": "vllm",
    "baseURL": "http://vllm.llm.svc:8000/v1",
    "models": ["qwen"],
}
EXAMPLE_PROVIDERS_JSON = json.dumps([EXAMPLE_PROVIDER])


def workspace_manifest(
    owner: str, server: str = "", metadata: dict[str, Any] | None = None, **spec: Any
) -> dict[str, Any]:
    """A Workspace for ``owner``'s server ``server``; ``metadata`` and ``spec`` add fields.

    The hub Secret is named as the spawner names it, so the operator finds it when it exists.
    """
    name = naming.workspace_name(owner, server)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, **(metadata or {})},
        "spec": {
            "owner": owner,
            "serverName": server,
            "hubSecretRef": {"name": naming.child_name(name, "hub")},
            **spec,
        },
    }


def hub_secret_manifest(ws: dict[str, Any], data: dict[str, str] | None = None) -> dict[str, Any]:
    """The hub-credentials Secret of the stored Workspace ``ws`` as the spawner writes it:
    named after the Workspace, labelled like it and owned by it (its uid), so the operator
    accepts it. ``data`` defaults to a placeholder token; nothing reads it in these tests."""
    meta, spec = ws["metadata"], ws["spec"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": naming.child_name(meta["name"], "hub"),
            "namespace": meta["namespace"],
            "labels": workspace_labels(meta["name"], spec["owner"], spec.get("serverName", "")),
            "ownerReferences": [
                {"apiVersion": API_VERSION, "kind": KIND, "name": meta["name"], "uid": meta["uid"]}
            ],
        },
        "type": "Opaque",
        "stringData": data or {"JUPYTERHUB_API_TOKEN": f"token-of-{spec['owner']}"},
    }
