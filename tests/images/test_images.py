"""The built images, run by podman: what each one does, as whom, on a read-only root.

The images are the ones `make images` builds (the session fixture runs the same script). Every
container runs as the image's own user with `--read-only`, and with no network unless a test
says otherwise, as in the cluster where nothing leaves the pod network.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from devplane_dev.devcluster import read_versions
from devplane_dev.images import NAMES, OUT, constraint, lock_version
from devplane_dev.poll import wait_for
from websockets.asyncio.client import unix_connect

# Sizes the issue sets (uncompressed, as the engine reports them).
MAX_SIZE_MIB = {"workspace": 1024, "hub": 500, "operator": 300}

# What the workspace pod mounts writable over the read-only root (docs/contracts.md), owned by
# the image's user as the pod's fsGroup makes them (U=true; podman 4.3 ignores a tmpfs mode=).
WORKSPACE_MOUNTS = (
    "--mount=type=tmpfs,destination=/home/dev,U=true",
    "--mount=type=tmpfs,destination=/run/devplane,U=true",
)


@pytest.mark.parametrize("name", NAMES)
def test_image_runs_as_non_root_on_a_read_only_root(images, podman, name):
    user = podman.inspect(images[name])["Config"]["User"]
    assert user and user.split(":")[0] not in ("0", "root"), f"{name} runs as {user!r}"
    done = podman.run(images[name], ["-c", "id -u; touch /usr/probe"], entrypoint="/bin/sh")
    uid, _, _ = done.stdout.partition("\n")
    assert uid.strip() not in ("", "0"), done.stdout + done.stderr
    assert done.returncode != 0 and "Read-only file system" in done.stderr


@pytest.mark.parametrize("name", NAMES)
def test_image_size_is_within_its_target(images, podman, name):
    size_mib = podman.inspect(images[name])["Size"] / 2**20
    assert size_mib <= MAX_SIZE_MIB[name], f"{name}: {size_mib:.0f} MiB"


@pytest.mark.parametrize("name", NAMES)
def test_package_manifest_is_written_next_to_the_image_and_inside_it(images, podman, name):
    beside = (OUT / f"{name}.packages.txt").read_text().splitlines()
    inputs = podman.inspect(images[name])["Config"]["Labels"]["org.devplane.inputs"]
    assert beside[0] == f"# devplane/{name} inputs {inputs}"
    inside = podman.run(
        images[name], ["/usr/share/devplane-packages.txt"], entrypoint="cat"
    ).stdout.splitlines()
    assert beside[1:] == inside
    assert podman.inspect(images[name])["Config"]["Labels"]["org.devplane.packages"] == (
        "/usr/share/devplane-packages.txt"
    )
    kinds = {line.split()[0] for line in inside}
    assert "deb" in kinds and any(line.startswith("deb python3 ") for line in inside)
    expected = {
        "hub": [
            f"pip jupyterhub {constraint('jupyterhub')}",
            f"npm configurable-http-proxy {lock_version('configurable-http-proxy')}",
            "deb nodejs ",
        ],
        "operator": [f"pip kopf {constraint('kopf')}", "pip devplane 0.1.0"],
        "workspace": [
            f"binary opencode {lock_version('opencode-linux-x64')} ",
            "binary ttyd 1.7.7",
            f"binary kubectl {read_versions()['KUBERNETES_VERSION'].lstrip('v')} ",
            "deb nodejs ",
            "deb npm ",
            "deb gcc ",
        ],
    }[name]
    for wanted in expected:
        assert any(line.startswith(wanted) for line in inside), f"{wanted!r} not in {name}"


def test_workspace_opencode_is_the_pinned_version(images, podman):
    done = podman.run(
        images["workspace"], ["--version"], entrypoint="opencode", options=WORKSPACE_MOUNTS
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == lock_version("opencode-ai")


@pytest.fixture
def run_dir() -> Path:
    """/run/devplane for a workspace container, shared with the test as the pod shares it with
    the auth proxy. Short, for the unix socket path limit; writable by the container's uid."""
    path = Path(tempfile.mkdtemp(prefix="dpimg-", dir="/tmp"))
    path.chmod(0o777)
    return path


async def test_workspace_serves_a_tmux_terminal_on_its_ttyd_socket(images, podman, run_dir):
    socket = run_dir / "ttyd.sock"
    name = f"dp-workspace-{uuid.uuid4().hex[:8]}"
    podman(
        "run", "--detach", "--name", name, "--read-only", "--network=none",
        WORKSPACE_MOUNTS[0], f"--volume={run_dir}:/run/devplane",
        images["workspace"],
        check=True,
    )  # fmt: skip
    try:
        wait_for("ttyd's socket in the container", socket.is_socket, 30)
        async with unix_connect(str(socket), "ws://localhost/ws", subprotocols=["tty"]) as tty:
            await tty.send(json.dumps({"AuthToken": "", "columns": 100, "rows": 30}).encode())
            await tty.send(b"0tmux display -p 'in-#{session_name}'; echo uid-$(id -u)\r")
            output = b""
            while not (b"in-main" in output and b"uid-1000" in output):
                output += (await asyncio.wait_for(tty.recv(), 20))[1:]
        sessions = podman("exec", name, "tmux", "list-sessions", "-F", "#{session_name}")
        assert sessions.stdout.split() == ["main"], sessions.stdout + sessions.stderr
    finally:
        logs = podman("logs", name).stderr
        podman("rm", "--force", "--time=2", name)
    assert "Read-only" not in logs, logs


