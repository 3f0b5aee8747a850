"""The real operator as a subprocess (``python -m devplane_operator``), and the CRD it serves.

op = OperatorProcess(kubeconfig, namespaces=[ns], log_path=tmp_path / "operator.log").start()
op.wait_ready()
...
op.metric("devplane_operator_api_writes_total")  # summed over labels
op.kill()   # SIGKILL, as a crash would
op.stop()   # SIGTERM, as a rollout would
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from .paths import CRD_FILE, ROOT
from .procs import ManagedProcess, free_port, short_tempdir_path
from .workspaces import EXAMPLE_PROVIDERS_JSON


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
        self.log_path = Path(log_path) if log_path else short_tempdir_path("operator.log")
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def proc(self) -> subprocess.Popen:
        assert self.process is not None, "the operator is not started"
        return self.process.proc

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEVPLANE_")}
        env |= {
            "KUBECONFIG": self.kubeconfig,
            "DEVPLANE_NAMESPACES": ",".join(self.namespaces),
            "DEVPLANE_METRICS_HOST": "127.0.0.1",
            "DEVPLANE_METRICS_PORT": str(self.port),
            "DEVPLANE_LEADER_ELECTION": "true" if self.leader_election else "false",
            "DEVPLANE_LLM_PROVIDERS": EXAMPLE_PROVIDERS_JSON,
            # The default image's path, and hosts the local control plane never pulls from,
            # which tests use for pull failures: `.invalid` (kwok plays the failure) and
            # `.test` (no kwok stage: the test plays the kubelet); hack/devcluster/kwok-stages.yaml.
            "DEVPLANE_ALLOWED_IMAGE_REGISTRIES": "devplane,registry.invalid,registry.test",
            "PYTHONUNBUFFERED": "1",
        }
        env |= self.extra_env
        return env

    def start(self) -> OperatorProcess:
        self.process = ManagedProcess(
            [sys.executable, "-m", "devplane_operator"],
            self.log_path,
            env=self.environment(),
            cwd=ROOT,
            name="operator",
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
        assert self.process is not None, "the operator is not started"
        self.process.wait_until(f"{path} to answer 200", lambda: self._get(path)[0] == 200, timeout)

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
        if self.process is None:
            return "(no log)"
        return "log tail:\n" + self.process.log_tail(chars)

    def kill(self) -> None:
        """SIGKILL: no clean-up, no Lease release, as a crash or OOM kill would."""
        if self.process is not None:
            self.process.kill()

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait (then SIGKILL); returns the exit code."""
        return self.process.stop(grace=timeout) if self.process is not None else None

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
