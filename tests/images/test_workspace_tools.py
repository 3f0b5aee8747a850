"""The workspace image as a developer meets it: the tools, the site's mirrors, the site's CA and
their git identity, in the built image run by podman.

Every container gets the environment the operator gives the workspace container (its builders,
from the operator settings a chart install sets), so what is tested is the whole path from
setting to tool. The mirrors are the harness's (devplane_dev.mirrors), on 127.0.0.1: those
containers share the host's network namespace to reach them, and nothing else is listening.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from devplane_dev.devcluster import read_versions
from devplane_dev.images import Podman
from devplane_dev.mirrors import PROBE, PROBE_MESSAGE, PROBE_MODULE, LocalMirror, ThrowawayCA
from devplane_dev.poll import wait_for
from devplane_dev.workspaces import EXAMPLE_PROVIDERS_JSON, workspace_manifest
from devplane_operator.builders import build_pod
from devplane_operator.model import parse_workspace
from devplane_operator.opencode_config import build_opencode_config
from devplane_operator.settings import load_settings

HOME_TMPFS = "--mount=type=tmpfs,destination=/home/dev,U=true"
SITE_CA = "corp-ca"  # the CA bundle ConfigMap's name; the file is mounted where the pod has it
GIT_FROM = "https://git.example.invalid/"  # what the developer types; the mirror answers


def pod_env(settings_env: dict[str, str] | None = None, **spec: object) -> list[str]:
    """``--env`` options: the workspace container's environment as the operator builds it."""
    settings = load_settings(
        [],
        {"DEVPLANE_NAMESPACES": "ws", "DEVPLANE_LLM_PROVIDERS": EXAMPLE_PROVIDERS_JSON}
        | (settings_env or {}),
    )
    body = workspace_manifest("alice", "", {"namespace": "ws", "uid": "u1"}, **spec)
    pod = build_pod(parse_workspace(body, settings), settings)
    workspace = next(c for c in pod["spec"]["containers"] if c["name"] == "workspace")
    return [f"--env={e['name']}={e['value']}" for e in workspace["env"]]


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory the container's user (uid 1000) may write; short, for unix socket paths."""
    path = Path(tempfile.mkdtemp(prefix="dptools-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


@contextmanager
def running_workspace(
    podman: Podman, image: str, run_dir: Path, options: list[str], name: str = ""
) -> Iterator[str]:
    """The workspace container with its own entrypoint, as in the pod; yields its name once
    ttyd's socket is there (the entrypoint's set-up is done by then)."""
    name = name or f"dp-tools-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir(mode=0o777, exist_ok=True)
    run_dir.chmod(0o777)
    (run_dir / "ttyd.sock").unlink(missing_ok=True)
    podman("run", "--detach", "--name", name, "--read-only", *options,
           f"--volume={run_dir}:/run/devplane", image, check=True)  # fmt: skip
    try:
        wait_for(
            "ttyd's socket in the workspace container",
            lambda: (run_dir / "ttyd.sock").is_socket() or _exited(podman, name),
            60,
        )
        assert not _exited(podman, name), podman("logs", name).stderr
        yield name
    finally:
        podman("rm", "--force", "--time=2", name)


def _exited(podman: Podman, name: str) -> bool:
    state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
    return state in ("exited", "stopped", "")


def shell(podman: Podman, name: str, script: str) -> subprocess.CompletedProcess[str]:
    """``script`` in a login-less bash in the container, as the developer's shell runs it."""
    return podman("exec", name, "bash", "-c", script, timeout=180)


# ------------------------------------------------------------------ tools


def test_workspace_has_the_tools_developers_expect(images, podman):
    script = r"""
        set -e
        node --version; npm --version; make --version | head -1
        cd /tmp
        printf '#include <stdio.h>\nint main(void){puts("c-ok");return 0;}\n' >c.c
        printf '#include <iostream>\nint main(){std::cout<<"cxx-ok"<<std::endl;}\n' >x.cc
        printf 'all:\n\tgcc -o c c.c\n\tg++ -o x x.cc\n' >Makefile
        make -s && ./c && ./x
        kubectl version --client | sed -n 's/^Client Version: /kubectl /p'
        cp -r /etc/skel/. "$HOME"/
        bash -ic '_completion_loader git; complete -p git' 2>/dev/null
    """
    done = podman.run(
        images["workspace"], ["-c", script], entrypoint="/bin/bash", options=[HOME_TMPFS]
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("v18."), lines  # Debian bookworm's Node.js
    assert lines[1].split(".")[0].isdigit(), lines
    assert lines[2].startswith("GNU Make"), lines
    assert "c-ok" in lines and "cxx-ok" in lines
    assert f"kubectl {read_versions()['KUBERNETES_VERSION']}" in lines
    # git's bash completion, loaded the way a terminal's bash loads it (~/.bashrc from skel).
    assert any(line.startswith("complete ") and line.endswith(" git") for line in lines), lines


def test_workspace_tools_stay_offline_without_a_mirror(images, podman):
    # The pod's environment with no mirror set, and a network to try: nothing is fetched.
    script = f"cd /tmp && npm install --no-audit --no-fund {PROBE} 2>&1; echo npm-exit=$?"
    done = podman.run(
        images["workspace"],
        ["-c", script],
        entrypoint="/bin/bash",
        options=[HOME_TMPFS, *pod_env()],
        network="private",
        timeout=120,
    )
    assert "npm-exit=0" not in done.stdout
    assert "ENOTCACHED" in done.stdout, done.stdout


# ------------------------------------------------------------------ mirrors


def test_pip_npm_and_git_use_the_mirrors_the_operator_is_given(images, podman, scratch):
    with LocalMirror(scratch) as mirror:
        env = pod_env(
            {
                "DEVPLANE_PIP_INDEX_URL": mirror.pip_index,
                "DEVPLANE_NPM_REGISTRY": mirror.npm_registry,
                "DEVPLANE_GIT_MIRRORS": json.dumps(
                    [{"url": mirror.git_base, "insteadOf": GIT_FROM}]
                ),
            }
        )
        script = f"""
            set -e
            python3 -m venv /tmp/venv
            /tmp/venv/bin/pip install --no-cache-dir -q {PROBE}
            /tmp/venv/bin/python -c 'import {PROBE_MODULE}; print("pip:", {PROBE_MODULE}.MESSAGE)'
            mkdir /tmp/app && cd /tmp/app
            npm install --no-audit --no-fund --loglevel=error {PROBE} >/dev/null
            node -e 'console.log("npm:", require("{PROBE}"))'
            git clone -q {GIT_FROM}probe.git /tmp/probe
            echo "git: $(cat /tmp/probe/README)"
        """
        done = podman.run(
            images["workspace"],
            ["-c", script],
            entrypoint="/bin/bash",
            options=[HOME_TMPFS, *env],
            network="host",
            timeout=180,
        )
        asked = list(mirror.requests)
    assert done.returncode == 0, done.stdout + done.stderr
    for tool in ("pip", "npm", "git"):
        assert f"{tool}: {PROBE_MESSAGE}" in done.stdout, done.stdout
    assert f"/simple/{PROBE}/" in asked
    assert f"/npm/{PROBE}" in asked
    assert any(path.startswith("/git/probe.git/") for path in asked), asked


# ------------------------------------------------------------------ the site's CA


def test_a_site_ca_is_added_to_the_trust_store_and_every_tool_trusts_it(images, podman, scratch):
    ca = ThrowawayCA.make(scratch / "pki")
    (scratch / "pki").chmod(0o755)
    ca_env = {"DEVPLANE_CA_BUNDLE_CONFIGMAP": SITE_CA}
    with LocalMirror(scratch, tls=ca) as mirror:
        settings_env = ca_env | {
            "DEVPLANE_PIP_INDEX_URL": mirror.pip_index,
            "DEVPLANE_NPM_REGISTRY": mirror.npm_registry,
        }
        options = [
            HOME_TMPFS,
            "--network=host",
            f"--volume={ca.ca}:/etc/devplane/ca/ca.crt:ro",
            *pod_env(settings_env),
        ]
        with running_workspace(podman, images["workspace"], scratch / "run", options) as name:
            checks = {
                "curl": f"curl -sS -o /dev/null -w '%{{http_code}}' {mirror.pip_index}",
                "python": (
                    "python3 -c 'import urllib.request as u; "
                    f'print(u.urlopen("{mirror.pip_index}").status)\''
                ),
                "pip": (
                    f"python3 -m venv /tmp/v && /tmp/v/bin/pip download -q --no-cache-dir "
                    f"-d /tmp/dl {PROBE} && ls /tmp/dl"
                ),
                "npm": f"cd /tmp && npm view {PROBE} version",
                "node": (
                    'node -e \'require("https").get(process.argv[1], '
                    "r => console.log(r.statusCode))' " + mirror.pip_index
                ),
                "git": f"git ls-remote {mirror.git_base}probe.git HEAD | wc -l",
            }
            results = {tool: shell(podman, name, script) for tool, script in checks.items()}
            counts = shell(
                podman, name,
                'grep -c "BEGIN CERTIFICATE" /etc/ssl/certs/ca-certificates.crt "$SSL_CERT_FILE"',
            )  # fmt: skip
            env = shell(podman, name, "env").stdout
    for tool, done in results.items():
        assert done.returncode == 0, f"{tool}: {done.stdout}{done.stderr}"
    assert results["curl"].stdout.strip() == "200"
    assert results["python"].stdout.strip() == "200"
    assert "devplane_probe-1.0.0-py3-none-any.whl" in results["pip"].stdout
    assert results["npm"].stdout.strip() == "1.0.0"
    assert results["node"].stdout.strip() == "200"
    assert results["git"].stdout.strip() == "1"
    # Added, not in place of: the joined bundle holds every system CA plus the site's.
    system, joined = (int(line.rsplit(":", 1)[1]) for line in counts.stdout.splitlines())
    assert system > 100 and joined == system + 1, counts.stdout
    for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"):
        assert f"{var}=/run/devplane/ca-certificates.crt" in env.splitlines(), var
    assert "NODE_EXTRA_CA_CERTS=/etc/devplane/ca/ca.crt" in env.splitlines()


def test_without_the_site_ca_its_servers_are_not_trusted(images, podman, scratch):
    # The same server and tools with no CA given: the check above cannot pass by accident.
    ca = ThrowawayCA.make(scratch / "pki")
    with LocalMirror(scratch, tls=ca) as mirror:
        done = podman.run(
            images["workspace"],
            ["-c", f"curl -sS {mirror.pip_index}; git ls-remote {mirror.git_base}probe.git"],
            entrypoint="/bin/bash",
            options=[HOME_TMPFS, *pod_env()],
            network="host",
        )
    assert done.returncode != 0
    assert "certificate" in done.stderr, done.stderr


def test_a_broken_site_ca_stops_the_workspace_with_a_message(images, podman, scratch):
    bad = scratch / "not-a-ca.crt"
    bad.write_text("this is not PEM\n")
    bad.chmod(0o644)
    done = podman.run(
        images["workspace"],
        [],
        options=[
            HOME_TMPFS,
            f"--volume={scratch}:/run/devplane",
            f"--volume={bad}:/etc/devplane/ca/ca.crt:ro",
            *pod_env({"DEVPLANE_CA_BUNDLE_CONFIGMAP": SITE_CA}),
        ],
        timeout=60,
    )
    assert done.returncode != 0
    assert "holds no PEM certificate" in done.stderr and "caBundle" in done.stderr, done.stderr


# ------------------------------------------------------------------ git identity


def test_git_identity_is_set_once_and_the_users_own_survives_a_restart(images, podman, scratch):
    home = scratch / "home"
    home.mkdir()
    subprocess.run(["chown", "1000:1000", str(home)], check=True)
    identity = {"name": "Alice Liddell", "email": "alice@example.org"}
    options = [f"--volume={home}:/home/dev", *pod_env(gitIdentity=identity)]

    def identity_in(name: str) -> tuple[str, str]:
        got = shell(podman, name, "git config user.name; git config user.email")
        assert got.returncode == 0, got.stderr
        user_name, email = got.stdout.splitlines()
        return user_name, email

    with running_workspace(podman, images["workspace"], scratch / "run", options) as name:
        assert identity_in(name) == ("Alice Liddell", "alice@example.org")  # a fresh home
        edited = shell(podman, name, "git config --global user.email alice@home.example")
        assert edited.returncode == 0, edited.stderr
    with running_workspace(podman, images["workspace"], scratch / "run", options) as name:
        assert identity_in(name) == ("Alice Liddell", "alice@home.example")
        # It is the user's file, and the provider's identity was written there once.
        config = shell(podman, name, "cat ~/.gitconfig").stdout
    assert config.count("email") == 1 and "alice@example.org" not in config


# ------------------------------------------------------------------ several models


def test_opencode_lists_every_model_of_every_provider(images, podman, scratch):
    # What `opencode models` shows a user choosing a model, from the operator's configuration.
    spec = {
        "providers": [
            {"name": "vllm", "baseURL": "http://vllm.llm:8000/v1", "models": ["qwen-coder"]},
            {"name": "chat", "baseURL": "http://chat.llm:8000/v1", "models": ["llama", "big"]},
        ],
        "defaultModel": "qwen-coder",
    }
    config = scratch / "opencode.json"
    config.write_text(json.dumps(build_opencode_config(spec)))
    config.chmod(0o644)
    done = podman.run(
        images["workspace"],
        ["models"],
        entrypoint="opencode",
        options=[HOME_TMPFS, "--mount=type=tmpfs,destination=/tmp,U=true",
                 f"--volume={config}:/etc/opencode/opencode.json:ro"],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == ["chat/big", "chat/llama", "vllm/qwen-coder"]
