"""Start, watch and stop the demo's long-running processes.

Every process gets its own session (so stopping it takes its children along) and the run's
marker variable in its environment (so anything that daemonised out of its process group —
tmux servers, node workers — is still found and stopped, and `stop()` can prove that nothing
of this run is left).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from devplane_operator.testing import free_port  # noqa: F401 — re-exported for stack.py

from .supervisor import is_alive, kill_marked, processes_with_marker

RUN_MARKER_ENV = "DEVPLANE_DEMO_RUN"


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


class StartError(RuntimeError):
    """A component did not come up; the message names it and quotes its log."""


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path | None = None
    popen: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def stop(self, grace: float = 10.0) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with _quiet():
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with _quiet():
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        # The leader is gone; make sure the rest of its group is too.
        with _quiet():
            os.killpg(self.popen.pid, signal.SIGKILL)

    def wait_until(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise StartError(f"{self.name} exited while waiting for {what}:\n{self.log_tail()}")
            try:
                if check():
                    return
            except (requests.RequestException, OSError):
                pass
            time.sleep(0.25)
        raise StartError(
            f"{self.name}: timed out after {timeout:.0f}s waiting for {what}; "
            f"log {self.log_path}:\n{self.log_tail()}"
        )

    def wait_for_log(self, needle: str, timeout: float) -> str:
        """Wait for a line containing ``needle`` in the log; returns that line."""
        found: list[str] = []

        def check() -> bool:
            for line in self.log_tail(200_000).splitlines():
                if needle in line:
                    found.append(line)
                    return True
            return False

        self.wait_until(f"{needle!r} in its output", check, timeout)
        return found[0]


def http_ok(url: str, status: int = 200) -> Callable[[], bool]:
    return lambda: requests.get(url, timeout=2, allow_redirects=False).status_code == status


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError | PermissionError)


def stop_run(procs: list[Proc], markers: list[tuple[str, str]]) -> list[int]:
    """Stop ``procs`` in reverse start order, then anything else carrying one of ``markers``
    (environment ``(name, value)`` pairs that identify the run).

    Returns the PIDs still carrying a marker afterwards (empty when the stop was clean).
    """
    for proc in reversed(procs):
        # The hub stops its services and the proxy its routes; give them time to.
        proc.stop(grace=20.0 if proc.name == "hub" else 10.0)
    for key, value in markers:
        kill_marked(key, value)
    alive = {p for key, value in markers for p in processes_with_marker(key, value)}
    return sorted(p for p in alive - {os.getpid()} if is_alive(p))
