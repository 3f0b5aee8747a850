"""Follow workspace Pods on the API server and keep local processes in step with them.

Reconciliation is keyed by pod UID, not name: a pod deleted and re-created under the same name
(the operator replacing it after a spec change) is a different pod, so its processes restart.
A watch is the fast path; a full re-list every RESYNC seconds is the safety net for missed
events, so the runner converges even across API server restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio import watch as k8s_watch

from devplane_api.v1alpha1 import MANAGED_BY_SELECTOR

from .podspec import (
    PodSpecError,
    References,
    Toolchain,
    decode_secret,
    is_runnable,
    plan_pod,
    referenced_names,
)
from .supervisor import RunningPod, write_state

log = logging.getLogger("localrunner")

RESYNC = 30.0
TEND_INTERVAL = 0.5


class Runner:
    def __init__(
        self,
        api: k8s.ApiClient,
        namespaces: list[str],
        tools: Toolchain,
        state_dir: Path,
        volume_root: Path,
    ) -> None:
        self.core = k8s.CoreV1Api(api)
        self.namespaces = namespaces
        self.tools = tools
        self.state_dir = state_dir
        self.volume_root = volume_root
        self.running: dict[str, RunningPod] = {}
        self.failed: dict[str, str] = {}  # uid -> last reason, to log each problem once
        self.pods: dict[str, dict[str, dict[str, Any]]] = {ns: {} for ns in namespaces}
        self._dirty = asyncio.Event()

    # ------------------------------------------------------------- reading the cluster

    async def _claim_dir(self, namespace: str, claim: str) -> Path | None:
        pvc = await self.core.read_namespaced_persistent_volume_claim(claim, namespace)
        volume_name = pvc.spec.volume_name
        if not volume_name:
            return None
        pv = await self.core.read_persistent_volume(volume_name)
        # kwok provisions hostPath volumes under .devcluster/volumes: the same directory
        # backs the claim for as long as the PV exists, across pod restarts and stop/start.
        if pv.spec.host_path is not None:
            return Path(pv.spec.host_path.path)
        return self.volume_root / volume_name

    async def _references(self, pod: dict[str, Any]) -> References:
        namespace = pod["metadata"]["namespace"]
        secret_names, configmap_names, claims = referenced_names(pod)
        secrets, configmaps, claim_dirs = {}, {}, {}
        for name in secret_names:
            with contextlib.suppress(k8s.ApiException):
                secret = await self.core.read_namespaced_secret(name, namespace)
                secrets[name] = decode_secret({"data": secret.data or {}})
        for name in configmap_names:
            with contextlib.suppress(k8s.ApiException):
                cm = await self.core.read_namespaced_config_map(name, namespace)
                configmaps[name] = dict(cm.data or {})
        for claim in claims:
            with contextlib.suppress(k8s.ApiException):
                local = await self._claim_dir(namespace, claim)
                if local is not None:
                    claim_dirs[claim] = local
        return References(secrets=secrets, configmaps=configmaps, claim_dirs=claim_dirs)

    # ------------------------------------------------------------- reconciling

    async def _start(self, uid: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        refs = await self._references(pod)
        # Short on purpose: ttyd's unix socket lives below it (107-byte limit).
        scratch = Path(tempfile.mkdtemp(prefix="dplr-"))
        try:
            plan = plan_pod(pod, refs, self.tools, scratch)
        except PodSpecError as err:
            shutil.rmtree(scratch, ignore_errors=True)
            if self.failed.get(uid) != str(err):
                log.warning("cannot run pod %s/%s yet: %s", meta["namespace"], meta["name"], err)
            self.failed[uid] = str(err)
            return
        self.failed.pop(uid, None)
        log_dir = self.state_dir / "logs" / meta["namespace"] / f"{meta['name']}-{uid[:8]}"
        running = RunningPod(plan, log_dir)
        running.start()
        self.running[uid] = running

    async def reconcile(self) -> None:
        desired = {
            pod["metadata"]["uid"]: pod
            for pods in self.pods.values()
            for pod in pods.values()
            if is_runnable(pod)
        }
        for uid in [u for u in self.running if u not in desired]:
            running = self.running.pop(uid)
            await asyncio.to_thread(running.stop)
        for uid, pod in desired.items():
            if uid not in self.running:
                await self._start(uid, pod)
        self.failed = {u: r for u, r in self.failed.items() if u in desired}
        write_state(self.state_dir / "pods.json", self.running)

    # ------------------------------------------------------------- loops

    async def _follow(self, namespace: str) -> None:
        while True:
            try:
                listing = await self.core.list_namespaced_pod(
                    namespace, label_selector=MANAGED_BY_SELECTOR
                )
                api = self.core.api_client
                self.pods[namespace] = {
                    p.metadata.uid: api.sanitize_for_serialization(p) for p in listing.items
                }
                self._dirty.set()
                watch = k8s_watch.Watch()
                async with watch.stream(
                    self.core.list_namespaced_pod,
                    namespace,
                    label_selector=MANAGED_BY_SELECTOR,
                    resource_version=listing.metadata.resource_version,
                    timeout_seconds=int(RESYNC),
                ) as stream:
                    async for event in stream:
                        pod = api.sanitize_for_serialization(event["object"])
                        uid = pod["metadata"]["uid"]
                        if event["type"] == "DELETED":
                            self.pods[namespace].pop(uid, None)
                        else:
                            self.pods[namespace][uid] = pod
                        self._dirty.set()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the API server restarting must not kill the runner
                log.warning("watching pods in %s failed (%s); retrying", namespace, err)
                await asyncio.sleep(1.0)

    async def run(self) -> None:
        followers = [asyncio.create_task(self._follow(ns)) for ns in self.namespaces]
        last_retry = 0.0
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._dirty.wait(), TEND_INTERVAL)
                # Pods that could not start yet (PVC unbound, Secret missing) are retried.
                if self._dirty.is_set() or (self.failed and time.monotonic() - last_retry > 1):
                    self._dirty.clear()
                    last_retry = time.monotonic()
                    await self.reconcile()
                for running in self.running.values():
                    running.tend()
        finally:
            for task in followers:
                task.cancel()
            await self.stop_all()

    async def stop_all(self) -> None:
        pods = list(self.running.values())
        self.running.clear()
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in pods))
        write_state(self.state_dir / "pods.json", self.running)


async def make_api(kubeconfig: Path) -> k8s.ApiClient:
    configuration = k8s.Configuration()
    await k8s_config.load_kube_config(
        config_file=str(kubeconfig), client_configuration=configuration
    )
    return k8s.ApiClient(configuration)
