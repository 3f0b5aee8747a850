"""The real node's processes: how they are started in its namespaces, found, waited for and
stopped. Standard library only (devcluster.py says why); ``realnode`` is the node itself.

Every node process carries ``DEVCLUSTER_NODE=<node dir>`` in its environment, which
containerd's shims inherit: that, not a name or a pid file, is how they are found. The pods'
own processes are found by their cgroup (``NodeLayout.cgroup_root``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from devplane_dev import devcluster as dc
from devplane_dev import realnode_config as cfg
from devplane_dev.poll import wait_for

MARKER_ENV = "DEVCLUSTER_NODE"
# Started in this order; stopped in the reverse. "forward-host" is the only one in the host's
# namespaces; the rest run inside the node's.
PROCESSES = [
    "namespaces",
    "forward-host",
    "forward-node",
    "containerd",
    "kubelet",
    "kube-proxy",
    "kube-router",
]


class NodeError(dc.DevclusterError):
    """The real node could not be had; the message says why and what to do."""


def pidfile(lay: cfg.NodeLayout, name: str) -> Path:
    return lay.dir / "pids" / f"{name}.pid"


def is_node_process(pid: int, lay: cfg.NodeLayout) -> bool:
    """Whether ``pid`` is alive and one of this node's daemons (or a containerd shim)."""
    marker = f"{MARKER_ENV}={lay.dir}".encode()
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z" and marker in environ


def node_processes(lay: cfg.NodeLayout) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
            and is_node_process(int(p.name), lay)]  # fmt: skip


def pod_processes(lay: cfg.NodeLayout) -> list[int]:
    """Processes of the node's pods: whatever lives in a cgroup under its cgroup root."""
    needle = f":{lay.cgroup_root}/"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "cgroup").read_text():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def alive(lay: cfg.NodeLayout, name: str) -> bool:
    try:
        pid = int(pidfile(lay, name).read_text())
    except (OSError, ValueError):
        return False
    return is_node_process(pid, lay)


def enter(lay: cfg.NodeLayout, *namespaces: str) -> list[str]:
    """The argv prefix that runs a program in the node's ``namespaces`` ("net", "mount")."""
    holder = int(pidfile(lay, "namespaces").read_text())
    return ["nsenter", f"--target={holder}", *(f"--{ns}" for ns in namespaces), "--"]


def start(lay: cfg.NodeLayout, name: str, argv: list[str], inside: bool = True) -> int:
    """Start one node process, inside the node's namespaces unless ``inside`` is False."""
    if inside:
        argv = [*enter(lay, "net", "mount"), *argv]
    env = {
        **os.environ,
        MARKER_ENV: str(lay.dir),
        # containerd unpacks layers through temporary mounts under TMPDIR: keep them here.
        "TMPDIR": str(lay.dir / "tmp"),
    }
    return dc.spawn(argv, lay.dir / "logs" / f"{name}.log", pidfile(lay, name), env)


def log_tail(lay: cfg.NodeLayout, name: str) -> str:
    try:
        return (lay.dir / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
    except OSError:
        return "(no log)"


def wait(lay: cfg.NodeLayout, what: str, check, timeout: float = dc.START_TIMEOUT) -> None:
    """``wait_for``, failing at once with its log when a started node process has exited."""

    # A process looks gone for a moment while it execs (its environ, which carries the
    # marker, reads empty): the namespace holder's exec of `sleep` was once taken for an exit.
    # Gone on two checks in a row is gone.
    missed: set[str] = set()

    def ready() -> bool:
        if check():
            return True
        for name in PROCESSES:
            if not pidfile(lay, name).exists() or alive(lay, name):
                missed.discard(name)
            elif name in missed:
                raise NodeError(f"{name} exited while waiting for {what}:\n{log_tail(lay, name)}")
            else:
                missed.add(name)
        return False

    try:
        wait_for(what, ready, timeout, interval=0.2)
    except TimeoutError:
        raise NodeError(
            f"timed out after {timeout:.0f}s waiting for {what}; logs in {lay.dir}/logs"
        ) from None


def run(argv: list[str], what: str, *, inside: cfg.NodeLayout | None = None, **kw) -> str:
    if inside is not None:
        argv = [*enter(inside, "net"), *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise NodeError(f"{what} failed: {' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def ctr(lay: cfg.NodeLayout, *args: str, stdin=None, check: bool = True) -> str:
    argv = ["ctr", f"--address={lay.containerd_socket}", "--namespace=k8s.io", *args]
    proc = subprocess.run(argv, stdin=stdin, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NodeError(f"ctr {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def kill(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def stop(lay: cfg.NodeLayout, names: list[str]) -> None:
    pids = []
    for name in names:
        try:
            pid = int(pidfile(lay, name).read_text())
        except (OSError, ValueError):
            continue
        if is_node_process(pid, lay):
            # The process group: the holder's shell and nsenter's child go with it.
            kill(-pid, signal.SIGTERM)
            pids.append(pid)
    deadline = time.monotonic() + 10
    for pid in pids:
        while is_node_process(pid, lay) and time.monotonic() < deadline:
            time.sleep(0.05)
        if is_node_process(pid, lay):
            kill(-pid, signal.SIGKILL)


def cgroup_hierarchies() -> list[Path]:
    """Where cgroups are made: each v1 controller's mount and the unified one (this machine),
    or on a pure cgroup v2 host the root itself."""
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").exists():
        return [base]
    return [p for p in base.iterdir() if p.is_dir()]


def cgroup_dirs(lay: cfg.NodeLayout) -> list[Path]:
    """The node's cgroups in every hierarchy, deepest first."""
    found: list[Path] = []
    for hierarchy in cgroup_hierarchies():
        root = hierarchy / lay.cgroup_root.lstrip("/")
        if root.is_dir():
            found.extend([*sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True), root])
    return found


def remove_cgroups(lay: cfg.NodeLayout) -> None:
    for path in cgroup_dirs(lay):
        with contextlib.suppress(OSError):  # still busy: leftovers() reports it
            path.rmdir()
