"""Build opencode's configuration (``/etc/opencode/opencode.json``) from a Workspace's ``spec.ai``.

The operator puts the result in the ``ws-<workspace>-opencode`` ConfigMap; the workspace
container points ``OPENCODE_CONFIG`` at it. Everything here is pure, so the operator can compare
the desired ConfigMap with the live one and write nothing when nothing changed.

Why each setting (the cluster is air-gapped, see docs/architecture.md, "Security model"):

* every provider goes through ``@ai-sdk/openai-compatible`` (vLLM speaks the OpenAI API), which
  opencode's binary carries in its own bundle, so nothing is installed or fetched for it;
* ``enabled_providers`` lists only the configured providers, so opencode never offers (or
  probes) the public ones it knows about;
* every provider's ``baseURL`` is the workspace's LLM gateway on the pod's loopback
  (``http://127.0.0.1:<LLM_GATEWAY_PORT>/<provider>/v1``), which adds the provider's key, keeps
  to the allow-list and the limits, and counts the tokens (gateway_config.py): opencode, and the
  user, never hold a key;
* ``autoupdate: false`` and ``share: "disabled"`` stop the two features that call home.
"""

from __future__ import annotations

import re
from typing import Any

from devplane_api.v1alpha1 import LLM_GATEWAY_PORT

# The workspace's LLM gateway, as the user's container reaches it (the pod's loopback).
LOCAL_GATEWAY = f"http://127.0.0.1:{LLM_GATEWAY_PORT}"
# The one AI SDK provider package every provider uses; built into the opencode binary.
OPENAI_COMPATIBLE_NPM = "@ai-sdk/openai-compatible"
API_KEY_ENV_PREFIX = "DEVPLANE_LLM_API_KEY_"
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]")


def api_key_env_var(provider_name: str) -> str:
    """Environment variable holding a provider's API key: ``vllm-prod`` -> ``..._VLLM_PROD``.

    The operator uses the same function to name the ``secretKeyRef`` env entry in the pod, so
    the config and the pod can never disagree.
    """
    return API_KEY_ENV_PREFIX + _NON_ALNUM.sub("_", provider_name.upper())


def _resolve_model(ai_spec: dict[str, Any], wanted: str, field: str) -> str:
    """Turn ``wanted`` into opencode's ``<provider>/<model>`` form.

    ``wanted`` may already name its provider (``vllm/qwen``) or be a bare model name, which must
    then be offered by exactly one provider (an ambiguous name is an error, not a guess).
    """
    providers = ai_spec.get("providers") or []
    head, sep, tail = wanted.partition("/")
    if sep:
        for provider in providers:
            if provider["name"] == head and tail in provider.get("models", []):
                return wanted
    owners = [p["name"] for p in providers if wanted in p.get("models", [])]
    if len(owners) == 1:
        return f"{owners[0]}/{wanted}"
    if not owners:
        raise ValueError(f"ai.{field} {wanted!r} is not among the models of any provider")
    raise ValueError(
        f"ai.{field} {wanted!r} is offered by several providers ({', '.join(owners)}); "
        f"write it as <provider>/<model>"
    )


def gateway_url(gateway: str, provider_name: str) -> str:
    """A provider's ``baseURL`` in opencode's configuration: its prefix on the gateway."""
    return f"{gateway}/{provider_name}/v1"


def _provider_entry(provider: dict[str, Any], gateway: str) -> dict[str, Any]:
    # The OpenAI SDK insists on some key; the gateway ignores it and sends the real one.
    options: dict[str, Any] = {
        "baseURL": gateway_url(gateway, provider["name"]),
        "apiKey": "devplane-gateway",
    }
    return {
        "npm": OPENAI_COMPATIBLE_NPM,
        "name": provider["name"],
        "options": options,
        "models": {model: {"name": model} for model in provider.get("models", [])},
    }


def build_opencode_config(ai_spec: dict[str, Any], gateway: str = LOCAL_GATEWAY) -> dict[str, Any]:
    """opencode.json content for a Workspace's ``spec.ai``, every provider reached through the
    LLM gateway at ``gateway`` (``http://127.0.0.1:<port>``).

    ``ai_spec`` = ``{"providers": [{"name", "baseURL", "models": [...], "apiKeySecretRef"?}],
    "defaultModel": "<model>", "smallModel"?: "<model>"}``. Raises ``ValueError`` with a message
    naming the field when the spec is inconsistent (no provider, duplicate name, unknown model).
    """
    providers = ai_spec.get("providers") or []
    if not providers:
        raise ValueError("ai.providers must list at least one provider")
    names = [p["name"] for p in providers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"ai.providers has duplicate names: {', '.join(duplicates)}")
    # Two names that map to one env var would silently share a key.
    env_names = [api_key_env_var(n) for n in names]
    if len(set(env_names)) != len(env_names):
        raise ValueError("ai.providers names must differ after upper-casing and mapping to '_'")
    for provider in providers:
        if not provider.get("models"):
            raise ValueError(f"ai.providers[{provider['name']}].models must not be empty")

    default_model = ai_spec.get("defaultModel") or f"{names[0]}/{providers[0]['models'][0]}"
    model = _resolve_model(ai_spec, default_model, "defaultModel")
    small = ai_spec.get("smallModel")
    small_model = _resolve_model(ai_spec, small, "smallModel") if small else model

    return {
        "provider": {p["name"]: _provider_entry(p, gateway) for p in providers},
        "enabled_providers": names,
        "model": model,
        "small_model": small_model,
        "autoupdate": False,
        "share": "disabled",
    }
