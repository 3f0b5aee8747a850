"""devcluster (hack/devcluster.py) tells its own processes from strangers by their command line.

A process caught inside execve() has no command line yet; `up` used to read that as "etcd
exited" and fail (seen in a real run). These run without a cluster.
"""

from __future__ import annotations

import subprocess

import pytest
from devplane_dev import devcluster as devcluster_module
from devplane_dev.poll import wait_for
from devplane_dev.procs import process_state


@pytest.fixture
def devcluster(tmp_path, monkeypatch):
    """The devcluster module with its state directory (what "ours" is told by) in tmp_path."""
    monkeypatch.setattr(devcluster_module, "STATE", tmp_path)
    return devcluster_module


def test_a_process_that_just_started_is_ours(devcluster, tmp_path):
    misread = 0
    for _ in range(200):  # the exec window is short: catching it takes many tries
        proc = subprocess.Popen(
            ["python3", "-c", "import time; time.sleep(5)", str(tmp_path / "marker")],
            start_new_session=True,
        )
        try:
            misread += not devcluster.is_ours(proc.pid)
        finally:
            proc.kill()
            proc.wait()
    assert misread == 0


def test_a_stranger_or_a_dead_process_is_not_ours(devcluster, tmp_path):
    stranger = subprocess.Popen(["python3", "-c", "import time; time.sleep(5)"])
    ours = subprocess.Popen(
        ["python3", "-c", "import time; time.sleep(5)", str(tmp_path / "marker")]
    )
    try:
        assert not devcluster.is_ours(stranger.pid)
        assert devcluster.is_ours(ours.pid)
        # Exited but not reaped yet: a zombie still has our pid but is not running.
        ours.kill()
        wait_for("the killed process to become a zombie", lambda: process_state(ours.pid) == "Z", 5)
        assert not devcluster.is_ours(ours.pid)
        ours.wait()
        assert not devcluster.is_ours(ours.pid)
    finally:
        stranger.kill()
        stranger.wait()
        ours.kill()
        ours.wait()
