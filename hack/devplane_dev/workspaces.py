"""Workspace manifests for tests and benchmarks, named as the spawner names them."""

from __future__ import annotations

import json
from typing import Any

from devplane_api import naming
from devplane_api.v1alpha1 import API_VERSION, KIND

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
