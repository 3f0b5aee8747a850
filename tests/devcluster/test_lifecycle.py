"""`devcluster up` is idempotent and `devcluster down` leaves nothing behind.

Runs a second, private control plane (own state directory and ports) so the shared one
the other tests use is left alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def devcluster(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "hack" / "devcluster.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def our_processes(state_dir: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            status = (proc / "stat").read_text()
        except OSError:
            continue
        if str(state_dir) in cmdline and status.rsplit(")", 1)[-1].split()[0] != "Z":
            found.append(cmdline.replace("\0", " ")[:120])
    return found


def test_up_is_idempotent_and_down_leaves_nothing(tmp_path, bin_dir, kubeconfig):
    state = tmp_path / "cluster"
    env = {
        **os.environ,
        "DEVCLUSTER_DIR": str(state),
        "DEVCLUSTER_BIN_DIR": str(bin_dir),
        "DEVCLUSTER_ETCD_PORT": "42379",
        "DEVCLUSTER_ETCD_PEER_PORT": "42380",
        "DEVCLUSTER_APISERVER_PORT": "46443",
        "DEVCLUSTER_KCM_PORT": "40257",
        "DEVCLUSTER_SCHEDULER_PORT": "40259",
        "DEVCLUSTER_KWOK_PORT": "40247",
        # kwok's lifecycle; the real node's has its own test (test_real_node_down.py).
        "DEVCLUSTER_REAL_NODE": "0",
    }
    try:
        first = devcluster(env, "up")
        assert first.returncode == 0, first.stderr
        assert Path(first.stdout.strip()) == state / "kubeconfig"
        assert len(our_processes(state)) >= 5

        node = subprocess.run(
            [str(bin_dir / "kubectl"), "--kubeconfig", str(state / "kubeconfig"), "get", "nodes"],
            capture_output=True,
            text=True,
        )
        assert "kwok-node-0   Ready" in node.stdout, node.stdout + node.stderr

        t0 = time.monotonic()
        second = devcluster(env, "up")
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stderr
        assert time.monotonic() - t0 < 10
    finally:
        down = devcluster(env, "down")
    assert down.returncode == 0, down.stderr
    assert our_processes(state) == []
    assert not state.exists()
