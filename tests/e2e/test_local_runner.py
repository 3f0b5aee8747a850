"""The local runner: how it maps a workspace pod to local processes, and that it really runs
and stops them against the local control plane."""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import signal
import time
from pathlib import Path

import pytest
import requests
from devplane_dev import devcluster
from devplane_dev.localrunner.podspec import (
    PodSpecError,
    References,
    Toolchain,
    is_runnable,
    plan_pod,
    rewrite_paths,
)
from devplane_dev.localrunner.supervisor import is_alive
from devplane_dev.paths import ROOT
from e2e_support import RunnerProcess, workspace_like_pod

from devplane_api.v1alpha1 import PROXY_PORT

TOOLS = Toolchain(repo=ROOT, python=Path("/venv/bin/python"), tool_dir=Path("/tools"))


def _running(pod: dict, ip: str = "127.20.0.7") -> dict:
    pod = copy.deepcopy(pod)
    pod["metadata"] |= {"namespace": "ns", "uid": "uid-1"}
    pod["status"] = {"phase": "Running", "podIP": ip}
    return pod


def _refs() -> References:
    return References(
        secrets={
            "hub": {"JUPYTERHUB_USER": "alice", "JUPYTERHUB_API_TOKEN": "t0k"},
            "llm": {"api-key": "sk-1"},
        },
        configmaps={"oc": {"opencode.json": '{"model": "vllm/m"}'}},
        claim_dirs={"home-alice": Path("/vol/pvc-1")},
    )


def _plan(tmp_path: Path):
    pod = _running(workspace_like_pod("ws-alice", "alice", "home-alice", "hub", "llm", "oc"))
    return plan_pod(pod, _refs(), TOOLS, tmp_path)


def test_rewrite_paths_matches_whole_components_only() -> None:
    mounts = {"/tmp": Path("/x/tmp"), "/home/dev": Path("/v/h"), "/home/dev/.cache": Path("/c")}
    assert rewrite_paths("unix:/tmp/s.sock", mounts) == "unix:/x/tmp/s.sock"
    assert rewrite_paths("/tmpfoo:/home/dev/bin", mounts) == "/tmpfoo:/v/h/bin"
    assert rewrite_paths("/home/dev/.cache/x", mounts) == "/c/x"
    assert rewrite_paths("/usr/tmp", mounts) == "/usr/tmp"


def test_plan_maps_commands_env_and_mounts(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    ws, proxy = plan.processes
    assert ws.argv == [str(ROOT / "images" / "workspace" / "devplane-workspace")]
    assert proxy.argv == ["/venv/bin/python", "-m", "devplane_authproxy"]
    # Home is the PV's directory; emptyDirs live in the pod's scratch directory.
    assert ws.env["HOME"] == "/vol/pvc-1"
    run_dir = tmp_path / "volumes" / "run"
    assert ws.env["DEVPLANE_TTYD_SOCKET"] == f"{run_dir}/ttyd.sock"
    assert proxy.env["DEVPLANE_UPSTREAM"] == f"unix:{run_dir}/ttyd.sock"
    # Private /tmp per container, and tmux's socket with it (else pods share a tmux server).
    assert ws.env["TMUX_TMPDIR"] == str(tmp_path / "volumes" / "tmp")
    assert proxy.env["TMPDIR"] == str(tmp_path / "volumes" / "proxy-tmp")
    # The proxy listens on the pod IP, not 0.0.0.0 (all local pods share one network).
    assert proxy.env["DEVPLANE_PROXY_IP"] == "127.20.0.7"
    # Secrets: envFrom for the proxy only, secretKeyRef for the key; no hub token for the user.
    assert proxy.env["JUPYTERHUB_API_TOKEN"] == "t0k"
    assert not any(k.startswith("JUPYTERHUB_") for k in ws.env)
    assert ws.env["DEVPLANE_LLM_API_KEY_VLLM"] == "sk-1"
    assert ws.env["OPENCODE_CONFIG"] == str(tmp_path / "volumes" / "opencode" / "opencode.json")
    assert plan.files == {
        tmp_path / "volumes" / "opencode" / "opencode.json": b'{"model": "vllm/m"}'
    }
    assert ws.env["PATH"].startswith("/tools:")
    # Not a login shell, which would reset PATH and lose ttyd/opencode.
    assert ws.env["SHELL"] == "/tools/devplane-shell"


def test_plan_refuses_what_it_cannot_emulate(tmp_path: Path) -> None:
    pod = _running(workspace_like_pod("ws-a", "a", "home-alice", "hub", "llm", "oc"))
    with pytest.raises(PodSpecError, match="not bound"):
        plan_pod(
            pod, References(secrets=_refs().secrets, configmaps=_refs().configmaps), TOOLS, tmp_path
        )
    no_secret = References(configmaps=_refs().configmaps, claim_dirs=_refs().claim_dirs)
    with pytest.raises(PodSpecError, match="Secret 'llm'"):
        plan_pod(pod, no_secret, TOOLS, tmp_path)


def test_only_running_pods_with_an_ip_are_run() -> None:
    pod = _running(workspace_like_pod("ws-a", "a", "home-alice", "hub", "llm", "oc"))
    assert is_runnable(pod)
    assert not is_runnable({**pod, "status": {"phase": "Pending"}})
    assert not is_runnable({**pod, "status": {"phase": "Running"}})
    deleting = copy.deepcopy(pod)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not is_runnable(deleting)


# ------------------------------------------------------------------ against the control plane


def _apply(kubectl, namespace: str, obj: dict) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(obj))


