#!/usr/bin/env python3
"""Measure the local control plane: warm start-up time and resident memory at rest.

Starts a private control plane (own state dir and ports, so a running `make devcluster` is
untouched) RUNS times from the cached binaries, and prints for each run the seconds until the
API server is ready and until the cluster is usable (node Ready, default ServiceAccount), then
the resident memory (RSS) of each process after SETTLE seconds at rest.

    .venv/bin/python bench/devcluster_startup.py [--runs 3] [--settle 30] [--real-node]

With --real-node the cluster gets its real node (DEVCLUSTER_REAL_NODE=1, its own address
range): "usable" then includes the node Ready and CoreDNS serving, and the figures add the
seconds from kubelet's start to node Ready, a restricted pod of the workspace image from
creation to Ready (after the image is loaded), and the RSS of every node process (daemons,
shims, socat, and the pods' processes: CoreDNS, pause).

Cold build time is not measured here (it needs an empty cache): `time hack/build-binaries.sh`
with DEVPLANE_CACHE pointing at an empty directory measures it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devplane_dev.devcluster import private_cluster_env
from figures import record

ROOT = Path(__file__).resolve().parent.parent


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    kib = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
    return kib / 1024


def node_memory(state: Path) -> dict[str, float]:
    """RSS of the real node's processes: those with its marker in their environment (daemons,
    shims, socat) and those in its pods' cgroups, summed by command name."""
    marker = f"DEVCLUSTER_NODE={state / 'node'}".encode()
    cgroup_root = f":/devcluster-{hashlib.sha256(str(state).encode()).hexdigest()[:6]}/"
    memory: dict[str, float] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cgroup = (proc / "cgroup").read_text()
            comm = (proc / "comm").read_text().strip()
            if marker in environ or cgroup_root in cgroup:
                key = f"node/{comm}"
                memory[key] = memory.get(key, 0.0) + rss_mib(int(proc.name))
        except (OSError, AttributeError):
            continue
    return memory


