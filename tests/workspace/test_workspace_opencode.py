"""opencode in the workspace environment talks to the workspace's LLM gateway and to nothing
else, and the gateway brings its requests to the configured vLLM with the provider's key.

As in the pod: the auth proxy (with its LLM gateway) runs beside the workspace with the key in
its own environment; opencode's configuration is the operator's (every provider through the
gateway), and opencode's environment has no key. Proof of "nothing else": opencode runs in a
fresh network namespace that has only loopback (`unshare -n`), with the gateway and the vLLM
stand-in inside it, under `strace -f -e trace=connect`; every connect() of every opencode
process must be to the gateway's address or a unix socket. With no route anywhere, a download
attempt (npm, models catalogue, auto-update) would also fail the run itself.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from devplane_dev.local_workspace import LocalWorkspace
from devplane_dev.procs import short_tempdir
from devplane_operator.gateway_config import build_gateway_config
from devplane_operator.opencode_config import api_key_env_var, build_opencode_config

from devplane_api.v1alpha1 import AUTHPROXY_MODULE, LLM_GATEWAY_PORT

# Two providers, each its own stand-in with its own key and model: the workspace offers both,
# and opencode uses the first unless told otherwise (docs/workspace.md, "Several models").
PROVIDERS = {
    # name: (port inside the private namespace, API key, model)
    "vllm": (8000, "sk-devplane-test-key", "qwen-coder"),
    "chat": (8001, "sk-devplane-chat-key", "llama-chat"),
}
MODEL = PROVIDERS["vllm"][2]
SECOND = f"chat/{PROVIDERS['chat'][2]}"
AI_SPEC = {
    "providers": [
        {
            "name": name,
            "baseURL": f"http://127.0.0.1:{port}/v1",
            "models": [model],
            "apiKeySecretRef": {"name": f"{name}-key", "key": "token"},
        }
        for name, (port, _, model) in PROVIDERS.items()
    ],
    "defaultModel": MODEL,
}
# (opencode run's extra arguments, the prompt); the bash tool runs in the second one.
TOOL_ARGS = {"command": "echo tool-ran-$((6*7))", "description": "Print a marker"}
PROMPTS = [
    ("", "Say hello to DevPlane."),
    ("", f"Please run it. TOOL:bash {json.dumps(TOOL_ARGS)}"),
    (f"--model {SECOND}", "Say hello from the second model."),
]

_SCRIPT = """
set -u
ip link set lo up
{stubs}
# The auth proxy's container: its own environment, with the keys; opencode's has none.
env -i PATH="$PATH" PYTHONPATH="$PYTHONPATH" JUPYTERHUB_USER=dev JUPYTERHUB_API_TOKEN=unused \
    JUPYTERHUB_API_URL=http://127.0.0.1:9/hub/api DEVPLANE_PROXY_IP=127.0.0.1 \
    DEVPLANE_LLM_GATEWAY_CONFIG={out}/gateway.json {key_envs} \
    {python} -m {proxy} >{out}/audit.jsonl 2>{out}/proxy.log &
trap 'kill $(jobs -p) 2>/dev/null' EXIT
for url in {ready_urls}; do
    for _ in $(seq 100); do
        {python} -c 'import urllib.request as u, sys; u.urlopen(sys.argv[1])' "$url" \
            2>/dev/null && break
        sleep 0.1
    done
done
cd "$HOME"
status=0
for i in {runs}; do
    prompt=$(cat {out}/prompt-$i)
    strace -f -qq -e trace=connect -o {out}/connect-$i.log \
        opencode run $(cat {out}/args-$i) "$prompt" >{out}/stdout-$i 2>{out}/stderr-$i || status=$?
done
for name in {names}; do
    port=$(cat {out}/port-$name)
    {python} -c 'import urllib.request as u, sys; print(u.urlopen(sys.argv[1]).read().decode())' \
        "http://127.0.0.1:$port/_stub/requests" >{out}/requests-$name.json
