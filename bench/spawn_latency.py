#!/usr/bin/env python3
"""Spawn latency: DevPlane (spawner -> Workspace -> operator -> pod) vs stock KubeSpawner
(spawner -> pod), on the same local control plane, in one run.

    .venv/bin/python bench/spawn_latency.py [--spawns 30] [--concurrent 100]
    .venv/bin/python bench/spawn_latency.py --real-node [--spawns 15] [--concurrent 10]

Measures the time from the REST start request (POST /hub/api/users/<u>/server) to the server
being ready (the hub has checked it answers and added its route), for ``--spawns`` sequential
starts of each spawner, alternating DevPlane and KubeSpawner so machine noise hits both alike;
then ``--concurrent`` DevPlane users started at once. Prints p50/p95 per spawner and exits
non-zero if a target is missed (issue 14, bench/figures.py): DevPlane's p50 and p95 <= 1.0 x
KubeSpawner's, DevPlane's p50 <= 1.3 x the raw API floor (a PVC and a pod created straight
through the API and watched to Ready, one at a time, in a namespace of their own); every
concurrent spawn ready, none failed.

``--routing``: how the hubs reach the servers.
- ``pod-ip`` (the default on kwok): at their pod IPs (DevPlane's ``hub_connect_via = "pod-ip"``,
  KubeSpawner's default). The hubs run on this machine.
- ``service`` (the chart's default; the default with ``--real-node``, and only there): through
  each server's Service, by its cluster DNS name, as an in-cluster hub does (KubeSpawner with
  ``services_enabled``, so both pay for the Service). The hubs and their proxies then run in
  the real node's network namespace with the cluster's DNS (realnode.cluster_network), where
  CoreDNS resolves the names and kube-proxy routes the ClusterIPs. On kwok it cannot work:
  kwok's pods are addresses on this machine's loopback, which kube-proxy's rules in the node
  cannot reach.

Both hubs run hub_config/jupyterhub_config.py; the baseline's only difference is a
DEVPLANE_HUB_EXTRA_CONFIG that switches to KubeSpawner in its own namespace, with a per-user
PVC (Zero to JupyterHub's default), since every DevPlane workspace has a home volume. Pods are
kwok pods; a responder at each pod IP answers the hub's readiness check
(hack/devplane_dev/responders.py explains why), for both spawners the same way.

``--real-node``: the pods really run, on the cluster's real node, from DevPlane's images. Both
spawners start the same pod: KubeSpawner gets DevPlane's two containers (the auth proxy from
the hub image as its server, the workspace container beside it), as the operator's own pure
builders make them, through its stock options (``cmd``, ``environment``, ``extra_containers``,
``volumes``, security contexts). Each server is stopped, and its pod gone, before the next
start, so every start has the node to itself. The hubs are not pods, so a NetworkPolicy the
benchmark adds lets their address (this machine's link address, or the node's own with
``service`` routing) reach DevPlane's proxy port, which the operator's policies open only to
the hub's and proxy's pods (additive: nothing else is opened). KubeSpawner's pods get a policy
modelled on Zero to JupyterHub's default, so the node's NetworkPolicy engine works for both. The
raw API floor and the issue's 100 concurrent spawns are measured on kwok (the node has 2 CPUs
and a small volume pool); ``--real-node`` records its own figures only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from cluster_floor import pod as floor_pod
from cluster_floor import pod_ready
from cluster_floor import pvc as floor_pvc
from devplane_dev import devcluster, realnode
from devplane_dev.hub import NO_LOGIN, Hub, connect_modes
from devplane_dev.images import app_version
from devplane_dev.kubectl import TEST_NAMESPACE, Kubectl
from devplane_dev.operator_process import OperatorProcess, install_crd
from devplane_dev.poll import wait_for
from devplane_dev.proxy import ConfigurableHttpProxy
from devplane_dev.realnode_config import LOCAL_STORAGE_CLASS, NODE_LABEL, NODE_TAINT
from devplane_dev.responders import PodResponders
from devplane_dev.workspaces import EXAMPLE_PROVIDERS_JSON, workspace_manifest
from devplane_operator.builders import build_configmap, build_pod
from devplane_operator.model import parse_workspace
from devplane_operator.settings import load_settings
from figures import record
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from rawkube import call, wait_until_ready

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
# Routed through a Service of its own, by DNS name, with --routing service (as DevPlane then).
c.KubeSpawner.services_enabled = {services!r}
"""


