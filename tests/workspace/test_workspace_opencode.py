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

STUB_PORT = 8000  # inside the private namespace every port is free
API_KEY = "sk-devplane-test-key"
MODEL = "qwen-coder"
AI_SPEC = {
    "providers": [
        {
            "name": "vllm",
            "baseURL": f"http://127.0.0.1:{STUB_PORT}/v1",
            "models": [MODEL],
            "apiKeySecretRef": {"name": "vllm-key", "key": "token"},
        }
    ],
    "defaultModel": MODEL,
}

_SCRIPT = """
set -u
ip link set lo up
{python} -m devplane_dev.vllm_stub --port {port} --api-key {key} --model {model} \
    >{out}/stub.log 2>&1 &
stub=$!
# The auth proxy's container: its own environment, with the key; opencode's has none.
env -i PATH="$PATH" PYTHONPATH="$PYTHONPATH" JUPYTERHUB_USER=dev JUPYTERHUB_API_TOKEN=unused \
    JUPYTERHUB_API_URL=http://127.0.0.1:9/hub/api DEVPLANE_PROXY_IP=127.0.0.1 \
    DEVPLANE_LLM_GATEWAY_CONFIG={out}/gateway.json {key_env}={key} \
    {python} -m {proxy} >{out}/audit.jsonl 2>{out}/proxy.log &
proxy=$!
trap 'kill $stub $proxy 2>/dev/null' EXIT
for url in "http://127.0.0.1:{port}/health" "http://127.0.0.1:{gateway}/vllm/v1/models"; do
    for _ in $(seq 100); do
        {python} -c 'import urllib.request as u, sys; u.urlopen(sys.argv[1])' "$url" \
            2>/dev/null && break
        sleep 0.1
    done
done
cd "$HOME"
status=0
for i in 0 1; do
    prompt=$(cat {out}/prompt-$i)
    strace -f -qq -e trace=connect -o {out}/connect-$i.log \
        opencode run "$prompt" >{out}/stdout-$i 2>{out}/stderr-$i || status=$?
done
{python} -c 'import urllib.request as u, sys; print(u.urlopen(sys.argv[1]).read().decode())' \
    "http://127.0.0.1:{port}/_stub/requests" >{out}/requests.json
exit $status
"""

_ALLOWED_CONNECT = re.compile(
    rf'sa_family=AF_UNIX|sin_port=htons\({LLM_GATEWAY_PORT}\), sin_addr=inet_addr\("127\.0\.0\.1"\)'
)


@pytest.fixture(scope="module")
def opencode_run() -> dict:
    """Run two prompts (a plain one and one that makes the model call the bash tool)."""
    root = short_tempdir("dpo-")
    out = root / "out"
    out.mkdir()
    workspace = LocalWorkspace(root / "ws", opencode_config=build_opencode_config(AI_SPEC))
    (out / "gateway.json").write_text(json.dumps(build_gateway_config(AI_SPEC, {})))
    (out / "prompt-0").write_text("Say hello to DevPlane.")
    tool_args = {"command": "echo tool-ran-$((6*7))", "description": "Print a marker"}
    (out / "prompt-1").write_text(f"Please run it. TOOL:bash {json.dumps(tool_args)}")
    python = Path(sys.executable)
    script = _SCRIPT.format(
        python=shlex.quote(str(python)), port=STUB_PORT, key=API_KEY, model=MODEL, out=out,
        proxy=AUTHPROXY_MODULE, gateway=LLM_GATEWAY_PORT, key_env=api_key_env_var("vllm"),
    )  # fmt: skip
    env = workspace.env()
    env["PATH"] = f"{env['PATH']}:/usr/sbin:/sbin"
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    proc = subprocess.run(
        ["unshare", "--net", "bash", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    result = {
        "returncode": proc.returncode,
        "stderr": proc.stderr,
        "stdout": [(out / f"stdout-{i}").read_text() for i in (0, 1)],
        "opencode_stderr": [(out / f"stderr-{i}").read_text() for i in (0, 1)],
        "connects": [
            line
            for i in (0, 1)
            for line in (out / f"connect-{i}.log").read_text().splitlines()
            if "connect(" in line
        ],
        "requests": json.loads((out / "requests.json").read_text() or "{}").get("requests", []),
        "audit": [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()],
        "opencode_env": env,
    }
    workspace.stop()
    return result


def test_opencode_answers_through_the_configured_model(opencode_run):
    assert opencode_run["returncode"] == 0, opencode_run
    assert f"DEVPLANE-STUB-ANSWER (model {MODEL})" in opencode_run["stdout"][0]


def test_every_request_used_the_configured_model_and_key(opencode_run):
    requests = opencode_run["requests"]
    assert requests, opencode_run
    assert {r["model"] for r in requests} == {MODEL}
    # opencode had no key; the gateway added the provider's to every request, and named the
    # workspace's owner.
    assert API_KEY not in json.dumps(opencode_run["opencode_env"])
    assert all(r["key_ok"] for r in requests)
    assert {r["user"] for r in requests} == {"dev"}
    assert all(r["stream"] for r in requests)
    # The agent offered its tools, among them the bash tool, and ripgrep-backed grep.
    assert any({"bash", "grep"} <= set(r["tools"]) for r in requests)


def test_a_tool_call_round_trip_runs_in_the_workspace(opencode_run):
    # The stand-in asked for the bash tool; opencode ran it and sent the result back.
    assert any(r["last_role"] == "tool" for r in opencode_run["requests"])
    assert "tool said:" in opencode_run["stdout"][1]
    assert "tool-ran-42" in opencode_run["stdout"][1]


def test_the_gateway_audited_each_request_with_its_tokens(opencode_run):
    events = [e for e in opencode_run["audit"] if e["event"] == "llm.request"]
    assert len(events) == len(opencode_run["requests"])
    assert all(e["status"] == 200 and e["model"] == MODEL for e in events)
    assert all(e["completion_tokens"] > 0 for e in events)


def test_opencode_opened_no_other_network_connection(opencode_run):
    connects = opencode_run["connects"]
    # It did connect (to the gateway), so the trace is not vacuous; never to the stand-in.
    assert any(f"htons({LLM_GATEWAY_PORT})" in line for line in connects)
    others = [line for line in connects if not _ALLOWED_CONNECT.search(line)]
    assert others == []