def workspace_pod_ready(env: dict[str, str], state: Path) -> float:
    """Seconds from creating a restricted workspace pod on the real node to its Ready."""
    from devplane_dev.images import app_version
    from devplane_dev.realnode_config import NODE_LABEL, NODE_TAINT

    image = f"localhost/devplane/workspace:{app_version()}"
    subprocess.run(
        [sys.executable, str(ROOT / "hack" / "devcluster.py"), "load-images", image],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bench", "namespace": "default"},
        "spec": {
            "nodeSelector": {NODE_LABEL[0]: NODE_LABEL[1]},
            "tolerations": [{**NODE_TAINT, "operator": "Equal"}],
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "ws", "image": image, "imagePullPolicy": "Never",
                "command": ["sleep", "infinity"],
                "securityContext": {"allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "home", "mountPath": "/home/dev"}],
            }],
            "volumes": [{"name": "home", "emptyDir": {}}],
        },
    }  # fmt: skip
    kubectl = [str(Path(env["DEVCLUSTER_BIN_DIR"]) / "kubectl"), "--kubeconfig",
               str(state / "kubeconfig")]  # fmt: skip
    t0 = time.monotonic()
    subprocess.run([*kubectl, "apply", "-f", "-"], input=json.dumps(pod), text=True, check=True,
                   capture_output=True)  # fmt: skip
    subprocess.run([*kubectl, "wait", "--for=condition=Ready", "pod/bench", "--timeout=120s"],
                   check=True, capture_output=True)  # fmt: skip
    return time.monotonic() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--real-node", action="store_true", help="with the real node")
    parser.add_argument(
        "--base-port", type=int, default=50000,
        help="the private cluster's ports are this plus 2379, 2380, 6443, 257, 259, 247",
    )  # fmt: skip
    args = parser.parse_args()

    bin_dir = subprocess.run(
        [str(ROOT / "hack" / "build-binaries.sh"), "etcd", "kwok", "kubernetes"],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    base_env = private_cluster_env(
        Path("/nonexistent"),  # each run sets its own
        args.base_port,
        DEVCLUSTER_BIN_DIR=bin_dir,
        DEVCLUSTER_REAL_NODE="1" if args.real_node else "0",
        DEVCLUSTER_NODE_CIDR="10.224.0.0/24",
    )
    api_ready, usable, node_ready, pod_ready, node_extra = [], [], [], [], []
    memory: dict[str, float] = {}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**base_env, "DEVCLUSTER_DIR": str(Path(tmp) / "c")}
            t0 = time.monotonic()
            proc = subprocess.run(
                [sys.executable, str(ROOT / "hack" / "devcluster.py"), "up"],
                capture_output=True, text=True, env=env,
            )  # fmt: skip
            total = time.monotonic() - t0
            try:
                if proc.returncode != 0:
                    print(proc.stderr, file=sys.stderr)
                    return 1
                m = re.search(r"API server ready after ([\d.]+)s", proc.stderr)
                api_ready.append(float(m.group(1)))
                usable.append(total)
                print(f"run {run + 1}: API server ready {api_ready[-1]:.1f}s, usable {total:.1f}s")
                if args.real_node:
                    m = re.search(r"control plane healthy after ([\d.]+)s", proc.stderr)
                    node_extra.append(total - float(m.group(1)))
                    print(f"       of which after the control plane was healthy: "
                          f"{node_extra[-1]:.1f}s")  # fmt: skip
                if m := re.search(r"real node Ready ([\d.]+)s after kubelet", proc.stderr):
                    node_ready.append(float(m.group(1)))
                    print(f"       node Ready {node_ready[-1]:.1f}s after kubelet started")
                if args.real_node:
                    pod_ready.append(workspace_pod_ready(env, Path(tmp) / "c"))
                    print(f"       workspace pod Ready {pod_ready[-1]:.1f}s after creation")
                if run == args.runs - 1:
                    time.sleep(args.settle)
                    for pidfile in sorted((Path(tmp) / "c" / "pids").glob("*.pid")):
                        memory[pidfile.stem] = rss_mib(int(pidfile.read_text()))
                    memory |= node_memory(Path(tmp) / "c")
            finally:
                subprocess.run(
                    [sys.executable, str(ROOT / "hack" / "devcluster.py"), "down"],
                    capture_output=True, env=env,
                )  # fmt: skip
    print()
    print(f"warm start, API server ready: median {statistics.median(api_ready):.1f}s "
          f"(max {max(api_ready):.1f}s) over {len(api_ready)} runs")  # fmt: skip
    print(f"warm start, cluster usable:   median {statistics.median(usable):.1f}s "
          f"(max {max(usable):.1f}s); target (issue 14, with the real node): <= 15 s")  # fmt: skip
    if args.real_node:
        met = record("warm_start", statistics.median(usable))
    else:
        met = record("warm_start", None, "run without --real-node")
    if node_ready:
        print(f"real node Ready after kubelet's start: median {statistics.median(node_ready):.1f}s")
        print(f"the node's share of the start (usable minus control plane healthy): "
              f"median {statistics.median(node_extra):.1f}s")  # fmt: skip
        print(f"workspace pod Ready after creation: median {statistics.median(pod_ready):.1f}s")
    print(f"resident memory after {args.settle:.0f}s at rest:")
    for name, mib in memory.items():
        print(f"  {name:25s} {mib:7.1f} MiB")
    print(f"  {'total':25s} {sum(memory.values()):7.1f} MiB")
    node_total = sum(mib for name, mib in memory.items() if name.startswith("node/"))
    if node_total:
        print(f"  {'of which the real node':25s} {node_total:7.1f} MiB (budget 2048 MiB)")
    return 0 if met or not args.real_node else 1


if __name__ == "__main__":
    sys.exit(main())