def real_node_images() -> tuple[str, str]:
    """DevPlane's workspace and hub images (``make images``), loaded into the node's containerd."""
    version = app_version()
    images = (f"localhost/devplane/workspace:{version}", f"localhost/devplane/hub:{version}")
    devcluster.run_cli("load-images", *images)
    return images


def operator_env(workspace_image: str, hub_image: str) -> dict[str, str]:
    """The operator's settings that put DevPlane's pods on the real node, from those images."""
    return {
        "DEVPLANE_WORKSPACE_IMAGE": workspace_image,
        "DEVPLANE_AUTHPROXY_IMAGE": hub_image,
        "DEVPLANE_ALLOWED_IMAGE_REGISTRIES": workspace_image.rsplit("/", 1)[0],
        "DEVPLANE_IMAGE_PULL_POLICY": "Never",
        "DEVPLANE_WORKSPACE_NODE_SELECTOR": "=".join(NODE_LABEL),
        "DEVPLANE_WORKSPACE_TOLERATIONS": json.dumps([{**NODE_TAINT, "operator": "Equal"}]),
        "DEVPLANE_STORAGE_CLASS": LOCAL_STORAGE_CLASS,
        # Small CPU requests, the same for both spawners' pods: the node has 2 CPUs, and the
        # default request (250m + the proxy's 20m) would let only 7 workspaces be scheduled,
        # which measures the node's size, not a spawner.
        "DEVPLANE_WORKSPACE_RESOURCES": json.dumps(
            {"requests": {"cpu": "50m", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
        ),
    }


def kubespawner_real_node_config(kubectl: Kubectl, namespace: str, env: dict[str, str]) -> str:
    """KubeSpawner options that make DevPlane's workspace pod (operator settings ``env``), built
    by the operator's own builders, with KubeSpawner's PVC as the home and its environment
    (JUPYTERHUB_*) in the auth proxy, which serves the hub as its single-user server. The
    opencode and gateway configuration is one ConfigMap all its users share, made here."""
    # The operator's own default provider (devplane_dev.operator_process), as for DevPlane's pods.
    defaults = {"DEVPLANE_NAMESPACES": namespace, "DEVPLANE_LLM_PROVIDERS": EXAMPLE_PROVIDERS_JSON}
    settings = load_settings([], {**defaults, **env})
    body = workspace_manifest("someone", metadata={"namespace": namespace, "uid": "0"})
    ws = parse_workspace(body, settings)
    configmap = build_configmap(ws, settings)
    configmap["metadata"] = {"name": "bench-workspace-config", "namespace": namespace}
    kubectl("apply", "-f", "-", stdin=json.dumps(configmap))
    spec = build_pod(ws, settings)["spec"]
    workspace, proxy = (next(c for c in spec["containers"] if c["name"] == n)
                        for n in ("workspace", "authproxy"))  # fmt: skip
    volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
    for volume in spec["volumes"]:
        if "configMap" in volume:
            volume["configMap"]["name"] = "bench-workspace-config"
        if volume["name"] != "home":
            volumes.append(volume)
    options = {
        "image": proxy["image"],
        "image_pull_policy": proxy["imagePullPolicy"],
        "cmd": proxy["command"],
        "environment": {e["name"]: e["value"] for e in proxy["env"]},
        "volumes": volumes,
        "volume_mounts": proxy["volumeMounts"],
        "extra_containers": [workspace],
        "extra_container_config": {
            "securityContext": proxy["securityContext"],
            "resources": proxy["resources"],
        },
        "extra_pod_config": {
            "securityContext": spec["securityContext"],
            "enableServiceLinks": spec["enableServiceLinks"],
        },
        "automount_service_account_token": spec["automountServiceAccountToken"],
        "node_selector": spec["nodeSelector"],
        "tolerations": spec["tolerations"],
        "storage_class": LOCAL_STORAGE_CLASS,
        "storage_capacity": "1Gi",
    }
    config = "\n".join(f"c.KubeSpawner.{key} = {value!r}" for key, value in options.items())
    return config + SAME_PROBE.format(probe=proxy["readinessProbe"], port=PROXY_PORT)


# The issue asks for the same readiness conditions for both spawners: DevPlane's probe of its
# auth proxy (it matters on the real node: a pod ready only after a probe changes its
# EndpointSlice twice, and kube-proxy applies the second change at most once a second after
# the first). Its path is each user's prefix, so it is set per pod, by the hook KubeSpawner
# offers for that.
SAME_PROBE = """
_probe = {probe!r}
def _with_devplanes_probe(spawner, pod):
    get = dict(_probe["httpGet"], path=spawner.user.url + "api", port={port})
    pod.spec.containers[0].readiness_probe = dict(_probe, httpGet=get)
    return pod
c.KubeSpawner.modify_pod_hook = _with_devplanes_probe
"""


def isolate_like_zero_to_jupyterhub(kubectl: Kubectl, namespace: str, hubs: str) -> None:
    """KubeSpawner's pods get a policy modelled on Zero to JupyterHub's default
    ``singleuser.networkPolicy``: in from the hubs only, on the server's port; out to DNS only
    (Zero to JupyterHub also lets them out to the internet, which nothing here has).
    DevPlane's pods have the operator's policies; without one here the real node's
    NetworkPolicy engine would have work for one spawner and not the other (a new pod is
    reachable through a policy only once the engine has programmed it)."""
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "bench-singleuser", "namespace": namespace},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [hubs_to_proxies(hubs)],
            "egress": [
                {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
            ],
        },
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(policy))


