"""The workspace LLM gateway's configuration (``gateway.json`` in the workspace's ConfigMap),
from a Workspace's ``spec.ai`` and the operator's default limits: pure, like opencode_config.

The gateway (devplane_authproxy.llm, in the auth proxy's container) reads it, and reads it again
when the kubelet replaces it, so changing a Workspace's providers, models or limits, or the
operator's default limits, reaches a running workspace without restarting it.

* ``providers``: each provider's real ``baseURL``, its ``models`` (the allow-list: the models
  of ``spec.ai``, and no other), and ``apiKeyEnv``, the variable of the auth proxy's container
  that holds its key (``apiKeySecretRef``); the user's container has neither the key nor its
  variable.
* ``limits``: ``spec.ai.limits``, each field it sets (0: no limit) instead of the operator's
  default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .opencode_config import api_key_env_var

VERSION = 1
LIMIT_KEYS = ("requestsPerMinute", "tokensPerMinute")


def build_gateway_config(ai_spec: Mapping[str, Any], defaults: Mapping[str, int]) -> dict[str, Any]:
    providers = []
    for provider in ai_spec.get("providers") or []:
        entry = {
            "name": provider["name"],
            "baseURL": provider["baseURL"],
            "models": list(provider["models"]),
        }
        if provider.get("apiKeySecretRef"):
            entry["apiKeyEnv"] = api_key_env_var(provider["name"])
        providers.append(entry)
    own = ai_spec.get("limits") or {}
    # A Workspace's own value wins, 0 (no limit) included; absent, the operator's default.
    limits = {key: int(own[key] if key in own else defaults.get(key, 0)) for key in LIMIT_KEYS}
    return {"version": VERSION, "providers": providers, "limits": limits}