def test_workspace_pip_is_offline_unless_given_a_mirror(images, podman):
    # With a network, too: the configuration keeps pip off it, not just the missing route.
    for network in ("none", "private"):
        started = time.monotonic()
        done = podman.run(
            images["workspace"],
            ["-m", "pip", "download", "--no-cache-dir", "-d", "/tmp", "six"],
            entrypoint="python3",
            options=WORKSPACE_MOUNTS,
            network=network,
        )
        assert done.returncode != 0
        assert re.search(r"No matching distribution found for six", done.stderr), done.stderr
        assert "Retrying" not in done.stderr
        assert time.monotonic() - started < 30


def test_workspace_apt_and_npm_cannot_fetch(images, podman):
    # apt is there (Debian's tools need it) but the user is not root, and there is no network.
    done = podman.run(images["workspace"], ["update"], entrypoint="apt-get", timeout=60)
    assert done.returncode != 0
    assert re.search(r"Permission denied|are you root", done.stderr), done.stderr
    # npm is there for developers, offline unless the pod names a mirror
    # (test_workspace_tools.py installs from one, and is refused without it).
    env = podman.inspect(images["workspace"])["Config"]["Env"]
    assert "npm_config_offline=true" in env


def test_hub_image_runs_jupyterhub_at_its_pinned_version(images, podman):
    done = podman.run(images["hub"], ["--version"], entrypoint="jupyterhub")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == constraint("jupyterhub")


def test_hub_image_runs_configurable_http_proxy(images, podman):
    done = podman.run(images["hub"], ["--version"], entrypoint="configurable-http-proxy")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == lock_version("configurable-http-proxy")
    # And it really proxies on the image's node (bookworm's 18; CHP declares >= 20): its REST
    # API answers, and a request through it reaches a server behind it.
    script = (
        "python3 -m http.server 9000 --bind 127.0.0.1 --directory /usr/share >/dev/null 2>&1 &"
        " configurable-http-proxy --ip 127.0.0.1 --port 8000 --api-ip 127.0.0.1 --api-port 8001"
        " --default-target http://127.0.0.1:9000 &"
        ' for i in $(seq 150); do python3 -c "import json, urllib.request as u;'
        " r = u.Request('http://127.0.0.1:8001/api/routes',"
        " headers={'Authorization': 'token t0ken'});"
        " print('routes', json.load(u.urlopen(r)));"
        " print('proxied', u.urlopen('http://127.0.0.1:8000/devplane-packages.txt').readline())\""
        " 2>/dev/null && exit 0; sleep 0.2; done; exit 1"
    )
    done = podman.run(
        images["hub"],
        ["-c", script],
        entrypoint="/bin/sh",
        options=["--env=CONFIGPROXY_AUTH_TOKEN=t0ken"],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "routes {" in done.stdout
    assert "proxied b'deb " in done.stdout


def test_hub_image_runs_the_auth_proxy_entry_point(images, podman):
    # No hub credentials given: the auth proxy must stop at once and say which setting is missing.
    done = podman.run(images["hub"], [], entrypoint="devplane-authproxy", timeout=60)
    assert done.returncode != 0
    assert "JUPYTERHUB_USER" in done.stderr, done.stderr


def test_operator_image_starts_and_prints_its_help(images, podman):
    done = podman.run(images["operator"], ["devplane-operator", "--help"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: devplane-operator"), done.stdout


def test_operator_image_has_everything_the_operator_imports(images, podman):
    # --help answers before kopf is imported; the operator's run path imports all of it.
    done = podman.run(images["operator"], ["python3", "-c", "import devplane_operator.app"])
    assert done.returncode == 0, done.stderr


def test_hub_image_has_the_postgresql_driver_sqlalchemy_uses(images, podman):
    # hub.db.type postgres: SQLAlchemy 2.1 opens postgresql:// URLs with psycopg 3.
    script = (
        "import sqlalchemy.dialects.postgresql.psycopg as d, psycopg; "
        "print(d.PGDialect_psycopg.import_dbapi().__version__ == psycopg.__version__)"
    )
    done = podman.run(images["hub"], ["-c", script], entrypoint="/opt/devplane/bin/python")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
