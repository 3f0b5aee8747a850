"""The operator's one door to the API server for its own reads and writes.

Every write (create, patch, delete) goes through ``Kube`` and is counted in
``devplane_operator_api_writes_total{verb,resource}``: "writes nothing when nothing changed" is
a property we measure (tests and bench/operator_scale.py read the counter), not one we hope for.
Bodies stay plain dicts end to end: no model classes, which keeps memory and CPU low at 1,000
Workspaces. Watches are kopf's job (handlers.py); this module never lists or watches.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.client.exceptions import ApiException

from devplane_api.v1alpha1 import GROUP, PLURAL, VERSION

from .metrics import API_LATENCY, API_REQUESTS, API_WRITES

log = logging.getLogger(__name__)

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the REST API."""

    kind: str
    prefix: str  # /api/v1 or /apis/<group>/<version>
    plural: str

    def path(self, namespace: str, name: str = "", subresource: str = "") -> str:
        path = f"{self.prefix}/namespaces/{namespace}/{self.plural}"
        if name:
            path += f"/{name}"
        if subresource:
            path += f"/{subresource}"
        return path


RESOURCES: dict[str, Resource] = {
    r.kind: r
    for r in (
        Resource("Workspace", f"/apis/{GROUP}/{VERSION}", PLURAL),
        Resource("Pod", "/api/v1", "pods"),
        Resource("Service", "/api/v1", "services"),
        Resource("ConfigMap", "/api/v1", "configmaps"),
        Resource("PersistentVolumeClaim", "/api/v1", "persistentvolumeclaims"),
        Resource("Event", "/api/v1", "events"),
        Resource("Secret", "/api/v1", "secrets"),
        Resource("NetworkPolicy", "/apis/networking.k8s.io/v1", "networkpolicies"),
        Resource("Lease", "/apis/coordination.k8s.io/v1", "leases"),
    )
}
_OBJECT = {code: "object" for code in (200, 201, 202)}
JSON = "application/json"
# The object's metadata only: a Secret's data never reaches the operator.
METADATA_ONLY = f"{JSON};as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


