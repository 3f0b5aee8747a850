#!/usr/bin/env python3
"""Spawn latency: DevPlane (spawner -> Workspace -> operator -> pod) vs stock KubeSpawner
(spawner -> pod), on the same local control plane, in one run.

    .venv/bin/python bench/spawn_latency.py [--spawns 30] [--concurrent 100]

Measures the time from the REST start request (POST /hub/api/users/<u>/server) to the server
being ready (the hub has checked it answers and added its route), for ``--spawns`` sequential
starts of each spawner, alternating DevPlane and KubeSpawner so machine noise hits both alike;
then ``--concurrent`` DevPlane users started at once. Prints p50/p95 per spawner and exits
non-zero if a target is missed: DevPlane p50 <= 1.2 x KubeSpawner p50; every concurrent spawn
ready, none failed.

Both hubs run hub_config/jupyterhub_config.py; the baseline's only difference is a
DEVPLANE_HUB_EXTRA_CONFIG that switches to KubeSpawner in its own namespace, with a per-user
PVC (Zero to JupyterHub's default), since every DevPlane workspace has a home volume. Pods are
kwok pods; a responder at each pod IP answers the hub's readiness check
(hack/devplane_dev/responders.py explains why), for both spawners the same way.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from devplane_dev import devcluster
from devplane_dev.hub import NO_LOGIN, Hub
from devplane_dev.kubectl import TEST_NAMESPACE, Kubectl
from devplane_dev.operator_process import OperatorProcess, install_crd
from devplane_dev.poll import wait_for
from devplane_dev.proxy import ConfigurableHttpProxy
from devplane_dev.responders import PodResponders

from devplane_api.v1alpha1 import PROXY_PORT

# The hubs are driven by API token only; nobody is idle for long enough to matter.
HUB_ENV = {**NO_LOGIN, "DEVPLANE_CULL_ENABLED": "false"}

KUBESPAWNER_CONFIG = """
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.namespace = {namespace!r}
c.KubeSpawner.image = "devplane/workspace:0.1.0"
c.KubeSpawner.port = {port}
# Per-user home volume, as Zero to JupyterHub's default "dynamic" storage sets it up, so both
# spawners pay for a volume: DevPlane's operator always gives a workspace one.
c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.storage_capacity = "10Gi"
c.KubeSpawner.volumes = [
    {{"name": "home", "persistentVolumeClaim": {{"claimName": "{{pvc_name}}"}}}}
]
c.KubeSpawner.volume_mounts = [{{"name": "home", "mountPath": "/home/jovyan"}}]
c.KubeSpawner.start_timeout = 120
c.KubeSpawner.http_timeout = 30
"""


def make_namespace(kubectl: Kubectl, prefix: str) -> str:
    return kubectl.create_namespace(f"{prefix}-{uuid.uuid4().hex[:6]}", TEST_NAMESPACE)


def spawn(hub: Hub, user: str, options: dict | None = None, timeout: float = 180) -> float:
    """Seconds from the start request to ready; raises if the spawn fails."""
    created = hub.api("POST", f"/users/{user}")
    assert created.status_code in (201, 409), created.text
    begun = time.perf_counter()
    response = hub.api("POST", f"/users/{user}/server", json={"user_options": options})
    if response.status_code == 201:  # ready within the hub's slow_spawn_timeout
        return time.perf_counter() - begun
    assert response.status_code == 202, f"{user}: {response.status_code} {response.text}"

    def ready() -> bool:
        server = hub.api("GET", f"/users/{user}").json().get("servers", {}).get("")
        if server is None:
            raise RuntimeError(f"{user}'s spawn failed (see the hub log)")
        return bool(server.get("ready"))

    wait_for(f"{user}'s server", ready, timeout, interval=0.05)
    return time.perf_counter() - begun


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def summary(name: str, values: list[float]) -> dict:
    return {
        "spawner": name,
        "n": len(values),
        "p50_s": round(statistics.median(values), 3),
        "p95_s": round(percentile(values, 95), 3),
        "min_s": round(min(values), 3),
        "max_s": round(max(values), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spawns", type=int, default=30)
    parser.add_argument("--concurrent", type=int, default=100)
    args = parser.parse_args()
    # SIGTERM (timeout, Ctrl-C in make) must still run the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    kc = devcluster.run_cli("up")
    kubectl = Kubectl(devcluster.binary_dir(), kc)
    install_crd(kubectl.argv)
    work = Path(tempfile.mkdtemp(prefix="devplane-bench-"))
    ns_dev = make_namespace(kubectl, "bench-dev")
    ns_ks = make_namespace(kubectl, "bench-ks")
    extra = work / "kubespawner_config.py"
    extra.write_text(KUBESPAWNER_CONFIG.format(namespace=ns_ks, port=PROXY_PORT))
    env = {"KUBECONFIG": str(kc), **HUB_ENV}
    stopper: list = []
    try:
        operator = OperatorProcess(kc, [ns_dev], log_path=work / "operator.log").start()
        stopper.append(operator.stop)
        operator.wait_ready()
        responders = [PodResponders(str(kc), ns) for ns in (ns_dev, ns_ks)]
        stopper.extend(r.stop for r in responders)
        hubs = {}
        for name, ns, more in (
            ("devplane", ns_dev, {}),
            ("kubespawner", ns_ks, {"DEVPLANE_HUB_EXTRA_CONFIG": str(extra)}),
        ):
            (work / name).mkdir()
            proxy = ConfigurableHttpProxy(work / name)
            stopper.append(proxy.stop)
            hub = Hub(work / name, proxy, None, ns, [], extra_env=env | more)
            hub.start()
            stopper.append(hub.stop)
            hubs[name] = hub

        # Warm-up: the first spawn of each hub pays for API clients and informers.
        for hub in hubs.values():
            spawn(hub, "warmup")

        results: dict[str, list[float]] = {name: [] for name in hubs}
        seq_failures: dict[str, list[str]] = {name: [] for name in hubs}
        for i in range(args.spawns):
            for name, hub in hubs.items():
                try:
                    results[name].append(spawn(hub, f"seq{i:03d}"))
                except (RuntimeError, TimeoutError, AssertionError) as e:
                    seq_failures[name].append(str(e))  # counted and reported, not hidden
        rows = [
            summary(name, values) | {"failed": len(seq_failures[name])}
            for name, values in results.items()
        ]

        ratio = rows[0]["p50_s"] / rows[1]["p50_s"]
        report: dict = {
            "sequential": rows,
            "devplane_p50_over_kubespawner_p50": round(ratio, 2),
            "logs": str(work),
        }
        seq_ok = ratio <= 1.2 and not any(seq_failures.values())
        if args.concurrent <= 0:
            print(json.dumps(report, indent=2))
            return 0 if seq_ok else 1

        # Concurrent DevPlane starts.
        hub = hubs["devplane"]
        latencies: list[float] = []
        failures: list[str] = []
        lock = threading.Lock()

        def one(user: str) -> None:
            try:
                seconds = spawn(hub, user, timeout=300)
                with lock:
                    latencies.append(seconds)
            except Exception as e:
                with lock:
                    failures.append(f"{user}: {e}")

        for i in range(args.concurrent):  # users first, so only the starts are concurrent
            hub.api("POST", f"/users/par{i:03d}")
        threads = [
            threading.Thread(target=one, args=(f"par{i:03d}",)) for i in range(args.concurrent)
        ]
        begun = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - begun

        report |= {
            "concurrent": {
                "users": args.concurrent,
                "ready": len(latencies),
                "failed": len(failures),
                "wall_s": round(wall, 2),
                **({k: v for k, v in summary("devplane", latencies).items() if k != "spawner"}
                   if latencies else {}),
            },
            "failures": failures[:10],
            "responder_errors": [e for r in responders for e in r.errors][:10],
        }  # fmt: skip
        print(json.dumps(report, indent=2))
        ok = seq_ok and not failures and len(latencies) == args.concurrent
        print("targets met" if ok else "TARGET MISSED", file=sys.stderr)
        return 0 if ok else 1
    finally:
        for stop in reversed(stopper):
            try:
                stop()
            except Exception as e:  # keep cleaning up
                print(f"clean-up: {e}", file=sys.stderr)
        for ns in (ns_dev, ns_ks):
            kubectl("delete", "namespace", ns, "--wait=false", check=False)


if __name__ == "__main__":
    sys.exit(main())
