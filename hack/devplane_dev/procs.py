"""Run a process: the one wrapper the tests, the demo and the benchmarks start processes with.

Each process gets a session (process group) of its own, a log file, and a ``stop()`` that
leaves nothing behind; ``wait_until`` waits for it to be ready and quotes its log when it is
not. Also here: ports for servers started a moment later, and /proc readers.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import requests

from .paths import NODE_BIN, VENV_BIN
from .poll import wait_for


class StartError(RuntimeError):
    """A process did not come up; the message names it and quotes its log."""


# Ports handed out by this process: two callers in a row never get the same one.
_HANDED_OUT: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on, for a server started a moment later.

    Not one the kernel picks (bind to port 0): those come from the ephemeral range, which the
    kernel also hands to outgoing connections, and one of the test suite's many connections
    took such a port before the demo's hub could bind it (CI, "Address already in use").
    Below the ephemeral range (and below the local control plane's fixed 30xxx/32xxx ports)
    only another listener can take it.
    """
    low = min(_ephemeral_range()[0], 30000) - 1
    if low > 11000:
        for _ in range(500):
            port = random.randint(10000, low)
            if port in _HANDED_OUT:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
            _HANDED_OUT.add(port)
            return port
    with socket.socket() as sock:  # an unusual port range: let the kernel choose
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_ok(url: str, status: int = 200, **kwargs) -> Callable[[], bool]:
    """A check for ``wait_until``: ``url`` answers with ``status``."""
    return lambda: (
        requests.get(url, timeout=2, allow_redirects=False, **kwargs).status_code == status
    )


def base_env(**extra: str) -> dict[str, str]:
    """The environment of a harness process: ours, trimmed, with the venv and node on PATH."""
    keep = ("PATH", "LANG", "KUBECONFIG", "HOME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = f"{VENV_BIN}:{NODE_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    env.setdefault("LANG", "C.UTF-8")
    return env | extra


def short_tempdir(prefix: str = "dp-") -> Path:
    """A short temp dir: unix socket paths (ttyd's, tmux's) must stay under 108 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def short_tempdir_path(name: str) -> Path:
    """A fresh path ``name`` inside a new short temp dir (logs of throw-away processes)."""
    return short_tempdir() / name


class ManagedProcess:
    """A subprocess in its own session (process group), logged to a file, stopped for sure.

    ``stop()`` sends SIGTERM to the whole group, then SIGKILL after ``grace`` seconds, so
    children such as ttyd, tmux servers or configurable-http-proxy never outlive their user.
    The log is appended to (the demo keeps its logs across restarts); ``log()`` is this run's
    part only, so a readiness line from an earlier run is never taken for this one.
    """

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        name: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.name = name or Path(self.argv[0]).name
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 — closed in stop()
        self._log_start = self._log.tell()
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        """What the process wrote since it started."""
        if not self._log.closed:
            self._log.flush()
        with open(self.log_path, "rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log()[-chars:]

    def wait_until(
        self, what: str, check: Callable[[], object], timeout: float = 60, interval: float = 0.2
    ):
        """Poll ``check`` until it holds; StartError when the process exits or time runs out.

        Connection errors from ``check`` count as "not yet": a server is not listening at
        first.
        """

        def ready() -> object:
            if not self.alive():
                raise StartError(f"{self.name} exited while waiting for {what}:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException, OSError):
                return check()
            return False

        try:
            return wait_for(f"{self.name}: {what}", ready, timeout, interval)
        except TimeoutError as err:
            raise StartError(f"{err}; log {self.log_path}:\n{self.log_tail()}") from None

    def wait_for_log(self, needle: str, timeout: float = 30) -> str:
        """Wait for a line containing ``needle`` in the log; returns that line."""

        def line() -> str | None:
            return next((line for line in self.log().splitlines() if needle in line), None)

        return self.wait_until(f"{needle!r} in its output", line, timeout)

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL to the group, no clean-up: as a crash or an OOM kill would."""
        self.signal_group(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._log.close()

    def stop(self, grace: float = 5.0) -> int | None:
        # Children that left our group for a session of their own (JupyterHub starts its
        # managed services so) are not reached by the group signals: note them first. A hub
        # whose culler ignores SIGINT (inherited from a background `.ci/run`) waits 30 s
        # before it escalates, longer than ``grace``, and the culler outlived every test run.
        children = _children(self.proc.pid) if self.alive() else []
        if self.alive():
            self.signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        # Children may linger in the group after the leader exited.
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(grace)
        for pid, started in children:
            if process_start_time(pid) == started:  # still that child, not a reused pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._log.close()
        return self.proc.returncode


def _stat(pid: int | str) -> list[str]:
    """/proc/PID/stat from field 3 (state) on; empty when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def process_state(pid: int) -> str | None:
    """The process's state letter ("R", "S", "Z" for a zombie, ...); None when it is gone."""
    fields = _stat(pid)
    return fields[0] if fields else None


def process_start_time(pid: int) -> str | None:
    """When the process started (clock ticks after boot): with the pid, names one process
    for good, as pids are reused. None when it is gone."""
    fields = _stat(pid)
    return fields[19] if fields else None  # field 22, starttime


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS), what a container memory limit counts."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ProcessLookupError(f"no VmRSS for pid {pid}")


def listening_pid(port: int, host: str = "127.0.0.1") -> int:
    """The process that listens on TCP ``host:port`` (one we may read: ours)."""
    wanted = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    inodes = {
        fields[9]
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
        if (fields := line.split())[1] == wanted and fields[3] == "0A"  # LISTEN
    }
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in {f"socket:[{inode}]" for inode in inodes}:
                    return int(entry.name)
    raise ProcessLookupError(f"nothing of ours listens on {host}:{port}")


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, start time) of the direct children of ``pid``, whatever their session."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)) and int(fields[1]) == pid:
            found.append((int(entry.name), fields[19]))
    return found
