"""Settings are validated at start-up; a bad one stops the operator with a useful message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from devplane_operator.settings import (
    SETTINGS,
    EgressRule,
    SettingsError,
    argument_parser,
    load_settings,
    with_docs_table,
)

OPERATOR_DOCS = Path(__file__).resolve().parents[2] / "docs" / "operator.md"

GOOD = {"DEVPLANE_NAMESPACES": "team-a,team-b"}


def test_defaults_and_env_and_flags():
    s = load_settings([], GOOD)
    assert s.namespaces == ("team-a", "team-b")
    assert s.storage_size == "10Gi" and s.resync_seconds == 300
    assert s.workspace_resources["limits"] == {"cpu": "2", "memory": "4Gi"}
    assert s.leader_election_namespace == "team-a"
    env = {**GOOD, "DEVPLANE_STORAGE_SIZE": "20Gi", "DEVPLANE_EGRESS_ALLOWLIST": "10.0.0.0/8:443"}
    flags = ["--storage-size", "30Gi", "--namespaces", "*", "--leader-election-namespace", "op"]
    s = load_settings(flags, env)
    assert s.storage_size == "30Gi"  # the flag wins over the env var
    assert s.clusterwide
    assert s.egress_allowlist == (EgressRule("10.0.0.0/8", (443,), "TCP"),)


def test_what_workspaces_may_reference_has_safe_defaults():
    s = load_settings([], GOOD)
    # The default image's path; the providers' own API-key Secrets are allowed with the list.
    assert s.allowed_image_registries == ("devplane",)
    assert s.api_key_secrets == () and s.allowed_api_key_secrets == frozenset()
    provider = '[{"name": "x", "baseURL": "http://h", "models": ["m"], '
    provider += '"apiKeySecretRef": {"name": "vllm-key", "key": "k"}}]'
    env = {
        **GOOD,
        "DEVPLANE_WORKSPACE_IMAGE": "registry.example:5000/team/ws:2",
        "DEVPLANE_ALLOWED_IMAGE_REGISTRIES": " registry.example:5000/team/ , registry.example/x",
        "DEVPLANE_API_KEY_SECRETS": "llm-key, other-key",
        "DEVPLANE_LLM_PROVIDERS": provider,
    }
    s = load_settings([], env)
    assert s.allowed_image_registries == ("registry.example:5000/team", "registry.example/x")
    assert s.allowed_api_key_secrets == {"llm-key", "other-key", "vllm-key"}


def test_every_setting_has_an_env_var_and_a_flag():
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)
    assert all(s.env.startswith("DEVPLANE_") for s in SETTINGS)
    assert len({s.flag for s in SETTINGS}) == len(SETTINGS)


def test_the_docs_table_is_generated_from_the_declarations():
    docs = OPERATOR_DOCS.read_text()
    assert with_docs_table(docs) == docs, (
        "docs/operator.md's settings table is stale: run "
        "`python -m devplane_operator.settings docs/operator.md`"
    )


def test_help_lists_every_setting_with_its_env_var():
    text = " ".join(argument_parser().format_help().split())
    for s in SETTINGS:
        assert f"--{s.flag}" in text and f"[env {s.env}; default" in text
    # A number's range comes from its parser; Markdown is left out.
    assert "Concurrent reconciles. From 1 to 256. [env DEVPLANE_WORKERS; default '8']" in text
    assert "`" not in text


BAD = {
    "no namespaces": ({"DEVPLANE_NAMESPACES": ""}, "DEVPLANE_NAMESPACES", "no namespace"),
    "bad namespace": ({"DEVPLANE_NAMESPACES": "Team A"}, "DEVPLANE_NAMESPACES", "'Team A'"),
    "image": ({"DEVPLANE_WORKSPACE_IMAGE": "a b"}, "DEVPLANE_WORKSPACE_IMAGE", "not an image"),
    "resources json": (
        {"DEVPLANE_WORKSPACE_RESOURCES": "{cpu"},
        "DEVPLANE_WORKSPACE_RESOURCES",
        "not valid JSON",
    ),
    "no limits": (
        {"DEVPLANE_WORKSPACE_RESOURCES": '{"requests": {"cpu": "1"}}'},
        "DEVPLANE_WORKSPACE_RESOURCES",
        "limits.cpu and limits.memory are required",
    ),
    "request above limit": (
        {
            "DEVPLANE_AUTHPROXY_RESOURCES": '{"requests": {"cpu": "2"}, "limits": {"cpu": "1", '
            '"memory": "1Gi"}}'
        },
        "DEVPLANE_AUTHPROXY_RESOURCES",
        "above limits.cpu",
    ),
    "size": ({"DEVPLANE_STORAGE_SIZE": "lots"}, "DEVPLANE_STORAGE_SIZE", "not a Kubernetes"),
    "providers": (
        {"DEVPLANE_LLM_PROVIDERS": '[{"name": "x", "baseURL": "ftp://h", "models": ["m"]}]'},
        "DEVPLANE_LLM_PROVIDERS",
        "baseURL must be an http",
    ),
    "default model": (
        {
            "DEVPLANE_LLM_PROVIDERS": '[{"name": "x", "baseURL": "http://h", "models": ["m"]}]',
            "DEVPLANE_LLM_DEFAULT_MODEL": "n",
        },
        "DEVPLANE_LLM_DEFAULT_MODEL",
        "not offered",
    ),
    "egress cidr": (
        {"DEVPLANE_EGRESS_ALLOWLIST": "10.0.0.1/8"},
        "DEVPLANE_EGRESS_ALLOWLIST",
        "not a CIDR",
    ),
    "egress port": (
        {"DEVPLANE_EGRESS_ALLOWLIST": "10.0.0.0/8:http"},
        "DEVPLANE_EGRESS_ALLOWLIST",
        "not a port",
    ),
    "selector": ({"DEVPLANE_HUB_SELECTOR": "app"}, "DEVPLANE_HUB_SELECTOR", "key=value"),
    "resync": ({"DEVPLANE_RESYNC_SECONDS": "0"}, "DEVPLANE_RESYNC_SECONDS", "out of range"),
    "port": ({"DEVPLANE_METRICS_PORT": "http"}, "DEVPLANE_METRICS_PORT", "not a whole number"),
    "bool": ({"DEVPLANE_LEADER_ELECTION": "maybe"}, "DEVPLANE_LEADER_ELECTION", "not a boolean"),
    "pull policy": (
        {"DEVPLANE_IMAGE_PULL_POLICY": "Sometimes"},
        "DEVPLANE_IMAGE_PULL_POLICY",
        "Use one of Always",
    ),
    "mirror url": ({"DEVPLANE_PIP_INDEX_URL": "mirror"}, "DEVPLANE_PIP_INDEX_URL", "http(s)"),
    "git mirror keys": (
        {"DEVPLANE_GIT_MIRRORS": '[{"url": "https://git.internal/"}]'},
        "DEVPLANE_GIT_MIRRORS",
        "exactly the keys url and insteadOf",
    ),
    "git mirror url": (
        {"DEVPLANE_GIT_MIRRORS": '[{"url": "git.internal", "insteadOf": "https://github.com/"}]'},
        "DEVPLANE_GIT_MIRRORS",
        "is not a http/https/ssh/git URL",
    ),
    "git mirror not a list": (
        {"DEVPLANE_GIT_MIRRORS": '{"url": "https://git.internal/"}'},
        "DEVPLANE_GIT_MIRRORS",
        "insteadOf",
    ),
    "registry prefix": (
        {"DEVPLANE_ALLOWED_IMAGE_REGISTRIES": "registry.example/devplane:1.0"},
        "DEVPLANE_ALLOWED_IMAGE_REGISTRIES",
        "not a registry prefix",
    ),
    "default image not allowed": (
        {"DEVPLANE_ALLOWED_IMAGE_REGISTRIES": "registry.example/devplane"},
        "DEVPLANE_ALLOWED_IMAGE_REGISTRIES",
        "the default workspace image 'devplane/workspace:0.1.0' is not under",
    ),
    "nothing to derive the registries from": (
        {"DEVPLANE_WORKSPACE_IMAGE": "workspace:1"},
        "DEVPLANE_ALLOWED_IMAGE_REGISTRIES",
        "has no path",
    ),
    "api key secret named like a workspace's": (
        {"DEVPLANE_API_KEY_SECRETS": "llm-key,ws-bob-hub"},
        "DEVPLANE_API_KEY_SECRETS",
        "'ws-bob-hub' starts with 'ws-'",
    ),
    "provider key named like a workspace's": (
        {
            "DEVPLANE_LLM_PROVIDERS": '[{"name": "x", "baseURL": "http://h", "models": ["m"], '
            '"apiKeySecretRef": {"name": "ws-bob-hub", "key": "JUPYTERHUB_API_TOKEN"}}]'
        },
        "DEVPLANE_LLM_PROVIDERS",
        "'ws-bob-hub' starts with 'ws-'",
    ),
    "tolerations not a list": (
        {"DEVPLANE_WORKSPACE_TOLERATIONS": '{"key": "dedicated"}'},
        "DEVPLANE_WORKSPACE_TOLERATIONS",
        "must be a JSON list",
    ),
    "toleration with a typo": (
        {"DEVPLANE_WORKSPACE_TOLERATIONS": '[{"key": "dedicated", "efect": "NoSchedule"}]'},
        "DEVPLANE_WORKSPACE_TOLERATIONS",
        "[0] has unknown fields ['efect']",
    ),
    "toleration effect": (
        {"DEVPLANE_WORKSPACE_TOLERATIONS": '[{"key": "k", "value": "v", "effect": "Never"}]'},
        "DEVPLANE_WORKSPACE_TOLERATIONS",
        "[0].effect 'Never' is unknown",
    ),
    "node selector": (
        {"DEVPLANE_WORKSPACE_NODE_SELECTOR": "dedicated"},
        "DEVPLANE_WORKSPACE_NODE_SELECTOR",
        "key=value",
    ),
    "lease without namespace": (
        {"DEVPLANE_NAMESPACES": "*"},
        "DEVPLANE_LEADER_ELECTION_NAMESPACE",
        "no namespace for the leader-election Lease",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_setting_names_the_setting_the_problem_and_the_fix(case):
    env, setting, problem = BAD[case]
    with pytest.raises(SettingsError) as info:
        load_settings([], {**GOOD, **env})
    message = str(info.value)
    assert message.startswith(f"invalid setting {setting} (--"), message
    assert problem in message
    # ...and a fix: every message ends with an instruction sentence after the problem.
    assert message.rstrip(".").count(". ") >= 1, message


def test_the_operator_exits_with_the_message_on_a_bad_setting():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVPLANE_")}
    env |= {"DEVPLANE_NAMESPACES": "ws", "DEVPLANE_EGRESS_ALLOWLIST": "10.0.0.0/8:99999"}
    proc = subprocess.run(
        [sys.executable, "-m", "devplane_operator"], env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "invalid setting DEVPLANE_EGRESS_ALLOWLIST (--egress-allowlist)" in proc.stderr
    assert "'99999'" in proc.stderr and "CIDR[:port" in proc.stderr


def test_the_console_script_reports_bad_flags_too():
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVPLANE_")}
    script = os.path.join(os.path.dirname(sys.executable), "devplane-operator")
    proc = subprocess.run(
        [script, "--namespaces", "ws", "--workers", "0"], env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "invalid setting DEVPLANE_WORKERS (--workers): 0 is out of range" in proc.stderr