def allow_hubs_to_proxies(kubectl: Kubectl, namespace: str, hubs: str) -> None:
    """The hubs' address ``hubs`` may reach the proxy port of ``namespace``'s pods: the hubs
    are not pods (see the module docstring)."""
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "bench-hub-on-the-host", "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [hubs_to_proxies(hubs)]},
    }
    kubectl("apply", "-f", "-", stdin=json.dumps(policy))


def hubs_to_proxies(hubs: str) -> dict:
    """An ingress rule: from the address ``hubs`` to the servers' port."""
    return {
        "from": [{"ipBlock": {"cidr": f"{hubs}/32"}}],
        "ports": [{"protocol": "TCP", "port": PROXY_PORT}],
    }


def stop_and_wait(hub: Hub, kubectl: Kubectl, users: list[str], namespace: str) -> None:
    """Stop these users' servers and wait until every pod of ``namespace`` is gone, so the
    next start has the node to itself."""

    def stopped(user: str) -> bool:
        return hub.api("GET", f"/users/{user}").json().get("servers") == {}

    for user in users:
        response = hub.api("DELETE", f"/users/{user}/server")
        # 400: no server to stop (a start that failed).
        if not (response.status_code == 400 and stopped(user)):
            assert response.status_code in (202, 204), (
                f"{user}: {response.status_code} {response.text}"
            )
    for user in users:
        wait_for(f"{user}'s server to stop", lambda user=user: stopped(user), 120)

    def pods_gone() -> bool:
        return not kubectl("get", "pods", "-n", namespace, "-o", "name").strip()

    wait_for(f"the pods of {namespace} to be gone", pods_gone, 120)


