"""Run the real operator as a subprocess, for tests, benchmarks and the demo.

Lives in the package (like kopf.testing) so that every test suite can import it the same way,
whatever pytest's rootdir and import mode: ``from devplane_operator.testing import
OperatorProcess, install_crd``.

    op = OperatorProcess(kubeconfig, namespaces=[ns]).start()
    op.wait_ready()
    ...
    op.metric("devplane_operator_api_writes_total")  # summed over labels
    op.kill()   # SIGKILL, as a crash would
    op.stop()   # SIGTERM, as a rollout would
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CRD_FILE = ROOT / "chart" / "crds" / "workspaces.devplane.io.yaml"


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


def install_crd(kubectl_argv: Sequence[str], timeout: float = 60) -> None:
    """``kubectl apply`` the Workspace CRD (idempotent) and wait until it is served.

    ``kubectl_argv`` is the kubectl command with its --kubeconfig, e.g.
    ``["/path/kubectl", "--kubeconfig", "/path/kubeconfig"]``.
    """
    for args in (
        ["apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE)],
        [
            "wait", "--for=condition=Established", "crd/workspaces.devplane.io",
            f"--timeout={int(timeout)}s",
        ],
    ):  # fmt: skip
        proc = subprocess.run([*kubectl_argv, *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {proc.stderr}")


class OperatorProcess:
    """One ``python -m devplane_operator`` subprocess watching ``namespaces``."""

    def __init__(
        self,
        kubeconfig: str | os.PathLike,
        namespaces: Sequence[str],
        env: Mapping[str, str] | None = None,
        log_path: str | os.PathLike | None = None,
        leader_election: bool = False,
    ) -> None:
        self.kubeconfig = str(kubeconfig)
        self.namespaces = list(namespaces)
        self.port = free_port()
        self.extra_env = dict(env or {})
        self.leader_election = leader_election
        self.log_path = Path(log_path) if log_path else None
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEVPLANE_")}
        env |= {
            "KUBECONFIG": self.kubeconfig,
            "DEVPLANE_NAMESPACES": ",".join(self.namespaces),
            "DEVPLANE_METRICS_HOST": "127.0.0.1",
            "DEVPLANE_METRICS_PORT": str(self.port),
            "DEVPLANE_LEADER_ELECTION": "true" if self.leader_election else "false",
            "DEVPLANE_LLM_PROVIDERS": (
                '[{"name": "vllm", "baseURL": "http://vllm.llm.svc:8000/v1", "models": ["qwen"]}]'
            ),
            "PYTHONUNBUFFERED": "1",
        }
        env |= self.extra_env
        return env

    def start(self) -> OperatorProcess:
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()/kill()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devplane_operator"],
            env=self.environment(),
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        return self

    def _get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def wait_ready(self, timeout: float = 60, path: str = "/readyz") -> None:
        """Until /readyz says 200 (leader, cache primed, workers running).

        ``path="/healthz"`` waits only until the process serves its endpoint (a standby).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError(f"the operator exited with {code}; {self.tail()}")
            try:
                if self._get(path)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"the operator did not answer {path} after {timeout}s; {self.tail()}")

    def metrics_text(self) -> str:
        return self._get("/metrics")[1]

    def metric(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels``."""
        total = 0.0
        pattern = re.compile(rf"^{re.escape(name)}(\{{(.*)\}})? (\S+)$")
        for line in self.metrics_text().splitlines():
            match = pattern.match(line)
            if not match:
                continue
            sample = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            if all(sample.get(k) == v for k, v in (labels or {}).items()):
                total += float(match.group(3))
        return total

    def tail(self, chars: int = 3000) -> str:
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        return "log tail:\n" + self.log_path.read_text(errors="replace")[-chars:]

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL: no clean-up, no Lease release, as a crash or OOM kill would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self._close_log()

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait (then SIGKILL); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._close_log()
        return self.proc.returncode

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
