"""hack/devcluster.py tells its own processes from strangers by their command line.

A process caught inside execve() has no command line yet; `up` used to read that as "etcd
exited" and fail (seen in a real run). These run without a cluster.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

from support.procs import process_state, wait_for

ROOT = Path(__file__).resolve().parents[2]


def _load(state: Path):
    spec = importlib.util.spec_from_file_location(
        "devcluster_under_test", ROOT / "hack" / "devcluster.py"
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    module.STATE = state
    return module


def test_a_process_that_just_started_is_ours(tmp_path):
    devcluster = _load(tmp_path)
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


def test_a_stranger_or_a_dead_process_is_not_ours(tmp_path):
    devcluster = _load(tmp_path)
    stranger = subprocess.Popen(["python3", "-c", "import time; time.sleep(5)"])
    ours = subprocess.Popen(
        ["python3", "-c", "import time; time.sleep(5)", str(tmp_path / "marker")]
    )
    try:
        assert not devcluster.is_ours(stranger.pid)
        assert devcluster.is_ours(ours.pid)
        # Exited but not reaped yet: a zombie still has our pid but is not running.
        ours.kill()
        wait_for(lambda: process_state(ours.pid) == "Z", 5, "the killed process to become a zombie")
        assert not devcluster.is_ours(ours.pid)
        ours.wait()
        assert not devcluster.is_ours(ours.pid)
    finally:
        stranger.kill()
        stranger.wait()
        ours.kill()
        ours.wait()
