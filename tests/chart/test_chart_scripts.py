"""hack/build-images.sh and hack/deploy.sh, the scripts behind `make images` and `make deploy`.

There is no container engine on the build machines (a docker CLI without a daemon, on purpose
the common broken case), so the engine detection runs against stand-ins on PATH that behave
like the real tools: one whose `info` fails like a CLI without its daemon, one that works and
records what it was asked to do. deploy.sh is exercised for real by test_deploy_script, which
installs the chart with it.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from chart_helpers import CHART, ROOT, api_server_values

BUILD_IMAGES = ROOT / "hack" / "build-images.sh"
DEPLOY = ROOT / "hack" / "deploy.sh"
APP_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]

BROKEN = """#!/bin/sh
# Like a CLI whose daemon is not running.
if [ "$1" = info ]; then
  echo "Cannot connect to the engine at unix:///run/engine.sock. Is the daemon running?" >&2
  exit 1
fi
exit 1
"""
WORKING = """#!/bin/sh
# Records every call; `info` succeeds like a tool whose engine runs.
echo "$(basename "$0") $*" >> "$CALLS"
exit 0
"""


def _tool(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _run(tmp_path: Path, tools: dict[str, str], **env: str) -> subprocess.CompletedProcess:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, script in tools.items():
        _tool(bin_dir, name, script)
    # Only the stand-ins and the basic utilities the script needs: no real engine can leak in.
    for util in ("bash", "sed", "head", "grep", "dirname", "basename", "cat"):
        if not (bin_dir / util).exists():
            (bin_dir / util).symlink_to(shutil.which(util))
    full_env = {"PATH": str(bin_dir), "CALLS": str(tmp_path / "calls"), "HOME": str(tmp_path)}
    full_env.update(env)
    return subprocess.run(
        ["bash", str(BUILD_IMAGES)], capture_output=True, text=True, env=full_env, cwd=ROOT
    )


def _calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_no_working_engine_is_a_clear_error(tmp_path: Path) -> None:
    proc = _run(tmp_path, {"docker": BROKEN})
    assert proc.returncode != 0
    assert "no working container engine" in proc.stderr
    # Says, per tool, why it cannot be used: the daemon-less docker CLI and the missing others.
    assert "docker: installed, but `docker info` fails: Cannot connect" in proc.stderr
    assert "podman: not installed" in proc.stderr
    assert "buildah: not installed" in proc.stderr


def test_skips_a_cli_without_daemon_and_builds_with_podman(tmp_path: Path) -> None:
    proc = _run(tmp_path, {"docker": BROKEN, "podman": WORKING})
    assert proc.returncode == 0, proc.stderr
    builds = [c for c in _calls(tmp_path) if " build " in f" {c} "]
    assert builds == [
        f"podman build -f {ROOT}/images/{name}/Dockerfile -t devplane/{name}:{APP_VERSION} {ROOT}"
        for name in ("workspace", "hub", "operator")
    ]
    assert not [c for c in _calls(tmp_path) if " push " in f" {c} "]


def test_buildah_registry_tag_and_push(tmp_path: Path) -> None:
    proc = _run(
        tmp_path, {"buildah": WORKING},
        REGISTRY="registry.example.internal/platform/", TAG="1.2.3", IMAGES="hub", PUSH="1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ref = "registry.example.internal/platform/devplane/hub:1.2.3"
    assert _calls(tmp_path) == [
        "buildah info",
        f"buildah bud -f {ROOT}/images/hub/Dockerfile -t {ref} {ROOT}",
        f"buildah push {ref}",
    ]
    assert "global.imageRegistry=registry.example.internal/platform" in proc.stderr


def test_engine_choice_and_bad_input(tmp_path: Path) -> None:
    forced = _run(
        tmp_path, {"docker": WORKING, "podman": WORKING}, ENGINE="podman", IMAGES="operator"
    )
    assert forced.returncode == 0, forced.stderr
    assert _calls(tmp_path)[-1].startswith("podman build")
    assert "docker info" not in _calls(tmp_path)
    unknown = _run(tmp_path, {"docker": WORKING}, IMAGES="hub database")
    assert unknown.returncode != 0 and "unknown image 'database'" in unknown.stderr
    push = _run(tmp_path, {"docker": WORKING}, PUSH="1")
    assert push.returncode != 0 and "PUSH=1 needs REGISTRY" in push.stderr


def test_images_have_dockerfiles() -> None:
    """What the script builds exists (a rename on either side fails here, not at `make images`)."""
    for name in ("workspace", "hub", "operator"):
        assert (ROOT / "images" / name / "Dockerfile").is_file(), name


@pytest.mark.cluster
def test_deploy_script_installs_the_chart(kubectl, kubeconfig, helm, tmp_path: Path) -> None:
    """`make deploy` for real: hack/deploy.sh with VALUES and NAMESPACE, then an upgrade."""
    ns = f"chart-deploy-{os.getpid()}"
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "workspaces": {"namespace": {"name": f"{ns}-ws"}},
                "hub": {"db": {"type": "sqlite-memory"}},
                **api_server_values(kubeconfig),
            }
        )
    )
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "NAMESPACE": ns, "RELEASE": "dp",
           "VALUES": str(values)}  # fmt: skip
    try:
        for _ in range(2):  # install, then upgrade in place
            proc = subprocess.run(
                ["bash", str(DEPLOY)], capture_output=True, text=True, env=env, cwd=ROOT,
                timeout=400,
            )  # fmt: skip
            assert proc.returncode == 0, proc.stderr[-3000:]
        status = helm("status", "dp", "-n", ns, "-o", "json", kubeconfig=kubeconfig)
        assert '"status":"deployed"' in status.stdout.replace(" ", "")
        assert '"version":2' in status.stdout.replace(" ", "")
        missing = subprocess.run(
            ["bash", str(DEPLOY)], capture_output=True, text=True, cwd=ROOT,
            env={**env, "VALUES": str(tmp_path / "nope.yaml")},
        )  # fmt: skip
        assert missing.returncode != 0 and "does not exist" in missing.stderr
    finally:
        helm("uninstall", "dp", "-n", ns, "--wait", kubeconfig=kubeconfig)
        for name in (f"{ns}-ws", ns):
            kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def test_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is missing: apt-get install shellcheck (make setup-apt)"
    scripts = [BUILD_IMAGES, DEPLOY, ROOT / "tests" / "chart" / "setup-checkov.sh"]
    proc = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