done
exit $status
"""

_ALLOWED_CONNECT = re.compile(
    rf'sa_family=AF_UNIX|sin_port=htons\({LLM_GATEWAY_PORT}\), sin_addr=inet_addr\("127\.0\.0\.1"\)'
)


@pytest.fixture(scope="module")
def opencode_run() -> dict:
    """Run the PROMPTS: a plain one, one that makes the model call the bash tool, and one on
    the second provider's model."""
    root = short_tempdir("dpo-")
    out = root / "out"
    out.mkdir()
    workspace = LocalWorkspace(root / "ws", opencode_config=build_opencode_config(AI_SPEC))
    (out / "gateway.json").write_text(json.dumps(build_gateway_config(AI_SPEC, {})))
    for i, (args, prompt) in enumerate(PROMPTS):
        (out / f"args-{i}").write_text(args)
        (out / f"prompt-{i}").write_text(prompt)
    python = shlex.quote(str(Path(sys.executable)))
    stubs = []
    for name, (port, key, model) in PROVIDERS.items():
        (out / f"port-{name}").write_text(str(port))
        stubs.append(
            f"{python} -m devplane_dev.vllm_stub --port {port} --api-key {key} "
            f"--model {model} >{out}/stub-{name}.log 2>&1 &"
        )
    ready = [f"http://127.0.0.1:{port}/health" for port, _, _ in PROVIDERS.values()]
    ready += [f"http://127.0.0.1:{LLM_GATEWAY_PORT}/{name}/v1/models" for name in PROVIDERS]
    script = _SCRIPT.format(
        python=python, out=out, proxy=AUTHPROXY_MODULE, stubs="\n".join(stubs),
        key_envs=" ".join(f"{api_key_env_var(n)}={k}" for n, (_, k, _) in PROVIDERS.items()),
        ready_urls=" ".join(ready), runs=" ".join(str(i) for i in range(len(PROMPTS))),
        names=" ".join(PROVIDERS),
    )  # fmt: skip
    env = workspace.env()
    env["PATH"] = f"{env['PATH']}:/usr/sbin:/sbin"
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    proc = subprocess.run(
        ["unshare", "--net", "bash", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    runs = range(len(PROMPTS))
    result = {
        "returncode": proc.returncode,
        "stderr": proc.stderr,
        "stdout": [(out / f"stdout-{i}").read_text() for i in runs],
        "opencode_stderr": [(out / f"stderr-{i}").read_text() for i in runs],
        "connects": [
            line
            for i in runs
            for line in (out / f"connect-{i}.log").read_text().splitlines()
            if "connect(" in line
        ],
        "requests": {
            name: json.loads((out / f"requests-{name}.json").read_text() or "{}").get(
                "requests", []
            )
            for name in PROVIDERS
        },
        "audit": [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()],
        "opencode_env": env,
    }
    workspace.stop()
    return result


def test_opencode_answers_through_the_configured_model(opencode_run):
    assert opencode_run["returncode"] == 0, opencode_run
    assert f"DEVPLANE-STUB-ANSWER (model {MODEL})" in opencode_run["stdout"][0]


def test_opencode_uses_the_second_provider_when_the_user_picks_its_model(opencode_run):
    assert opencode_run["returncode"] == 0, opencode_run
    assert f"DEVPLANE-STUB-ANSWER (model {PROVIDERS['chat'][2]})" in opencode_run["stdout"][2]
    # Its requests went to its own endpoint, and only the third run's did.
    chat = opencode_run["requests"]["chat"]
    assert chat and {r["model"] for r in chat} == {PROVIDERS["chat"][2]}
    assert all(r["last_role"] == "user" and r["key_ok"] for r in chat)


def test_every_request_used_its_providers_model_and_key(opencode_run):
    for name, (_, key, model) in PROVIDERS.items():
        requests = opencode_run["requests"][name]
        assert requests, (name, opencode_run)
        assert {r["model"] for r in requests} == {model}
        # opencode had no key; the gateway added the provider's own to every request (the
        # stand-in checks it), and named the workspace's owner.
        assert key not in json.dumps(opencode_run["opencode_env"])
        assert all(r["key_ok"] for r in requests)
        assert {r["user"] for r in requests} == {"dev"}
        assert all(r["stream"] for r in requests)
    # The agent offered its tools, among them the bash tool, and ripgrep-backed grep.
    assert any({"bash", "grep"} <= set(r["tools"]) for r in opencode_run["requests"]["vllm"])


def test_a_tool_call_round_trip_runs_in_the_workspace(opencode_run):
    # The stand-in asked for the bash tool; opencode ran it and sent the result back.
    assert any(r["last_role"] == "tool" for r in opencode_run["requests"]["vllm"])
    assert "tool said:" in opencode_run["stdout"][1]
    assert "tool-ran-42" in opencode_run["stdout"][1]


def test_the_gateway_audited_each_request_with_its_tokens(opencode_run):
    events = [e for e in opencode_run["audit"] if e["event"] == "llm.request"]
    requests = opencode_run["requests"]
    assert len(events) == sum(len(r) for r in requests.values())
    for name, (_, _, model) in PROVIDERS.items():
        mine = [e for e in events if e["provider"] == name]
        assert len(mine) == len(requests[name]) and all(e["model"] == model for e in mine)
    assert all(e["status"] == 200 for e in events)
    assert all(e["completion_tokens"] > 0 for e in events)


def test_opencode_opened_no_other_network_connection(opencode_run):
    connects = opencode_run["connects"]
    # It did connect (to the gateway), so the trace is not vacuous; never to the stand-in.
    assert any(f"htons({LLM_GATEWAY_PORT})" in line for line in connects)
    others = [line for line in connects if not _ALLOWED_CONNECT.search(line)]
    assert others == []
