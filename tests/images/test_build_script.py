"""hack/build-images.sh's refusals: each one fast, and saying what to do."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from devplane_dev.images import BUILD_IMAGES, build_images, engine_env

# Like a docker CLI whose daemon is not running (the common broken case on build machines).
DAEMONLESS_DOCKER = """#!/bin/sh
if [ "$1" = info ]; then
  echo "Cannot connect to the engine at unix:///run/engine.sock. Is the daemon running?" >&2
fi
exit 1
"""


def run_with_only(tmp_path, tools: dict[str, str], **env: str) -> subprocess.CompletedProcess[str]:
    """hack/build-images.sh with a PATH of its own basic tools plus ``tools`` (name -> script):
    no real container engine can leak in."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("bash", "sed", "head", "grep", "dirname", "dpkg", "uname", "timeout", "cat"):
        found = shutil.which(tool)
        assert found, tool
        if not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    for name, script in tools.items():
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    return subprocess.run(
        ["bash", str(BUILD_IMAGES)],
        env={"PATH": str(bin_dir), "HOME": os.environ["HOME"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_no_engine_fails_within_seconds_saying_what_to_install(tmp_path):
    started = time.monotonic()
    done = run_with_only(tmp_path, {"docker": DAEMONLESS_DOCKER})
    assert time.monotonic() - started < 10
    assert done.returncode != 0
    assert "no working container engine" in done.stderr
    # Per tool, why it cannot be used: the daemon-less docker CLI and the missing others.
    assert "docker: installed, but `docker info` fails: Cannot connect" in done.stderr
    for tool in ("podman", "buildah"):
        assert f"{tool}: not installed" in done.stderr
    assert "make setup-images" in done.stderr


def test_bad_settings_are_refused_before_anything_is_built(tmp_path):
    for env, message in (
        ({"IMAGES": "hub database"}, "unknown image 'database' in IMAGES"),
        ({"PUSH": "1"}, "PUSH=1 needs REGISTRY"),
        ({"ENGINE": "kaniko"}, "ENGINE=kaniko: use docker, podman or buildah"),
    ):
        done = run_with_only(tmp_path, {}, **env)
        assert done.returncode != 0 and message in done.stderr, (env, done.stderr)
        assert "building" not in done.stderr


def test_arm64_is_refused_at_once_naming_what_is_missing():
    started = time.monotonic()
    done = build_images(timeout=60, ARCH="arm64")
    assert time.monotonic() - started < 10
    assert done.returncode != 0
    assert "ARCH=arm64 cannot be built" in done.stdout
    assert "ttyd" in done.stdout and "x86_64" in done.stdout


def test_an_untrusted_proxy_or_mirror_fails_naming_CA_BUNDLE(images, tmp_path):
    # A CA that signs nothing the package servers present: the build's fetches fail TLS
    # verification exactly as they do behind an inspecting proxy whose CA the build lacks.
    ca_dir = tmp_path / "ca"
    ca_dir.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=devplane test CA that signs nothing",
         "-keyout", str(ca_dir / "key.pem"), "-out", str(ca_dir / "ca.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    # A changed NPM_REGISTRY spelling (same server) makes the engine rerun the npm step
    # instead of reusing its cached layer; the apt steps before it stay cached.
    registry = subprocess.run(
        ["npm", "config", "get", "registry"], capture_output=True, text=True, check=True
    ).stdout.strip()
    variant = registry.rstrip("/") if registry.endswith("/") else registry + "/"
    done = build_images(
        timeout=900,
        IMAGES="workspace",
        TAG="ca-test",
        CA_BUNDLE=str(ca_dir / "ca.pem"),
        BUILD_ARGS=f"--build-arg=NPM_REGISTRY={variant}",
    )
    assert done.returncode != 0, done.stdout[-3000:]
    assert "with-ca: ERROR: 'npm' could not verify the TLS certificate" in done.stdout
    assert "CA_BUNDLE=/path/to/ca-bundle.crt make images" in done.stdout
    # The message, not the tool's stack trace.
    assert "npm error" not in done.stdout and "    at " not in done.stdout, done.stdout[-3000:]
    images_after = subprocess.run(
        ["podman", "images", "--quiet", "devplane/workspace:ca-test"],
        env=engine_env(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert images_after.stdout.strip() == "", "a failed build must not leave a tagged image"