def delete_namespace(kubectl: Kubectl, namespace: str) -> None:
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)


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
    parser.add_argument("--real-node", action="store_true",
                        help="run the pods on the real node, from DevPlane's images")  # fmt: skip
    parser.add_argument("--spawns", type=int, default=None, help="default: 30 (real node: 15)")
    parser.add_argument("--concurrent", type=int, default=None,
                        help="default: 100 (real node: 10)")  # fmt: skip
    parser.add_argument("--routing", choices=connect_modes(), default=None,
                        help="how the hubs reach the servers (module docstring); default: "
                        "service with --real-node, else pod-ip")  # fmt: skip
    args = parser.parse_args()
    spawns = args.spawns if args.spawns is not None else (15 if args.real_node else 30)
    concurrent = args.concurrent if args.concurrent is not None else (10 if args.real_node else 100)
    routing = args.routing or ("service" if args.real_node else "pod-ip")
    if routing == "service" and not args.real_node:
        parser.error("--routing service needs --real-node: kwok's pods are addresses on this "
                     "machine's loopback, which the node's Service rules cannot reach")  # fmt: skip
    # SIGTERM (timeout, Ctrl-C in make) must still run the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    kc = devcluster.run_cli("up")
    bin_dir = devcluster.binary_dir()
    kubectl = Kubectl(bin_dir, kc)
    install_crd(kubectl.argv)
    work = Path(tempfile.mkdtemp(prefix="devplane-bench-"))
    with contextlib.ExitStack() as stack:
        ns_dev = make_namespace(kubectl, "bench-dev")
        stack.callback(delete_namespace, kubectl, ns_dev)
        ns_ks = make_namespace(kubectl, "bench-ks")
        stack.callback(delete_namespace, kubectl, ns_ks)
        env = {"KUBECONFIG": str(kc), **HUB_ENV}
        op_env: dict[str, str] = {}
        config = KUBESPAWNER_CONFIG.format(
            namespace=ns_ks, port=PROXY_PORT, services=routing == "service"
        )
        env["DEVPLANE_HUB_CONNECT_VIA"] = routing
        launcher: list[str] = []
        listen = "127.0.0.1"
        if args.real_node:
            if not realnode.up_started():
                print("--real-node: the local cluster has no real node (DEVCLUSTER_REAL_NODE=0?)",
                      file=sys.stderr)  # fmt: skip
                return 2
            workspace_image, hub_image = real_node_images()
            op_env = operator_env(workspace_image, hub_image)
            env["DEVPLANE_WORKSPACE_IMAGE"] = workspace_image
            config += kubespawner_real_node_config(kubectl, ns_ks, op_env)
            # Every start below takes a home volume of the node's pool.
            realnode.ensure_local_volumes(realnode.layout(), bin_dir, 2 * (spawns + concurrent + 1))
            lay = realnode.layout()
            if routing == "service":
                launcher = stack.enter_context(realnode.cluster_network(work))
                listen = lay.node_link_ip  # the proxies' address, as seen from this machine
            hubs_address = lay.node_ip if routing == "service" else lay.host_link_ip
            allow_hubs_to_proxies(kubectl, ns_dev, hubs_address)
            isolate_like_zero_to_jupyterhub(kubectl, ns_ks, hubs_address)
        extra = work / "kubespawner_config.py"
        extra.write_text(config)
        operator = OperatorProcess(kc, [ns_dev], env=op_env or None,
                                   log_path=work / "operator.log").start()  # fmt: skip
        stack.callback(operator.stop)
        operator.wait_ready()
        responders = []
        if not args.real_node:
            responders = [PodResponders(str(kc), ns) for ns in (ns_dev, ns_ks)]
            for responder in responders:
                stack.callback(responder.stop)
        hubs: dict[str, Hub] = {}
        namespaces = {"devplane": ns_dev, "kubespawner": ns_ks}
        for name, more in (
            ("devplane", {}),
            ("kubespawner", {"DEVPLANE_HUB_EXTRA_CONFIG": str(extra)}),
        ):
            (work / name).mkdir()
            proxy = ConfigurableHttpProxy(work / name, host=listen, launcher=launcher)
            stack.callback(proxy.stop)
            hub = Hub(work / name, proxy, None, namespaces[name], [], extra_env=env | more,
                      launcher=launcher)  # fmt: skip
            hub.start()
            stack.callback(hub.stop)
            hubs[name] = hub
        floor_ns = None
        if not args.real_node:
            floor_ns = make_namespace(kubectl, "bench-raw")
            stack.callback(delete_namespace, kubectl, floor_ns)
        report = measure(
            hubs, namespaces, kubectl, spawns, concurrent, args.real_node, routing, floor_ns
        )
        report["logs"] = str(work)
        report["responder_errors"] = [e for r in responders for e in r.errors][:10]
        ok = report.pop("_ok")
        print(json.dumps(report, indent=2))
        print("targets met" if ok else "TARGET MISSED", file=sys.stderr)
        return 0 if ok else 1


