"""opencode in the workspace environment talks to the configured vLLM and to nothing else.

Proof of "nothing else": opencode runs in a fresh network namespace that has only loopback
(`unshare -n`), with the vLLM stand-in inside it, under `strace -f -e trace=connect`; every
connect() of every opencode process must be to the stand-in's address or a unix socket. With
no route anywhere, a download attempt (npm, models catalogue, auto-update) would also fail
the run itself.
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
from devplane_operator.opencode_config import build_opencode_config

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
trap 'kill $stub 2>/dev/null' EXIT
for _ in $(seq 100); do
    {python} -c 'import urllib.request as u, sys; u.urlopen(sys.argv[1])' \
        "http://127.0.0.1:{port}/health" 2>/dev/null && break
    sleep 0.1
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
    rf'sa_family=AF_UNIX|sin_port=htons\({STUB_PORT}\), sin_addr=inet_addr\("127\.0\.0\.1"\)'
)


@pytest.fixture(scope="module")
def opencode_run() -> dict:
    """Run two prompts (a plain one and one that makes the model call the bash tool)."""
    root = short_tempdir("dpo-")
    out = root / "out"
    out.mkdir()
    workspace = LocalWorkspace(
        root / "ws",
        opencode_config=build_opencode_config(AI_SPEC),
        extra_env={"DEVPLANE_LLM_API_KEY_VLLM": API_KEY},
    )
    (out / "prompt-0").write_text("Say hello to DevPlane.")
    tool_args = {"command": "echo tool-ran-$((6*7))", "description": "Print a marker"}
    (out / "prompt-1").write_text(f"Please run it. TOOL:bash {json.dumps(tool_args)}")
    python = Path(sys.executable)
    script = _SCRIPT.format(
        python=shlex.quote(str(python)), port=STUB_PORT, key=API_KEY, model=MODEL, out=out
    )
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
    assert all(r["key_ok"] for r in requests)
    assert all(r["stream"] for r in requests)
    # The agent offered its tools, among them the bash tool, and ripgrep-backed grep.
    assert any({"bash", "grep"} <= set(r["tools"]) for r in requests)


def test_a_tool_call_round_trip_runs_in_the_workspace(opencode_run):
    # The stand-in asked for the bash tool; opencode ran it and sent the result back.
    assert any(r["last_role"] == "tool" for r in opencode_run["requests"])
    assert "tool said:" in opencode_run["stdout"][1]
    assert "tool-ran-42" in opencode_run["stdout"][1]


def test_opencode_opened_no_other_network_connection(opencode_run):
    connects = opencode_run["connects"]
    # It did connect (to the stand-in), so the trace is not vacuous.
    assert any(f"htons({STUB_PORT})" in line for line in connects)
    others = [line for line in connects if not _ALLOWED_CONNECT.search(line)]
    assert others == []
