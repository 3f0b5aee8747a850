"""examples/rest_workspace.py against the demo stack: the REST automation path end to end."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from devplane_dev.localrunner.stack import DemoStack
from devplane_dev.paths import ROOT
from devplane_dev.poll import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]
EXAMPLE = ROOT / "examples" / "rest_workspace.py"


def _run(demo: DemoStack, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DEVPLANE_HUB_URL": demo.config.url,
        "DEVPLANE_API_TOKEN": demo.config.api_token,
    }
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_rest_example_creates_starts_and_stops_a_workspace(demo: DemoStack) -> None:
    proc = _run(demo, "dana", "--profile", "large")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "user dana: created" in out
    assert "%]" in out, f"no progress events printed:\n{out}"
    assert f"is ready: {demo.config.url}/user/dana/" in out
    assert "workspace of dana: stopped" in out
    # The profile reached the Workspace, and stopping kept it (and its home) as Stopped.
    workspace = wait_for(
        "dana's Workspace", lambda: demo.kube.workspace(demo.config.namespace, "dana")
    )
    assert workspace["spec"]["resources"]["limits"]["cpu"] == "4"
    wait_for("dana's Workspace to be Stopped", lambda: demo.workspace_phase("dana") == "Stopped")


def test_rest_example_reports_an_unknown_profile(demo: DemoStack) -> None:
    proc = _run(demo, "erin", "--profile", "huge")
    assert proc.returncode == 1
    # The spawner's 400 names the allowed profiles instead of silently using a default.
    assert "huge" in proc.stderr and "small" in proc.stderr, proc.stderr
