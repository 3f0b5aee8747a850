"""Helpers to run hack/local_runner.py from pytest and to describe a workspace-shaped pod."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from support.procs import wait_for

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "hack"))

from localrunner.procs import RUN_MARKER_ENV  # noqa: E402
from localrunner.supervisor import is_alive, kill_marked, processes_with_marker  # noqa: E402


class RunnerProcess:
    """hack/local_runner.py as a subprocess, with its pods.json readable."""

    def __init__(self, kubeconfig: Path, namespaces: list[str], state_dir: Path) -> None:
        self.state_dir = state_dir
        self.marker = f"pytest-{os.getpid()}-{time.monotonic_ns()}"
        argv = [
            sys.executable,
            str(ROOT / "hack" / "local_runner.py"),
            "--kubeconfig",
            str(kubeconfig),
        ]
        for ns in namespaces:
            argv += ["--namespace", ns]
        argv += ["--state-dir", str(state_dir)]
        state_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = state_dir / "runner.log"
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, RUN_MARKER_ENV: self.marker},
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def pods(self) -> dict[str, Any]:
        try:
            return json.loads((self.state_dir / "pods.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        for pod in self.pods().values():
            if pod["namespace"] == namespace and pod["name"] == name:
                return pod
        return None

    def wait_pod(self, namespace: str, name: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the local runner exited:\n{self.log()}"
            pod = self.pod(namespace, name)
            if pod:
                return pod
            time.sleep(0.2)
        raise AssertionError(f"runner did not start pod {namespace}/{name}:\n{self.log()}")

    def leftovers(self) -> list[int]:
        return processes_with_marker(RUN_MARKER_ENV, self.marker)

    def stop(self) -> list[int]:
        """Stop the runner; returns PIDs of the run still alive afterwards (should be none)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        time.sleep(0.2)
        survivors = [p for p in self.leftovers() if is_alive(p)]
        # Report them, but never leave them running for the next test (or person).
        kill_marked(RUN_MARKER_ENV, self.marker)
        return survivors


def workspace_like_pod(
    name: str, owner: str, pvc: str, hub_secret: str, llm_secret: str, configmap: str
) -> dict:
    """A pod shaped like docs/contracts.md's workspace pod (restricted-compliant)."""
    security = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    limits = {"limits": {"cpu": "1", "memory": "1Gi"}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/managed-by": "devplane", "devplane.io/owner": owner},
        },
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {"fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "workspace",
                    "image": "devplane/workspace:test",
                    "command": ["/usr/local/bin/devplane-workspace"],
                    "securityContext": {**security, "runAsUser": 1000, "runAsGroup": 1000},
                    "resources": limits,
                    "env": [
                        {"name": "HOME", "value": "/home/dev"},
                        {"name": "USER", "value": "dev"},
                        {"name": "SHELL", "value": "/bin/bash"},
                        {"name": "DEVPLANE_TTYD_SOCKET", "value": "/run/devplane/ttyd.sock"},
                        {"name": "DEVPLANE_ACTIVITY_FILE", "value": "/run/devplane/activity"},
                        {"name": "OPENCODE_CONFIG", "value": "/etc/opencode/opencode.json"},
                        {
                            "name": "DEVPLANE_LLM_API_KEY_VLLM",
                            "valueFrom": {"secretKeyRef": {"name": llm_secret, "key": "api-key"}},
                        },
                    ],
                    "volumeMounts": [
                        {"name": "home", "mountPath": "/home/dev"},
                        {"name": "tmp", "mountPath": "/tmp"},
                        {"name": "run", "mountPath": "/run/devplane"},
                        {"name": "opencode", "mountPath": "/etc/opencode", "readOnly": True},
                    ],
                },
                {
                    "name": "authproxy",
                    "image": "devplane/hub:test",
                    "command": ["python3", "-m", "devplane_spawner.authproxy"],
                    "securityContext": {**security, "runAsUser": 1001, "runAsGroup": 1001},
                    "resources": limits,
                    "envFrom": [{"secretRef": {"name": hub_secret}}],
                    "env": [
                        {"name": "DEVPLANE_PROXY_IP", "value": "0.0.0.0"},
                        {"name": "DEVPLANE_PROXY_PORT", "value": "8888"},
                        {"name": "DEVPLANE_UPSTREAM", "value": "unix:/run/devplane/ttyd.sock"},
                        {"name": "DEVPLANE_ACTIVITY_FILE", "value": "/run/devplane/activity"},
                    ],
                    "ports": [{"name": "http", "containerPort": 8888}],
                    "volumeMounts": [
                        {"name": "run", "mountPath": "/run/devplane"},
                        {"name": "proxy-tmp", "mountPath": "/tmp"},
                    ],
                },
            ],
            "volumes": [
                {"name": "home", "persistentVolumeClaim": {"claimName": pvc}},
                {"name": "tmp", "emptyDir": {}},
                {"name": "run", "emptyDir": {"medium": "Memory"}},
                {"name": "proxy-tmp", "emptyDir": {}},
                {"name": "opencode", "configMap": {"name": configmap}},
            ],
        },
    }


def wait_until(what: str, check, timeout: float = 60, interval: float = 0.5):
    return wait_for(check, timeout=timeout, what=what, interval=interval)


@contextlib.contextmanager
def runner_held(demo):
    """The demo's local runner paused for the block: new pods still run in the cluster (kwok
    says so, and the Workspace becomes Ready), but none of their processes start, so nothing
    answers at their address and the hub keeps a spawn pending (its check that the server
    answers, for up to the spawner's http_timeout). A test can then follow a spawn's progress
    while it certainly is pending, however fast this machine starts a workspace."""
    runner = next(p for p in demo.procs if p.name == "local-runner")
    assert runner.alive(), f"the local runner is not running:\n{runner.log_tail()}"
    os.kill(runner.popen.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(runner.popen.pid, signal.SIGCONT)
