"""DevPlane's container images for tests: built by hack/build-images.sh, run by podman.

The build runs through the same script `make images` uses, so a test sees the build's own
message when it fails. Containers run with the project's engine settings
(hack/engine-conf.sh: runc, ulimits within this host's), the way the build ran them.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from .paths import ROOT

BUILD_IMAGES = ROOT / "hack" / "build-images.sh"
OUT = ROOT / "build" / "images"
NAMES = ("workspace", "hub", "operator")


def engine_env(**extra: str) -> dict[str, str]:
    conf = subprocess.run(
        [str(ROOT / "hack" / "engine-conf.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    return {**os.environ, "CONTAINERS_CONF": conf, "ENGINE": "podman", **extra}


def build_images(timeout: float = 3600, **env: str) -> subprocess.CompletedProcess[str]:
    """Run hack/build-images.sh (stdout and stderr together in .stdout); never raises."""
    return subprocess.run(
        [str(BUILD_IMAGES)],
        env=engine_env(**env),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


def app_version() -> str:
    for line in (ROOT / "chart" / "Chart.yaml").read_text().splitlines():
        if line.startswith("appVersion:"):
            return line.split(":", 1)[1].strip().strip("\"'")
    raise AssertionError("no appVersion in chart/Chart.yaml")


def lock_version(package: str) -> str:
    lock = json.loads((ROOT / "package-lock.json").read_text())
    return lock["packages"][f"node_modules/{package}"]["version"]


def constraint(name: str) -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        pkg, _, version = line.partition("==")
        if pkg.strip().lower() == name.lower():
            return version.strip()
    raise AssertionError(f"{name} is not pinned in constraints.txt")


@dataclass
class Podman:
    env: dict[str, str]

    def __call__(
        self, *args: str, timeout: float = 120, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done

    def run(
        self,
        image: str,
        command: Sequence[str],
        *,
        entrypoint: str | None = None,
        options: Sequence[str] = (),
        network: str = "none",
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """`podman run --rm --read-only` as the image's own user, by default with no network."""
        argv = ["run", "--rm", "--read-only", f"--network={network}", *options]
        if entrypoint is not None:
            argv.append(f"--entrypoint={entrypoint}")
        return self(*argv, image, *command, timeout=timeout)

    def inspect(self, image: str) -> dict:
        return json.loads(self("image", "inspect", image, check=True).stdout)[0]
