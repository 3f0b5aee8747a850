"""The real node's images: its own (pause, CoreDNS), built FROM scratch with podman, and the
copy of any image from podman's store into the node's containerd. Standard library only."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from devplane_dev import realnode_config as cfg
from devplane_dev.images import engine_env
from devplane_dev.realnode_procs import NodeError

# The node's own images and the non-root user each runs as (pause: the "nobody" of
# Kubernetes' own pause image; CoreDNS: distroless's nonroot, as upstream's image).
NODE_IMAGE_USERS = {"pause": "65535", "coredns": "65532"}


def podman(*args: str, **kw) -> subprocess.CompletedProcess:
    """podman with the project's engine settings, as `make images` runs it."""
    return subprocess.run(["podman", *args], env=engine_env(), **kw)


def node_images(node_bin: Path) -> dict[str, str]:
    """The node's own images (pause, CoreDNS), tagged by their binary's content, each made
    FROM scratch with podman and kept in its store like DevPlane's images."""
    images = {}
    for name in NODE_IMAGE_USERS:
        digest = hashlib.sha256((node_bin / name).read_bytes()).hexdigest()[:12]
        images[name] = f"localhost/devplane/node-{name}:{digest}"
    return images


def build_node_images(node_bin: Path) -> dict[str, str]:
    if not shutil.which("podman"):
        raise NodeError("podman is not installed: run `make setup-images` (the node's images)")
    images = node_images(node_bin)
    for name, ref in images.items():
        if podman("image", "exists", ref).returncode == 0:
            continue
        user = NODE_IMAGE_USERS[name]
        containerfile = f'FROM scratch\nCOPY {name} /{name}\nUSER {user}\nENTRYPOINT ["/{name}"]\n'
        build = podman(
            "build", "--quiet", "-t", ref, "-f", "-", str(node_bin),
            input=containerfile, capture_output=True, text=True,
        )  # fmt: skip
        if build.returncode != 0:
            raise NodeError(f"podman could not build {ref}: {build.stderr.strip()}")
    return images


def import_images(lay: cfg.NodeLayout, refs: list[str]) -> None:
    """``podman save | ctr images import``; an image already imported with the same podman id
    is left alone. (The local registry listens on the host's loopback, which the node's
    namespace does not see; docs/devcluster.md.)"""
    record = lay.dir / "images"
    record.mkdir(exist_ok=True)
    for ref in refs:
        inspect = podman("image", "inspect", "--format", "{{.Id}}", ref, capture_output=True,
                         text=True)  # fmt: skip
        if inspect.returncode != 0:
            raise NodeError(
                f"{ref} is not in podman's image store; build it (`make images`) or check the name"
            )
        image_id = inspect.stdout.strip()
        seen = record / hashlib.sha256(ref.encode()).hexdigest()
        if seen.exists() and seen.read_text() == image_id:
            continue
        save = podman("save", "--format", "docker-archive", ref, stdout=subprocess.PIPE)
        if save.returncode != 0:
            raise NodeError(f"podman save {ref} failed (see above)")
        proc = subprocess.run(
            ["ctr", f"--address={lay.containerd_socket}", "--namespace=k8s.io", "images",
             "import", "-"],
            input=save.stdout, capture_output=True,
        )  # fmt: skip
        if proc.returncode != 0:
            raise NodeError(f"importing {ref} into the node failed: {proc.stderr.decode()}")
        seen.write_text(image_id)