class KubeError(Exception):
    """An API call failed. ``status`` is the HTTP status (0 when the server was unreachable)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status} {reason}: {message}")

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def permanent(self) -> bool:
        """4xx other than conflicts/throttling: retrying the same request cannot help."""
        return 400 <= self.status < 500 and self.status not in (404, 408, 409, 429)


def _error(err: ApiException) -> KubeError:
    try:
        body = json.loads(err.body or "{}")
    except (ValueError, TypeError):
        body = {}
    return KubeError(
        err.status or 0, body.get("reason") or str(err.reason), body.get("message") or str(err)
    )


def _resource_of(path: str) -> str:
    """The resource a request path names: /api/v1/namespaces/<ns>/pods/<name> -> pods."""
    parts = path.strip("/").split("/")
    if "namespaces" in parts:
        at = parts.index("namespaces") + 2
        return parts[at] if at < len(parts) else "namespaces"
    # /api/<version>/<resource>... or /apis/<group>/<version>/<resource>...
    at = 2 if parts[0] == "api" else 3
    return parts[at] if at < len(parts) else ""


def proxy_from_environment(url: str) -> str | None:
    """The proxy HTTPS_PROXY/HTTP_PROXY name for ``url``, unless NO_PROXY exempts its host."""
    proxies = urllib.request.getproxies_environment()
    parts = urlsplit(url)
    proxy = proxies.get(parts.scheme)
    # proxy_bypass_environment is the NO_PROXY check urllib itself uses on Linux; it is
    # undocumented, so typeshed leaves it out (proxy_bypass would also consult macOS's and
    # Windows' system settings).
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxy or bypass(parts.netloc, proxies):
        return None
    return proxy


async def load_configuration() -> k8s.Configuration:
    """In-cluster service account when inside a pod, else $KUBECONFIG / ~/.kube/config."""
    configuration = k8s.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)
    except k8s_config.ConfigException:
        await k8s_config.load_kube_config(client_configuration=configuration)
    return configuration


class Kube:
    """Thin, counted, dict-in/dict-out API calls."""

    def __init__(self, api: k8s.ApiClient) -> None:
        self.api = api

    @classmethod
    async def connect(cls) -> Kube:
        configuration = await load_configuration()
        configuration.connection_pool_maxsize = 32
        if configuration.proxy is None and configuration.host:
            configuration.proxy = proxy_from_environment(configuration.host)
        api = k8s.ApiClient(configuration)
        # kubernetes_asyncio opens its aiohttp session with trust_env=True, and aiohttp then
        # re-reads the proxy variables and ~/.netrc for every request, in a worker thread:
        # about a fifth of the operator's CPU with 1,000 Workspaces starting (py-spy,
        # bench/operator_scale.py). The proxy variables were read once, just above; a netrc
        # has no business authenticating to the API server.
        api.rest_client.pool_manager._trust_env = False
        return cls(api)

    async def close(self) -> None:
        await self.api.close()

    async def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = JSON,
        query: list[tuple[str, str]] | None = None,
        accept: str = JSON,
    ) -> dict[str, Any]:
        headers = {"Accept": accept, "Content-Type": content_type}
        resource = _resource_of(path)
        started = time.monotonic()
        code = 0
        try:
            # With the status too, for the request metrics: (data, status, headers).
            result, code, _ = await self.api.call_api(
                path,
                method,
                query_params=query or [],
                header_params=headers,
                body=body,
                response_types_map=_OBJECT,
                auth_settings=["BearerToken"],
                _return_http_data_only=False,
                _request_timeout=30,
            )
        except ApiException as err:
            code = err.status or 0
            raise _error(err) from None
        except OSError as err:  # connection refused/reset: the server is away for a moment
            raise KubeError(0, "Unreachable", str(err)) from None
        finally:
            API_REQUESTS.labels(verb=method, resource=resource, code=str(code)).inc()
            API_LATENCY.labels(verb=method, resource=resource).observe(time.monotonic() - started)
        return result or {}

    def _count(self, verb: str, kind: str) -> None:
        API_WRITES.labels(verb=verb, resource=RESOURCES[kind].plural).inc()

    # -------------------------------------------------------------- reads

    async def get(
        self, kind: str, namespace: str, name: str, metadata_only: bool = False
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist; ``metadata_only`` asks the server for
        its metadata alone (how Secrets are read: RBAC cannot grant less than `get`, so the
        operator asks for less)."""
        accept = METADATA_ONLY if metadata_only else JSON
        try:
            return await self._call("GET", RESOURCES[kind].path(namespace, name), accept=accept)
        except KubeError as err:
            if err.not_found:
                return None
            raise

    async def list(
        self, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[dict[str, Any]]:
        """Every object of ``kind`` (in ``namespace``, or everywhere when None), paginated."""
        resource = RESOURCES[kind]
        if namespace is None:
            path = f"{resource.prefix}/{resource.plural}"
        else:
            path = resource.path(namespace)
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            query = [("limit", "500")]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if token:
                query.append(("continue", token))
            page = await self._call("GET", path, query=query)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    # -------------------------------------------------------------- writes (all counted)

    async def create(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        self._count("create", kind)
        path = RESOURCES[kind].path(body["metadata"]["namespace"])
        return await self._call("POST", path, body)

    async def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        subresource: str = "",
        strategic: bool = False,
    ) -> dict[str, Any]:
        """JSON merge patch (RFC 7386): maps merge, lists are replaced, None deletes a key.

        ``strategic`` sends a strategic merge patch instead (built-in kinds only), which
        merges lists such as a pod's containers by name.
        """
        self._count("patch_status" if subresource == "status" else "patch", kind)
        path = RESOURCES[kind].path(namespace, name, subresource)
        content_type = STRATEGIC_MERGE_PATCH if strategic else MERGE_PATCH
        return await self._call("PATCH", path, patch, content_type=content_type)

    async def replace(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        self._count("update", kind)
        meta = body["metadata"]
        return await self._call("PUT", RESOURCES[kind].path(meta["namespace"], meta["name"]), body)

    async def delete(
        self, kind: str, namespace: str, name: str, uid: str = ""
    ) -> dict[str, Any] | None:
        """Delete, only if it is still the object we looked at (uid precondition).

        Returns the object as the server left it (a pod lingers with a deletionTimestamp),
        or None when it is already gone.
        """
        self._count("delete", kind)
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if uid:
            body["preconditions"] = {"uid": uid}
        body["propagationPolicy"] = "Background"
        try:
            result = await self._call("DELETE", RESOURCES[kind].path(namespace, name), body)
        except KubeError as err:
            if not err.not_found and not err.conflict:
                raise
            return None
        # A finished deletion answers with a Status object, not the object itself.
        return result if result.get("kind") == kind else None
