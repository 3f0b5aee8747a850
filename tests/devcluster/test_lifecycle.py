"""`devcluster up` is idempotent and `devcluster down` leaves nothing behind.

Runs a second, private control plane (own state directory and ports) so the shared one
the other tests use is left alone.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from devplane_dev import devcluster as devcluster_module

ROOT = Path(__file__).resolve().parents[2]


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
    # kwok's lifecycle; the real node's has its own test (test_real_node_down.py).
    env = devcluster_module.private_cluster_env(
        state, 40000, DEVCLUSTER_BIN_DIR=str(bin_dir), DEVCLUSTER_REAL_NODE="0"
    )
    try:
        first = devcluster_module.cli("up", env=env, timeout=300)
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
        second = devcluster_module.cli("up", env=env, timeout=300)
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stderr
        assert time.monotonic() - t0 < 10
    finally:
        down = devcluster_module.cli("down", env=env, timeout=300)
    assert down.returncode == 0, down.stderr
    assert our_processes(state) == []
    assert not state.exists()
