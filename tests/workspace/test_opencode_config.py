"""build_opencode_config: the opencode.json the operator writes for a Workspace's spec.ai."""

from __future__ import annotations

import json

import pytest
from devplane_operator.opencode_config import api_key_env_var, build_opencode_config

SPEC = {
    "providers": [
        {
            "name": "vllm-prod",
            "baseURL": "http://vllm.ai.svc:8000/v1",
            "models": ["qwen-coder", "qwen-small"],
            "apiKeySecretRef": {"name": "vllm", "key": "token"},
        },
        {"name": "local", "baseURL": "http://10.0.0.5:8000/v1", "models": ["llama"]},
    ],
    "defaultModel": "qwen-coder",
    "smallModel": "local/llama",
}


def test_env_var_name_is_upper_case_with_underscores():
    assert api_key_env_var("vllm-prod.eu") == "DEVPLANE_LLM_API_KEY_VLLM_PROD_EU"


def test_full_config():
    cfg = build_opencode_config(SPEC)
    assert cfg["enabled_providers"] == ["vllm-prod", "local"]
    assert cfg["model"] == "vllm-prod/qwen-coder"
    assert cfg["small_model"] == "local/llama"
    assert cfg["autoupdate"] is False
    assert cfg["share"] == "disabled"
    prod = cfg["provider"]["vllm-prod"]
    assert prod["npm"] == "@ai-sdk/openai-compatible"
    # Every provider through the LLM gateway on the pod's loopback, one prefix each; opencode
    # holds no key and no reference to one (the gateway adds the provider's).
    assert prod["options"] == {
        "baseURL": "http://127.0.0.1:8899/vllm-prod/v1",
        "apiKey": "devplane-gateway",
    }
    assert set(prod["models"]) == {"qwen-coder", "qwen-small"}
    assert cfg["provider"]["local"]["options"]["baseURL"] == "http://127.0.0.1:8899/local/v1"
    assert "env:" not in json.dumps(cfg)


def test_small_model_defaults_to_model():
    cfg = build_opencode_config({**SPEC, "smallModel": None})
    assert cfg["small_model"] == cfg["model"] == "vllm-prod/qwen-coder"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"providers": []}, "at least one provider"),
        ({**SPEC, "defaultModel": "gpt-4"}, "not among the models"),
        ({**SPEC, "defaultModel": "local/qwen-coder"}, "not among the models"),
        ({"providers": [*SPEC["providers"], SPEC["providers"][1]]}, "duplicate"),
        (
            {
                "providers": [
                    {"name": "a", "baseURL": "http://a/v1", "models": ["m"]},
                    {"name": "b", "baseURL": "http://b/v1", "models": ["m"]},
                ],
                "defaultModel": "m",
            },
            "several providers",
        ),
    ],
)
def test_inconsistent_specs_are_rejected(spec, message):
    with pytest.raises(ValueError, match=message):
        build_opencode_config(spec)