def measure(
    hubs: dict[str, Hub],
    namespaces: dict[str, str],
    kubectl: Kubectl,
    spawns: int,
    concurrent: int,
    real_node: bool,
    routing: str,
    floor_namespace: str | None,
) -> dict:
    """Sequential starts, alternating the hubs, then the raw API floor in ``floor_namespace``
    (when given), then ``concurrent`` starts of each hub at once."""
    # Warm-up: the first spawn of each hub pays for API clients and informers.
    for name, hub in hubs.items():
        spawn(hub, "warmup")
        if real_node:
            stop_and_wait(hub, kubectl, ["warmup"], namespaces[name])
    results: dict[str, list[float]] = {name: [] for name in hubs}
    seq_failures: dict[str, list[str]] = {name: [] for name in hubs}
    for i in range(spawns):
        for name, hub in hubs.items():
            user = f"seq{i:03d}"
            try:
                results[name].append(spawn(hub, user))
            except (RuntimeError, TimeoutError, AssertionError) as e:
                seq_failures[name].append(str(e))  # counted and reported, not hidden
            if real_node:
                stop_and_wait(hub, kubectl, [user], namespaces[name])
    rows = [
        summary(name, values) | {"failed": len(seq_failures[name])}
        for name, values in results.items()
    ]
    ratio = statistics.median(results["devplane"]) / statistics.median(results["kubespawner"])
    ratio95 = percentile(results["devplane"], 95) / percentile(results["kubespawner"], 95)
    report: dict = {
        "pods": "real node" if real_node else "kwok",
        "routing": routing,
        "sequential": rows,
        "devplane_p50_over_kubespawner_p50": round(ratio, 2),
        "devplane_p95_over_kubespawner_p95": round(ratio95, 2),
    }
    mode = f"{report['pods']} pods, {spawns} spawns each"
    ok = not any(seq_failures.values())
    ok &= record(f"spawn_p50_ratio_{routing}", ratio, mode)
    ok &= record(f"spawn_p95_ratio_{routing}", ratio95, mode)
    if floor_namespace is not None:
        floor_seconds = raw_api_floor(kubectl, floor_namespace, spawns)
        report["sequential"].append(summary("raw API floor", floor_seconds))
        floor_ratio = statistics.median(results["devplane"]) / statistics.median(floor_seconds)
        report["devplane_p50_over_raw_floor_p50"] = round(floor_ratio, 2)
        ok &= record("spawn_raw_floor_ratio", floor_ratio, f"{mode}, {routing}")
    # Concurrent starts of each hub, one hub after the other: the same stand-in responders
    # answer both on kwok, so the ratio compares the spawners.
    walls = {}
    for name, hub in hubs.items():
        row, failures = concurrent_starts(hub, name, concurrent)
        report.setdefault("concurrent", []).append(row)
        report.setdefault("failures", []).extend(failures[:10])
        walls[name] = row["wall_s"]
        ok = ok and not failures
        if not real_node:  # the figures: 100 users on kwok
            ok &= record(f"concurrent_{name}", row["ready"] / concurrent, f"{concurrent} users")
        if real_node:  # the next spawner's batch gets the node to itself
            users = [f"par{i:03d}" for i in range(concurrent)]
            stop_and_wait(hub, kubectl, users, namespaces[name])
    report["concurrent_wall_devplane_over_kubespawner"] = round(
        walls["devplane"] / walls["kubespawner"], 2
    )
    if not real_node:
        record("concurrent_wall_ratio", walls["devplane"] / walls["kubespawner"],
               f"{walls['devplane']:.2f} s / {walls['kubespawner']:.2f} s")  # fmt: skip
    report["_ok"] = ok
    return report


def raw_api_floor(kubectl: Kubectl, namespace: str, spawns: int) -> list[float]:
    """Seconds from creating a PVC and a pod straight through the API until the pod is Ready,
    ``spawns`` times one after the other: what any spawner needs at least on this cluster."""
    return asyncio.run(_raw_api_floor(kubectl.kubeconfig, namespace, spawns))


async def _raw_api_floor(kubeconfig: str, namespace: str, spawns: int) -> list[float]:
    config = k8s.Configuration()
    await k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=config)
    seconds = []
    async with k8s.ApiClient(config) as api:
        core = k8s.CoreV1Api(api)
        for i in range(spawns):
            pod = floor_pod(i)
            begun = time.perf_counter()
            await call(core.create_namespaced_persistent_volume_claim, namespace, floor_pvc(i))
            await call(core.create_namespaced_pod, namespace, pod)
            await wait_until_ready(
                functools.partial(core.list_namespaced_pod, namespace), 1, pod_ready, limit=120,
                field_selector=f"metadata.name={pod['metadata']['name']}",
            )  # fmt: skip
            seconds.append(time.perf_counter() - begun)
    return seconds


def concurrent_starts(hub: Hub, name: str, users: int) -> tuple[dict, list[str]]:
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
                failures.append(f"{name} {user}: {e}")

    for i in range(users):  # users first, so only the starts are concurrent
        hub.api("POST", f"/users/par{i:03d}")
    threads = [threading.Thread(target=one, args=(f"par{i:03d}",)) for i in range(users)]
    begun = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - begun
    row = {
        "spawner": name,
        "users": users,
        "ready": len(latencies),
        "failed": len(failures),
        "wall_s": round(wall, 2),
        **({k: v for k, v in summary(name, latencies).items() if k != "spawner"}
           if latencies else {}),
    }  # fmt: skip
    return row, failures


if __name__ == "__main__":
    sys.exit(main())
