#!/usr/bin/env python3
"""Operator at scale: 1,000 Workspaces created at once on the local control plane.

Prints (targets from issue 14):
  * seconds from the first create until every Workspace reports Ready=True, over the floor
    below                                                                     (<= 1.6)
  * API writes per Workspace until then, from every client (the benchmark's create, the
    operator's writes and the control plane's in answer, bench/api_writes.py)  (<= 16)
  * the operator's peak resident memory, VmHWM from /proc                     (<= 200 MiB)
  * API writes the operator makes during one resync of the unchanged set      (0)

Baseline, in the same run and on the same cluster: bench/cluster_floor.py's floor (the same
number of bare PVC+pod pairs created straight through the API, no operator), run first. The
difference between the two is the operator's own cost; the floor is what this machine's
control plane needs whatever the operator does. Both print where the CPU went.

The operator runs as a real subprocess (devplane_dev.operator_process.OperatorProcess) with
leader election on, as in production; Lease renewals are writes to its own Lease, not to any
Workspace or child, and are reported separately. The namespace is deleted at the end.

    .venv/bin/python bench/operator_scale.py [--count 1000] [--no-floor] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path

from api_writes import ApiWrites
from cluster_floor import run_floor
from cpu_usage import CpuUsage
from devplane_dev import devcluster
from devplane_dev.kubectl import Kubectl
from devplane_dev.operator_process import OperatorProcess, install_crd
from devplane_dev.paths import ROOT
from devplane_dev.poll import wait_for_async
from devplane_dev.workspaces import workspace_manifest
from figures import record
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from rawkube import call, condition_true, wait_until_ready

from devplane_api.v1alpha1 import GROUP, PLURAL, VERSION

WRITES = "devplane_operator_api_writes_total"
STATUS_WRITES = "devplane_operator_status_writes_total"


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def writes_by_kind(op: OperatorProcess) -> dict[str, float]:
    """{"<verb> <resource>": count} of the operator's API writes so far, Leases left out."""
    found = {}
    for line in op.metrics_text().splitlines():
        if line.startswith(WRITES + "{") and 'resource="leases"' not in line:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            found[f"{labels.get('verb')} {labels.get('resource')}"] = float(line.rsplit(" ", 1)[1])
    return found


def writes_excluding_leases(op: OperatorProcess) -> float:
    return op.metric(WRITES) - op.metric(WRITES, {"resource": "leases"})


async def create_all(api: k8s.CustomObjectsApi, namespace: str, count: int) -> None:
    semaphore = asyncio.Semaphore(64)

    async def create(i: int) -> None:
        async with semaphore:
            await call(
                api.create_namespaced_custom_object,
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                workspace_manifest(f"bench{i:04d}"),
            )

    await asyncio.gather(*(create(i) for i in range(count)))


