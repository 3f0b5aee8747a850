#!/usr/bin/env python3
"""The local cluster's own floor for bench/operator_scale.py: no operator at all.

Creates COUNT home PVCs and COUNT pods (the same two objects per Workspace that the operator
ends up creating, minus the ConfigMap, Service and NetworkPolicy) straight through the API,
32 requests in flight, and prints the seconds until every pod is Running and Ready. Whatever
the operator does, 1,000 Workspaces cannot be Ready sooner than this on the same cluster, so
the difference is the operator's own cost.

    .venv/bin/python bench/cluster_floor.py [--count 1000] [--in-flight 32]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import time
import uuid
from dataclasses import dataclass

from api_writes import ApiWrites
from cpu_usage import CpuUsage
from devplane_dev import devcluster
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from rawkube import ApiError, call, condition_true, wait_until_ready


def pvc(i: int) -> dict:
    return {
        "metadata": {"name": f"home-u{i}"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def pod(i: int) -> dict:
    return {
        "metadata": {"name": f"ws-u{i}", "labels": {"bench": "floor"}},
        "spec": {
            "automountServiceAccountToken": False,
            "containers": [{"name": "workspace", "image": "busybox:1.36"}],
            "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": f"home-u{i}"}}],
        },
    }


def start_cluster() -> str:
    return str(devcluster.run_cli("up"))


@dataclass
class FloorResult:
    count: int
    created: float  # seconds until every create returned
    ready: float  # seconds until every pod was Running and Ready
    cpu: CpuUsage
    writes: ApiWrites

    def lines(self) -> list[str]:
        return [
            f"{self.count} PVC+pod pairs created directly in {self.created:.1f} s",
            f"all {self.count} pods Running and Ready after {self.ready:.1f} s"
            " (the cluster's floor)",
            self.cpu.report(self.ready),
            self.writes.report(self.count),
        ]


def pod_ready(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running" and condition_true(pod, "Ready")


async def run_floor(kubeconfig: str, count: int = 1000, in_flight: int = 32) -> FloorResult:
    """Create ``count`` PVC+pod pairs in a fresh namespace, time them to Ready, clean up."""
    config = k8s.Configuration()
    await k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=config)
    ns = f"floor-{uuid.uuid4().hex[:6]}"
    async with k8s.ApiClient(config) as api:
        core = k8s.CoreV1Api(api)
        await core.create_namespace({"metadata": {"name": ns}})
        try:
            while True:  # pod admission needs the namespace's default ServiceAccount
                try:
                    await core.read_namespaced_service_account("default", ns)
                    break
                except k8s.ApiException:
                    await asyncio.sleep(0.2)
            gate = asyncio.Semaphore(in_flight)

            async def create(i: int) -> None:
                async with gate:
                    await call(core.create_namespaced_persistent_volume_claim, ns, pvc(i))
                    await call(core.create_namespaced_pod, ns, pod(i))

            writes = ApiWrites(devcluster.binary_dir(), kubeconfig).start()
            cpu = CpuUsage({"benchmark client": os.getpid()}).start()
            t0 = time.monotonic()
            watcher = asyncio.create_task(
                wait_until_ready(
                    functools.partial(core.list_namespaced_pod, ns),
                    count,
                    pod_ready,
                    limit=900,
                    label_selector="bench=floor",
                )
            )
            await asyncio.gather(*(create(i) for i in range(count)))
            created = time.monotonic() - t0
            await watcher
            ready = time.monotonic() - t0
            cpu.stop()
            writes.stop()
        finally:
            await core.delete_namespace(ns)
            # Whatever runs next on this cluster must not share it with 1,000 deletions.
            await namespace_gone(core, ns)
    return FloorResult(count, created, ready, cpu, writes)


async def namespace_gone(core: k8s.CoreV1Api, ns: str, limit: float = 900) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            await call(core.read_namespace, ns)
        except ApiError as err:
            if err.status == 404:
                return
            raise
        await asyncio.sleep(2)
    raise TimeoutError(f"namespace {ns} still there after {limit:.0f} s")


async def main(args: argparse.Namespace) -> int:
    result = await run_floor(start_cluster(), args.count, args.in_flight)
    print("\n".join(result.lines()))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=32)
    sys.exit(asyncio.run(main(parser.parse_args())))
