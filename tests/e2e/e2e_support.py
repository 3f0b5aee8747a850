"""The local runner as a subprocess for its tests, and a workspace-shaped pod to give it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from devplane_dev.localrunner.runs import RUN_MARKER_ENV
from devplane_dev.localrunner.supervisor import (
    is_alive,
    kill_marked,
    processes_with_marker,
    published_pod,
)
from devplane_dev.paths import LOCAL_RUNNER
from devplane_dev.procs import ManagedProcess

from devplane_api.v1alpha1 import (
    AUTHPROXY_MODULE,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    OWNER_LABEL,
    PROXY_PORT,
    PROXY_PORT_NAME,
)


class RunnerProcess:
    """hack/local_runner.py as a subprocess, with its pods.json readable."""

    def __init__(self, kubeconfig: Path, namespaces: list[str], state_dir: Path) -> None:
        self.state_dir = state_dir
        self.marker = f"pytest-{os.getpid()}-{time.monotonic_ns()}"
        argv = [sys.executable, str(LOCAL_RUNNER), "--kubeconfig", str(kubeconfig)]
        for ns in namespaces:
            argv += ["--namespace", ns]
        argv += ["--state-dir", str(state_dir)]
        self.process = ManagedProcess(
            argv,
            state_dir / "runner.log",
            env={**os.environ, RUN_MARKER_ENV: self.marker},
            name="local-runner",
        )

    def log(self) -> str:
        return self.process.log_tail(4000)

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return published_pod(self.state_dir / "pods.json", namespace, name)

    def wait_pod(self, namespace: str, name: str, timeout: float = 30) -> dict[str, Any]:
        return self.process.wait_until(
            f"pod {namespace}/{name} to start", lambda: self.pod(namespace, name), timeout
        )

    def leftovers(self) -> list[int]:
        return processes_with_marker(RUN_MARKER_ENV, self.marker)

    def stop(self) -> list[int]:
        """Stop the runner; returns PIDs of the run still alive afterwards (should be none)."""
        # SIGTERM only, and count before ManagedProcess.stop() would kill what is left: the
        # runner itself must stop every process of its pods.
        self.process.signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.proc.wait(20)
        time.sleep(0.2)
        survivors = [p for p in self.leftovers() if is_alive(p)]
        # Report them, but never leave them running for the next test (or person).
        self.process.stop()
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
            "labels": {MANAGED_BY: MANAGED_BY_VALUE, OWNER_LABEL: owner},
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
                    "command": ["python3", "-m", AUTHPROXY_MODULE],
                    "securityContext": {**security, "runAsUser": 1001, "runAsGroup": 1001},
                    "resources": limits,
                    "envFrom": [{"secretRef": {"name": hub_secret}}],
                    "env": [
                        {"name": "DEVPLANE_PROXY_IP", "value": "0.0.0.0"},
                        {"name": "DEVPLANE_PROXY_PORT", "value": str(PROXY_PORT)},
                        {"name": "DEVPLANE_UPSTREAM", "value": "unix:/run/devplane/ttyd.sock"},
                        {"name": "DEVPLANE_ACTIVITY_FILE", "value": "/run/devplane/activity"},
                    ],
                    "ports": [{"name": PROXY_PORT_NAME, "containerPort": PROXY_PORT}],
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


@contextlib.contextmanager
def runner_held(demo):
    """The demo's local runner paused for the block: new pods still run in the cluster (kwok
    says so, and the Workspace becomes Ready), but none of their processes start, so nothing
    answers at their address and the hub keeps a spawn pending (its check that the server
    answers, for up to the spawner's http_timeout). A test can then follow a spawn's progress
    while it certainly is pending, however fast this machine starts a workspace."""
    runner = next(p for p in demo.procs if p.name == "local-runner")
    assert runner.alive(), f"the local runner is not running:\n{runner.log_tail()}"
    os.kill(runner.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(runner.pid, signal.SIGCONT)