def workspace_ready(ws: dict) -> bool:
    return condition_true(ws, "Ready")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--resync", type=float, default=20.0, help="operator resync period (s)")
    parser.add_argument("--keep", action="store_true", help="keep the namespace afterwards")
    parser.add_argument(
        "--kwok-nodes",
        type=int,
        default=0,
        help="simulated nodes to schedule on (default: enough for --count; the cluster's one "
        "node takes 1,896 Workspaces at the default requests)",
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the cluster-floor baseline run"
    )
    args = parser.parse_args()

    kubeconfig = str(devcluster.run_cli("up"))
    floor = None if args.no_floor else await run_floor(kubeconfig, args.count)
    if floor is not None:
        print("baseline, same cluster, no operator (bench/cluster_floor.py):")
        print("\n".join(f"  {line}" for line in floor.lines()), flush=True)
    kubectl = Kubectl(devcluster.binary_dir(), Path(kubeconfig))
    install_crd(kubectl.argv)
    extra_nodes = add_kwok_nodes(kubectl, args.kwok_nodes or -(-args.count // 1500))
    namespace = f"bench-op-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)

    configuration = k8s.Configuration()
    await k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    op = OperatorProcess(
        kubeconfig,
        [namespace],
        env={"DEVPLANE_RESYNC_SECONDS": str(args.resync), "DEVPLANE_WORKERS": "16"},
        log_path=ROOT / ".devcluster" / f"{namespace}-operator.log",
        leader_election=True,
    ).start()
    try:
        op.wait_ready()
        async with k8s.ApiClient(configuration) as client:
            api = k8s.CustomObjectsApi(client)
            api_writes = ApiWrites(devcluster.binary_dir(), kubeconfig).start()
            cpu = CpuUsage({"operator": op.proc.pid, "benchmark client": os.getpid()}).start()
            started = time.monotonic()
            milestones = Milestones(op, args.count, started)
            watcher = asyncio.create_task(milestones.watch())
            all_ready_task = asyncio.create_task(
                wait_until_ready(
                    functools.partial(
                        api.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL
                    ),
                    args.count,
                    workspace_ready,
                    limit=max(900, 0.3 * args.count),
                )
            )
            await create_all(api, namespace, args.count)
            created = time.monotonic() - started
            await all_ready_task
            all_ready = time.monotonic() - started
            cpu.stop()
            api_writes.stop()
            watcher.cancel()
            storm_writes = writes_by_kind(op)
            status_why = {w: op.metric(STATUS_WRITES, {"why": w}) / args.count
                          for w in ("news", "progress", "failure")}  # fmt: skip
            storm_reconciles = op.metric("devplane_operator_reconciles_total")

            # One full resync of the unchanged set: wait for the next one to start and end.
            resyncs = op.metric("devplane_operator_resyncs_total")
            await wait_for_async(
                "a first resync", lambda: _resynced(op, resyncs), 3 * args.resync, 0.5
            )
            writes_before = writes_excluding_leases(op)
            leases_before = op.metric(WRITES, {"resource": "leases"})
            reconciles_before = op.metric("devplane_operator_reconciles_total")
            resyncs = op.metric("devplane_operator_resyncs_total")
            await wait_for_async(
                "one more resync", lambda: _resynced(op, resyncs), 3 * args.resync, 0.5
            )
            resync_writes = writes_excluding_leases(op) - writes_before
            resync_reconciles = op.metric("devplane_operator_reconciles_total") - reconciles_before
            lease_writes = op.metric(WRITES, {"resource": "leases"}) - leases_before
            resync_seconds = op.metric("devplane_operator_last_resync_seconds")
            rss = peak_rss_mib(op.proc.pid)
            print(f"workspaces:                          {args.count}")
            print(f"all created after:                   {created:.1f} s")
            print(f"operator created every pod after:    {_fmt(milestones.pods_created)}")
            print(f"all Ready after:                     {all_ready:.1f} s")
            if floor is not None:
                ratio = all_ready / floor.ready
                print(
                    f"  the same count without the operator: {floor.ready:.1f} s; "
                    f"ratio {ratio:.2f}   (target <= 1.6)"
                )
            print(f"  {cpu.report(all_ready)}")
            all_writes = api_writes.total() / args.count
            print(f"  {api_writes.report(args.count)}")
            print(f"API writes per Workspace, all clients: {all_writes:.1f}   (target <= 16)")
            total = sum(storm_writes.values())
            per_workspace = total / args.count
            print(f"operator API writes until all Ready: {total:.0f} ({per_workspace:.1f} each)")
            print("  " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(storm_writes.items())))
            print("  status writes per Workspace, by why: "
                  + ", ".join(f"{w} {n:.2f}" for w, n in status_why.items()))  # fmt: skip
            print(f"reconciles until all Ready:          {storm_reconciles:.0f}")
            target = {1000: "   (target <= 200 MiB)", 10000: "   (target <= 400 MiB)"}
            print(f"operator peak RSS:                   {rss:.0f} MiB{target.get(args.count, '')}")
            print(
                f"reconciles in one resync:            {resync_reconciles:.0f}"
                f"  ({resync_seconds:.2f} s)"
            )
            print(f"API writes in one resync:            {resync_writes:.0f}   (target 0)")
            print(
                f"  (Lease renewals meanwhile:         {lease_writes:.0f}, not counted)", flush=True
            )
    finally:
        op.stop()
        for node in extra_nodes:
            kubectl("delete", "node", node, "--wait=false", check=False)
        if not args.keep:
            kubectl("delete", "namespace", namespace, "--timeout=900s")

    # The figures are for 1,000 and 10,000 Workspaces: a run of another size prints
    # its figures and records none (one would overwrite the same row of another size).
    oks = [True]
    if args.count == 1000:
        oks.append(record("writes_per_workspace", all_writes))
        oks.append(record("resync_writes", resync_writes))
        oks.append(record("rss_1000", rss))
        oks.append(
            record("scale_ratio", None, "run without its floor (--no-floor)")
            if floor is None
            else record("scale_ratio", all_ready / floor.ready)
        )
    elif args.count == 10000:
        oks.append(record("rss_10000", rss))
        oks.append(record("resync_writes_10000", resync_writes))
        record("resync_seconds_10000", resync_seconds)
    ok = all(oks)
    print("RESULT:", "all targets met" if ok else "some target missed")
    return 0 if ok else 1


def add_kwok_nodes(kubectl: Kubectl, total: int) -> list[str]:
    """Add simulated nodes like the cluster's own (kwok runs every node labelled type=kwok)
    until there are ``total``; return the names added. Their pods' IPs may repeat another
    node's: nothing here sends them traffic."""
    node = kubectl("get", "node", devcluster.NODE_NAME, json_out=True)
    added = []
    for i in range(1, total):
        name = f"{devcluster.NODE_NAME}-bench-{i}"
        labels = node["metadata"]["labels"] | {"kubernetes.io/hostname": name}
        manifest = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": name, "labels": labels},
            "spec": {k: v for k, v in node["spec"].items() if k in ("podCIDR", "podCIDRs")},
            "status": {"capacity": node["status"]["capacity"]},
        }
        kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
        added.append(name)
    for name in added:
        kubectl("wait", "--for=condition=Ready", f"node/{name}", "--timeout=60s")
    return added


class Milestones:
    """When the operator had created every pod, read from its own metrics (cheap).

    Tells the operator's share of the time from the cluster's (volume binding, scheduling,
    kwok making pods Ready). With kwok a scheduled pod is Ready at once, so "all scheduled"
    would be the same figure as "all Ready" and is not reported.
    """

    def __init__(self, op: OperatorProcess, count: int, started: float) -> None:
        self.op, self.count, self.started = op, count, started
        self.pods_created: float | None = None

    async def watch(self) -> None:
        while self.pods_created is None:
            await asyncio.sleep(1.0)
            now = time.monotonic() - self.started
            try:
                text = await asyncio.to_thread(self.op.metrics_text)
            except OSError:  # a slow answer under full load: ask again next second
                continue
            if _sample(text, WRITES, 'resource="pods",verb="create"') >= self.count:
                self.pods_created = now


def _sample(text: str, name: str, labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _fmt(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.1f} s"


async def _resynced(op: OperatorProcess, since: float) -> bool:
    return op.metric("devplane_operator_resyncs_total") > since


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
