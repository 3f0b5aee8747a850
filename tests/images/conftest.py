"""Fixtures for the image tests: the three images, built once per session, and podman."""

from __future__ import annotations

import pytest
from devplane_dev.images import NAMES, Podman, app_version, build_images, engine_env


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """name -> reference of the built images. Runs the same build as `make images`: warm (after
    `make images`) it only checks the images' content keys; cold it builds them."""
    done = build_images()
    if done.returncode != 0:
        pytest.fail(
            f"hack/build-images.sh failed (exit {done.returncode}):\n{done.stdout[-6000:]}",
            pytrace=False,
        )
    return {name: f"devplane/{name}:{app_version()}" for name in NAMES}


@pytest.fixture(scope="session")
def podman() -> Podman:
    return Podman(engine_env())