def _pod_objects(kubectl, namespace: str, owner: str) -> str:
    """Secrets, ConfigMap and PVC for a workspace-like pod; returns the pod name."""
    hub = {
        "JUPYTERHUB_USER": owner,
        "JUPYTERHUB_SERVICE_PREFIX": f"/user/{owner}/",
        "JUPYTERHUB_API_URL": "http://127.0.0.1:9/hub/api",
        "JUPYTERHUB_API_TOKEN": "unused",
        "JUPYTERHUB_CLIENT_ID": f"jupyterhub-user-{owner}",
        "JUPYTERHUB_OAUTH_CALLBACK_URL": f"/user/{owner}/oauth_callback",
    }
    for name, data in ((f"ws-{owner}-hub", hub), (f"ws-{owner}-llm", {"api-key": "k"})):
        _apply(
            kubectl,
            namespace,
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data},
        )
    _apply(
        kubectl,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"ws-{owner}-opencode"},
            "data": {"opencode.json": "{}"},
        },
    )
    _apply(
        kubectl,
        namespace,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": f"home-{owner}"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
                "storageClassName": "standard",
            },
        },
    )
    # Like the operator: the pod only once its home volume is bound (else the scheduler
    # backs off for a while).
    kubectl(
        "wait", "--for=jsonpath={.status.phase}=Bound", f"pvc/home-{owner}",
        "-n", namespace, "--timeout=60s",
    )  # fmt: skip
    pod = workspace_like_pod(
        f"ws-{owner}",
        owner,
        f"home-{owner}",
        f"ws-{owner}-hub",
        f"ws-{owner}-llm",
        f"ws-{owner}-opencode",
    )
    _apply(kubectl, namespace, pod)
    return pod["metadata"]["name"]


@pytest.mark.cluster
def test_runner_runs_workspace_pods_and_stops_them(
    kubectl, kubeconfig, make_namespace, tmp_path
) -> None:
    namespace = make_namespace("lr", restricted=True)
    runner = old = RunnerProcess(kubeconfig, [namespace], tmp_path / "runner")
    try:
        names = [_pod_objects(kubectl, namespace, owner) for owner in ("alice", "bob")]
        pods = [runner.wait_pod(namespace, name, timeout=90) for name in names]
        ips = {p["podIP"] for p in pods}
        assert len(ips) == 2 and all(
            ipaddress.ip_address(ip) in ipaddress.ip_network(devcluster.POD_CIDR) for ip in ips
        )
        for owner, pod in zip(("alice", "bob"), pods, strict=True):
            # The auth proxy answers the hub's readiness check at podIP:8888 ...
            _wait_proxy(runner, pod, owner)
        # ... with its home on the directory of the PV kwok provisioned.
        home = Path(pods[0]["containers"]["workspace"]["env"]["HOME"])
        assert home.is_dir() and str(home).startswith(f"{devcluster.STATE}/volumes/pvc-")
        (home / "keep.txt").write_text("survives")

        # Deleting a pod stops its processes (all of them) and keeps the other pod running.
        kubectl("delete", "pod", names[0], "-n", namespace, "--wait=false")
        deadline = time.monotonic() + 30
        while runner.pod(namespace, names[0]) is not None:
            assert time.monotonic() < deadline, f"runner did not stop the pod:\n{runner.log()}"
            time.sleep(0.2)
        alice_pids = [c["pid"] for c in pods[0]["containers"].values()]
        assert not any(is_alive(pid) for pid in alice_pids)
        assert runner.pod(namespace, names[1]) is not None
        assert (home / "keep.txt").read_text() == "survives"

        # A runner that is killed outright cannot stop its pods; the next one (same state
        # directory) stops those orphans first, so its own proxy can bind the pod IP again.
        os.kill(old.process.pid, signal.SIGKILL)
        old.process.proc.wait()
        orphans = old.leftovers()
        assert orphans, "expected bob's processes to outlive a SIGKILLed runner"
        runner = RunnerProcess(kubeconfig, [namespace], tmp_path / "runner")
        old_pids = {c["pid"] for c in pods[1]["containers"].values()}
        deadline = time.monotonic() + 60
        while True:  # until the new runner reports bob's pod with processes of its own
            bob = runner.pod(namespace, names[1])
            if bob and not old_pids & {c["pid"] for c in bob["containers"].values()}:
                break
            assert time.monotonic() < deadline, f"bob's pod was not restarted:\n{runner.log()}"
            time.sleep(0.2)
        _wait_proxy(runner, bob, "bob")
        assert [p for p in orphans if is_alive(p)] == []
    finally:
        left = runner.stop()
        orphans_left = old.stop() if old is not runner else []
    assert left == [], f"processes left after the runner stopped: {left}"
    assert orphans_left == [], f"the killed runner's processes survived: {orphans_left}"


def _wait_proxy(runner: RunnerProcess, pod: dict, owner: str) -> None:
    url = f"http://{pod['podIP']}:{PROXY_PORT}/user/{owner}/api"
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, f"{url} never answered:\n{runner.log()}"
        time.sleep(0.3)
