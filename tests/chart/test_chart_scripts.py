"""hack/deploy.sh, the script behind `make deploy`, and shellcheck over the chart's scripts.

deploy.sh is exercised for real: test_deploy_script installs the chart with it. The image
build script (hack/build-images.sh) is tested with the images, in tests/images/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from chart_helpers import ROOT, api_server_values

BUILD_IMAGES = ROOT / "hack" / "build-images.sh"
DEPLOY = ROOT / "hack" / "deploy.sh"


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
