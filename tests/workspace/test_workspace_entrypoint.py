"""The workspace container's entrypoint, run as local processes with the pod's layout."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator

import pytest
from devplane_dev.local_workspace import ENTRYPOINT, LocalWorkspace
from devplane_dev.poll import wait_for
from devplane_dev.procs import ManagedProcess, short_tempdir
from websockets.asyncio.client import unix_connect


def _children(pid: int) -> dict[int, str]:
    out = subprocess.run(
        ["ps", "-o", "pid=,comm=", "--ppid", str(pid)], capture_output=True, text=True
    ).stdout
    return {int(p): name for p, name in (line.split(None, 1) for line in out.splitlines())}


def _tmux_running(workspace: LocalWorkspace) -> bool:
    return subprocess.run(["tmux", "ls"], env=workspace.env(), capture_output=True).returncode == 0


@pytest.fixture
def workspace() -> Iterator[LocalWorkspace]:
    ws = LocalWorkspace(short_tempdir("dpe-"))
    # A stale socket file left by a previous container in the (surviving) emptyDir.
    ws.socket.write_text("stale")
    ws.start()
    yield ws
    ws.stop()


def test_ttyd_listens_only_on_the_group_writable_unix_socket(workspace):
    mode = workspace.socket.stat().st_mode
    assert stat.S_ISSOCK(mode)
    # 0660: the auth proxy (another uid, same fsGroup) can connect; others cannot.
    assert stat.S_IMODE(mode) == 0o660
    ttyd = [pid for pid, name in _children(workspace.process.pid).items() if name == "ttyd"]
    assert len(ttyd) == 1
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
    assert f"pid={ttyd[0]}," not in listening


def test_watcher_writes_latest_pane_activity(workspace):
    workspace.tmux("new-session", "-d", "-s", "main")
    workspace.tmux("send-keys", "-t", "main", "echo busy", "Enter")
    stamp = wait_for("the activity file", workspace.pane_activity, 10)
    assert abs(stamp - time.time()) < 10


def test_sigterm_stops_ttyd_watcher_and_tmux(workspace):
    workspace.tmux("new-session", "-d", "-s", "main")
    pid = workspace.process.pid
    children = _children(pid)
    assert "ttyd" in children.values()
    os.kill(pid, signal.SIGTERM)  # only the entrypoint, as the kubelet would
    assert workspace.process.proc.wait(10) == 0
    for child in children:
        wait_for(f"child {child} to exit", lambda c=child: not os.path.exists(f"/proc/{c}"), 5)
    assert not _tmux_running(workspace)


def test_ttyd_dying_ends_the_container(workspace):
    pid = workspace.process.pid
    ttyd = next(p for p, name in _children(pid).items() if name == "ttyd")
    os.kill(ttyd, signal.SIGKILL)
    # The container exits non-zero (so the kubelet restarts it) instead of idling without ttyd.
    assert workspace.process.proc.wait(10) != 0


async def test_works_on_a_read_only_root_filesystem():
    """As in the pod: everything read-only except home, /tmp and /run/devplane."""
    ws = LocalWorkspace(short_tempdir("dpr-"))
    writable = [ws.home, ws.tmp, ws.run]
    # A private mount namespace: bind the writable dirs onto themselves (separate mounts stay
    # writable), then remount / read-only, then become the entrypoint.
    script = "set -e; mount --make-rprivate /; "
    script += "".join(f"mount --bind {d} {d}; " for d in writable)
    script += f"mount -o remount,bind,ro /; exec {ENTRYPOINT}"
    ws.process = ManagedProcess(
        ["unshare", "--mount", "bash", "-c", script],
        ws.root / "workspace.log",
        env=ws.env(),
        cwd=ws.home,
    )
    try:
        wait_for("ttyd's socket", ws.socket.is_socket, 20)
        async with unix_connect(str(ws.socket), "ws://localhost/ws", subprotocols=["tty"]) as tty:
            await tty.send(json.dumps({"AuthToken": "", "columns": 100, "rows": 30}).encode())
            # Prove the root really is read-only in there, and that the shell still works.
            await tty.send(b"0touch /usr/probe 2>/dev/null || echo ro-$((40+2)); pwd\r")
            output = b""
            while b"ro-42" not in output or str(ws.home).encode() not in output:
                output += (await asyncio.wait_for(tty.recv(), 15))[1:]
        assert ws.process.alive(), ws.process.log()
    finally:
        ws.stop()
