"""`devcluster down` removes everything the real node made: the machine afterwards looks as it
did before `up`, in every place a node leaves things (issue 12, "down means gone").

Runs a second, private cluster with its own node (own state directory, ports and address
range), so the shared cluster and its node are left alone. Deselected only with
DEVCLUSTER_REAL_NODE=0 (tests/conftest.py).
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from devplane_dev import devcluster, realnode
from devplane_dev import realnode_config as cfg
from devplane_dev.devcluster import cli, private_cluster_env
from devplane_dev.realnode_config import NODE_LABEL, NODE_TAINT

pytestmark = [pytest.mark.real_node, pytest.mark.cluster]

ROOT = Path(__file__).resolve().parents[2]
# Where a kubelet, containerd, CNI or kube-router writes by default. The node must leave none of
# them changed (its own files live under its state directory or in its private mounts).
HOST_PATHS = [
    "/run/containerd", "/run/netns", "/var/run/netns", "/var/lib/containerd", "/opt/containerd",
    "/var/lib/cni", "/etc/cni/net.d", "/opt/cni/bin", "/var/lib/kubelet", "/var/log/pods",
    "/var/log/containers", "/etc/kubernetes", "/var/lib/kube-router", "/run/kube-router",
    "/etc/resolv.conf", "/etc/hosts",
]  # fmt: skip
KUBELET_SYSCTLS = [
    "vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/ipv4/ip_forward",
    "net/bridge/bridge-nf-call-iptables",
]  # fmt: skip
# Another engineer's podman (image builds, image tests) may add and remove its own bridge
# ports, CNI chains and network namespaces on this machine while this test runs.
PODMAN = re.compile(
    r"cni-podman|CNI-|/run/netns/(cni|netns)-|containers/storage|libpod|"
    r"/var/lib/cni/(networks|results)/podman"
)
# Processes a node may leave running: its daemons, containerd's shims, and pods' processes
# (in kubelet's or containerd's cgroups). Other processes come and go with other work.
NODE_COMMANDS = {
    "containerd", "containerd-shim", "containerd-shim-runc-v2", "runc", "kubelet", "kube-proxy",
    "kube-router", "coredns", "pause", "socat", "unshare", "nsenter",
}  # fmt: skip


def run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True).stdout


def node_like_processes() -> set[str]:
    procs = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cgroup = (proc / "cgroup").read_text()
            environ = (proc / "environ").read_bytes()
            comm = (proc / "comm").read_text().strip()
        except OSError:
            continue
        if (
            comm in NODE_COMMANDS
            or b"DEVCLUSTER_NODE=" in environ
            or re.search(r"kubepods|/k8s\.io/|devcluster-", cgroup)
        ):
            procs.add(f"{cmd.strip()} | {cgroup.splitlines()[-1] if cgroup else ''}")
    return procs


def host_paths() -> set[str]:
    found = set()
    for path in map(Path, HOST_PATHS):
        if path.is_dir():
            found |= {str(p) for p in path.rglob("*")} | {str(path)}
        elif path.exists():
            found.add(f"{path} {path.read_bytes().hex()[:4096]}")
    return found


def iptables_lines() -> set[str]:
    """Rules and chain names (not the chains' packet counters, which move with traffic)."""
    lines = run("iptables-save").splitlines()
    return {line for line in lines if not line.startswith(("#", ":"))} | {
        line.split()[0] for line in lines if line.startswith(":")
    }


def snapshot() -> dict[str, set[str]]:
    """What a node could leave behind on this machine, one line per thing."""
    mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    return {
        # Root and mount point only: mountinfo's ids change with unrelated activity.
        "mounts": {" ".join(m.split()[3:5]) for m in mountinfo},
        "links": {re.sub(r"^\d+: ", "", line) for line in run("ip", "-o", "link").splitlines()},
        "addresses": set(run("ip", "-o", "addr").splitlines()),
        "routes": set(run("ip", "route", "show", "table", "all").splitlines()),
        "iptables": iptables_lines(),
        "ipsets": set(run("ipset", "list", "-n").splitlines()),
        "processes": node_like_processes(),
        "cgroups": {
            str(c)
            for h in Path("/sys/fs/cgroup").iterdir()
            if h.is_dir()
            for c in h.iterdir()
            if c.is_dir()
        },
        "paths": host_paths(),
        "sysctls": {f"{s}={Path('/proc/sys', s).read_text().strip()}" for s in KUBELET_SYSCTLS},
    }


def others() -> re.Pattern[str]:
    """Podman's, and the session cluster's real node's: its pods come and go (other tests'
    pods terminating, their probes) under its own cgroup root while this test runs."""
    patterns = [PODMAN.pattern]
    if realnode.up_started():
        session = realnode.layout()
        patterns += [re.escape(session.cgroup_root), re.escape(str(session.dir))]
    return re.compile("|".join(patterns))


def added(before: dict[str, set[str]], after: dict[str, set[str]]) -> dict[str, list[str]]:
    """What ``after`` has that ``before`` did not, less what is provably someone else's."""
    diff = {}
    theirs = others()
    for kind, lines in after.items():
        new = sorted(line for line in lines - before[kind] if not theirs.search(line))
        if new:
            diff[kind] = new
    return diff


def test_down_leaves_nothing_of_the_node_behind(bin_dir, kubeconfig):
    # A short path: containerd's sockets live in it (a unix socket's path has 108 bytes).
    state = Path(tempfile.mkdtemp(prefix="dvc-")) / "cluster"
    # A range nothing on this machine routes (the session's node, another checkout's).
    taken = [devcluster.SERVICE_CIDR, devcluster.POD_CIDR, *realnode.host_routes()]
    if realnode.up_started():
        taken.append(str(realnode.layout().cidr))  # host_routes() leaves the session's out
    node_cidr = cfg.free_range(taken)
    pods = str(next(ipaddress.ip_network(node_cidr).subnets(new_prefix=25)))
    env = private_cluster_env(
        state,
        41000,
        DEVCLUSTER_BIN_DIR=str(bin_dir),
        DEVCLUSTER_REAL_NODE="1",
        DEVCLUSTER_NODE_CIDR=node_cidr,
        DEVCLUSTER_POD_CIDR="127.26.0.0/16",
    )
    before = snapshot()
    try:
        started = cli("up", env=env, timeout=300)
        assert started.returncode == 0, started.stderr
        kubectl = [str(bin_dir / "kubectl"), "--kubeconfig", str(state / "kubeconfig")]
        # Something for down to take apart: a pod with a service-account token (a tmpfs
        # mount kubelet makes) besides CoreDNS, and a policy, so kube-router makes ipsets.
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "pause", "namespace": "default", "labels": {"app": "p"}},
            "spec": {
                "nodeSelector": {NODE_LABEL[0]: NODE_LABEL[1]},
                "tolerations": [{**NODE_TAINT, "operator": "Equal"}],
                "containers": [
                    {"name": "pause", "image": node_image(state, "pause"),
                     "imagePullPolicy": "Never"}
                ],
            },
        }  # fmt: skip
        policy = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "deny", "namespace": "default"},
            "spec": {"podSelector": {"matchLabels": {"app": "p"}}, "policyTypes": ["Ingress"]},
        }
        items = json.dumps({"apiVersion": "v1", "kind": "List", "items": [pod, policy]})
        subprocess.run([*kubectl, "apply", "-f", "-"], input=items, check=True, text=True,
                       capture_output=True)  # fmt: skip
        waited = subprocess.run(
            [*kubectl, "wait", "--for=condition=Ready", "pod/pause", "--timeout=120s"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert waited.returncode == 0, waited.stderr
        running = added(before, snapshot())
        # The snapshot sees the node: its link and route on the host, its processes.
        assert any("dvc" in line for line in running.get("links", [])), running
        assert any(pods in line for line in running.get("routes", [])), running
        assert any("kubelet" in line for line in running.get("processes", [])), running
        # Its firewall and mounts are in its own namespaces, not the host's.
        assert "iptables" not in running and "ipsets" not in running, running
        assert not [m for m in running.get("mounts", []) if str(state) in m], running
    finally:
        stopped = cli("down", env=env, timeout=300)
    assert stopped.returncode == 0, stopped.stderr
    assert added(before, snapshot()) == {}
    assert not state.exists()
    shutil.rmtree(state.parent)  # the state lock `devcluster` keeps beside it


def node_image(state: Path, name: str) -> str:
    """The node's own image ``name`` as its containerd config names it."""
    if name == "pause":
        config = (state / "node" / "containerd.toml").read_text()
        return re.search(r'sandbox_image = "([^"]+)"', config).group(1)  # type: ignore[union-attr]
    raise ValueError(name)
