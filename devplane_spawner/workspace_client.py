"""The spawner's only door to Kubernetes: Workspaces, their hub Secret, and their Events.

Kept apart from the Spawner so the calls (and their error handling) are in one small place and
the spawner reads as the start/stop logic. One ApiClient is shared by every spawner in the hub
process: 100 users starting at once must not open 100 connection pools.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio import watch
from kubernetes_asyncio.client.exceptions import ApiException

from devplane_api.v1alpha1 import API_VERSION, GROUP, KIND, PLURAL, VERSION

from .workspace_watch import WorkspaceWatch

MERGE_PATCH = "application/merge-patch+json"
# A ResourceQuota that bounds Workspaces (the chart's does not, docs/install.md says why)
# refuses every create until the quota controller has counted them: right after an install,
# until its next full resync.
QUOTA_PENDING = "status unknown for quota"
QUOTA_RETRY_SECONDS = 2.0
QUOTA_RETRIES = 30
# How RBAC words a refusal (the authorizer's message), as opposed to a quota or a webhook.
_RBAC_REFUSAL = re.compile(r"\bcannot \w+ resource\b")

_clients: dict[tuple[str, int], k8s.ApiClient] = {}
_client_lock = asyncio.Lock()
# One Workspace watch per API client, namespace and event loop (tests run several loops).
_watches: dict[tuple[int, str, int], WorkspaceWatch] = {}


async def shared_api_client(kubeconfig: str = "", pool_size: int = 500) -> k8s.ApiClient:
    """The process-wide ApiClient: from ``kubeconfig`` (or $KUBECONFIG), else in-cluster."""
    path = kubeconfig or os.environ.get("KUBECONFIG", "")
    key = (path, pool_size)
    async with _client_lock:
        if key not in _clients:
            configuration = k8s.Configuration()
            if path:
                await k8s_config.load_kube_config(
                    config_file=path, client_configuration=configuration
                )
            else:
                k8s_config.load_incluster_config(client_configuration=configuration)
            # Each progress page holds a watch of Events open.
            configuration.connection_pool_maxsize = pool_size
            _clients[key] = k8s.ApiClient(configuration)
        return _clients[key]


def belongs_to(ws: Mapping[str, Any], owner: str, server_name: str) -> bool:
    """Whether ``ws`` is the Workspace of this user's server (its immutable spec says whose).

    A name alone does not say it: an admin may have made the object, or (before the name hash
    was widened) another user's name may have hashed to the same one.
    """
    spec = ws.get("spec") or {}
    return spec.get("owner") == owner and (spec.get("serverName") or "") == server_name


def owner_reference(ws: Mapping[str, Any]) -> dict[str, Any]:
    """An ownerReference to ``ws``, so Kubernetes garbage-collects the child with it."""
    meta = ws["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": False,
        "blockOwnerDeletion": False,
    }


def explain(err: ApiException, namespace: str) -> tuple[str, str] | None:
    """(what the user is told, what the hub logs for an admin) for an API error a start cannot
    get past whatever it does, or None for one it should not name (docs/troubleshooting.md)."""
    try:
        body = json.loads(err.body or "{}")
    except (TypeError, ValueError):
        body = {}
    said = str(body.get("message") or err.reason or "")
    if err.status == 404 and (body.get("details") or {}).get("kind") == "namespaces":
        return (
            f"Your workspace cannot start: the namespace {namespace} does not exist. Tell an "
            "administrator.",
            f"namespace {namespace} does not exist: create it (or set the chart's "
            "workspaces.namespace) and check the hub's DEVPLANE_NAMESPACE",
        )
    if err.status == 404 and not (body.get("details") or {}).get("name"):
        # No object named: the resource type itself is unknown (a deleted Workspace is not).
        return (
            "Your workspace cannot start: this cluster has no Workspace resource type. Tell an "
            "administrator.",
            f"the API server does not serve {PLURAL}.{GROUP}/{VERSION}: the CRD "
            f"{PLURAL}.{GROUP} is not installed, or is older than this hub "
            f"(kubectl get crd {PLURAL}.{GROUP}; install chart/crds/)",
        )
    if err.status == 401 or (err.status == 403 and _RBAC_REFUSAL.search(said)):
        return (
            f"Your workspace cannot start: the hub is not allowed to manage workspaces in "
            f"namespace {namespace}. Tell an administrator.",
            f"the API server refused the hub ({err.status}): {said}. Check the hub's "
            f"RoleBinding in namespace {namespace} (the chart's devplane-hub Role: create, get, "
            "patch, delete Workspaces and Secrets) and its service account",
        )
    if err.status == 403 and QUOTA_PENDING not in said:
        # Refused by something else than RBAC: a quota, an admission webhook, a policy engine.
        return (
            f"Your workspace cannot start: the cluster refused it: {said}. Tell an administrator.",
            f"the API server refused the hub's request (403): {said}. Not an RBAC refusal: a "
            "quota, an admission webhook or a policy engine said no",
        )
    return None


class WorkspaceClient:
    """Workspace operations in one namespace."""

    def __init__(self, api: k8s.ApiClient, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.custom = k8s.CustomObjectsApi(api)
        self.core = k8s.CoreV1Api(api)

    # ------------------------------------------------------------ Workspaces

    @property
    def watch(self) -> WorkspaceWatch:
        """The hub process's one watch of this namespace's Workspaces (workspace_watch.py)."""
        key = (id(self.api), self.namespace, id(asyncio.get_running_loop()))
        found = _watches.get(key)
        if found is None or not found.running:
            found = _watches[key] = WorkspaceWatch(self.custom, self.get, self.namespace)
        return found

    async def current(self, name: str) -> dict[str, Any] | None:
        """The Workspace ``name`` as the shared watch last saw it (no API call when in sync).
        Read it; do not change it."""
        return await self.watch.current(name)

    async def get(self, name: str) -> dict[str, Any] | None:
        """The Workspace ``name`` read from the API server (before a write that must act on
        its latest state)."""
        try:
            return await self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create the Workspace; while a new quota has not counted Workspaces yet (the API
        server refuses with "status unknown for quota"), try again rather than fail the spawn."""
        for _ in range(QUOTA_RETRIES):
            try:
                return self._seen(
                    await self.custom.create_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, PLURAL, body
                    )
                )
            except ApiException as e:
                if e.status != 403 or QUOTA_PENDING not in str(e.body or ""):
                    raise
            await asyncio.sleep(QUOTA_RETRY_SECONDS)
        return self._seen(
            await self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, body
            )
        )

    def _seen(self, ws: dict[str, Any]) -> dict[str, Any]:
        """``ws``, a write's response, handed to the shared watch first: what this process
        reads next is never older than what it wrote."""
        self.watch.offer(ws)
        return ws

    async def patch_spec(self, name: str, spec: dict[str, Any], uid: str) -> dict[str, Any]:
        """JSON merge-patch of ``spec`` (keys set to None are removed), only if the Workspace
        is still the object ``uid`` (one re-created under the name meanwhile is refused: the
        API server rejects a changed metadata.uid as immutable, 422)."""
        body = {"metadata": {"uid": uid}, "spec": spec}
        # Without _content_type the client sends a JSON patch, which wants a list. The method
        # reads it from its **kwargs; the client's stubs leave it out.
        patched = await self.custom.patch_namespaced_custom_object(  # type: ignore[call-arg]
            GROUP, VERSION, self.namespace, PLURAL, name, body, _content_type=MERGE_PATCH,
        )  # fmt: skip
        return self._seen(patched)

    async def delete(self, name: str, uid: str) -> bool:
        """Delete the Workspace if it is still the object ``uid``; False when it was gone."""
        try:
            await self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name,
                propagation_policy="Background",
                body=k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(uid=uid)),
            )  # fmt: skip
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True

    async def wait_for(
        self,
        name: str,
        done: Callable[[dict[str, Any] | None], bool],
        on_change: Callable[[dict[str, Any] | None], None] | None = None,
    ) -> dict[str, Any] | None:
        """Until ``done(ws)`` is true for the Workspace ``name``; returns that state.

        ``done`` and ``on_change`` see ``None`` while the object is absent. Served by the
        shared watch; the caller bounds the total wait (the hub cancels start() after
        start_timeout).
        """
        return await self.watch.wait_for(name, done, on_change)

    # ------------------------------------------------------------ Events

    async def watch_events(self, name: str) -> AsyncIterator[dict[str, Any]]:
        """Kubernetes Events about the Workspace: the ones already there, then new ones."""
        selector = f"involvedObject.kind={KIND},involvedObject.name={name}"
        listing = await self.core.list_namespaced_event(self.namespace, field_selector=selector)
        for item in listing.items:
            yield self.api.sanitize_for_serialization(item)
        async with watch.Watch() as w:
            stream = w.stream(
                self.core.list_namespaced_event, self.namespace,
                field_selector=selector,
                resource_version=listing.metadata.resource_version,
                timeout_seconds=300,
            )  # fmt: skip
            async for event in stream:
                if event["type"] in ("ADDED", "MODIFIED"):
                    yield self.api.sanitize_for_serialization(event["object"])

    # ------------------------------------------------------------ hub Secret

    async def write_secret(
        self,
        name: str,
        data: Mapping[str, str],
        labels: Mapping[str, str],
        owner: Mapping[str, Any] | None,
    ) -> None:
        """Create or replace the hub-credentials Secret (string data, never logged)."""
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "labels": dict(labels),
                "ownerReferences": [owner_reference(owner)] if owner else [],
            },
            "type": "Opaque",
            "stringData": dict(data),
        }
        # The client serializes a dict body as it is, and this class speaks plain dicts
        # throughout; the client's stubs name only its V1Secret model.
        try:
            await self.core.create_namespaced_secret(self.namespace, body)  # type: ignore[arg-type]
        except ApiException as e:
            if e.status != 409:
                raise
            # Replace, not merge: a key dropped from the env must disappear from the Secret.
            body["data"] = None
            await self.core.replace_namespaced_secret(name, self.namespace, body)  # type: ignore[arg-type]
