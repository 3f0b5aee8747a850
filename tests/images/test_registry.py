"""The local OCI registry (hack/registry.sh): images pushed by `PUSH=1 make images` pull back
by digest, the way a cluster pulls them from a site's internal registry."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from devplane_dev.images import OUT, ROOT, app_version, build_images
from devplane_dev.procs import free_port

REGISTRY_SH = ROOT / "hack" / "registry.sh"


@pytest.fixture
def registry() -> Iterator[str]:
    env = {**os.environ, "DEVPLANE_REGISTRY_PORT": str(free_port())}
    up = subprocess.run([str(REGISTRY_SH), "up"], env=env, capture_output=True, text=True)
    if up.returncode != 0:
        pytest.fail(f"hack/registry.sh up failed:\n{up.stderr[-4000:]}", pytrace=False)
    try:
        yield up.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(REGISTRY_SH), "down"], env=env, capture_output=True, text=True)


def test_pushed_image_pulls_back_by_digest(images, podman, registry):
    assert registry.startswith("127.0.0.1:")
    done = build_images(IMAGES="operator", REGISTRY=f"{registry}/devplane", PUSH="1")
    assert done.returncode == 0, done.stdout[-4000:]
    digest = (OUT / "operator.digest").read_text().strip()
    assert digest.startswith("sha256:")
    pushed = f"{registry}/devplane/devplane/operator"
    local_id = podman.inspect(images["operator"])["Id"]
    # Drop the pushed tag, then pull by digest: what comes back is the image that was built.
    podman("rmi", f"{pushed}:{app_version()}", check=True)
    podman("pull", "--tls-verify=false", f"{pushed}@{digest}", check=True, timeout=300)
    assert podman.inspect(f"{pushed}@{digest}")["Id"] == local_id
    podman("rmi", f"{pushed}@{digest}")
