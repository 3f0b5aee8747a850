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
import subprocess
import sys
import time
import uuid
from pathlib import Path

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

ROOT = Path(__file__).resolve().parent.parent


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


async def ready_count(core: k8s.CoreV1Api, ns: str) -> int:
    pods = await core.list_namespaced_pod(ns, label_selector="bench=floor")
    return sum(
        1
        for p in pods.items
        if p.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    )


def start_cluster() -> str:
    return subprocess.run(
        [sys.executable, str(ROOT / "hack" / "devcluster.py"), "up"],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip


async def main(args: argparse.Namespace, kubeconfig: str) -> int:
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
            gate = asyncio.Semaphore(args.in_flight)

            async def create(i: int) -> None:
                async with gate:
                    await core.create_namespaced_persistent_volume_claim(ns, pvc(i))
                    await core.create_namespaced_pod(ns, pod(i))

            t0 = time.monotonic()
            await asyncio.gather(*(create(i) for i in range(args.count)))
            created = time.monotonic() - t0
            while (n := await ready_count(core, ns)) < args.count:
                if time.monotonic() - t0 > 900:
                    print(f"gave up after 900 s with {n} of {args.count} Ready")
                    return 1
                await asyncio.sleep(1)
            ready = time.monotonic() - t0
        finally:
            await core.delete_namespace(ns)
    print(f"{args.count} PVC+pod pairs created directly in {created:.1f} s")
    print(f"all {args.count} pods Running and Ready after {ready:.1f} s (the cluster's floor)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=32)
    sys.exit(asyncio.run(main(parser.parse_args(), start_cluster())))
