"""A tiny synchronous Kubernetes client for the demo's set-up steps and the e2e tests.

Why not kubectl: the pinned binaries need not include it, and the demo only needs a few
calls (server-side apply, get, wait). Why not kubernetes_asyncio: these steps run in plain
synchronous code (the demo's main, pytest fixtures) where an event loop is only in the way.
"""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path
from typing import Any

import requests
import yaml

from devplane_api.v1alpha1 import API_VERSION, PLURAL

from ..poll import wait_for

FIELD_MANAGER = "devplane-demo"


class Kube:
    def __init__(self, kubeconfig: Path) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
        cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
        user = next(u for u in config["users"] if u["name"] == context["context"]["user"])
        self.server = cluster["cluster"]["server"].rstrip("/")
        # requests wants files; the kubeconfig carries the certificates inline.
        self._tmp = tempfile.TemporaryDirectory(prefix="devplane-kube-")
        tmp = Path(self._tmp.name)
        for name, key in (
            ("ca.crt", cluster["cluster"]["certificate-authority-data"]),
            ("client.crt", user["user"]["client-certificate-data"]),
            ("client.key", user["user"]["client-key-data"]),
        ):
            (tmp / name).write_bytes(base64.b64decode(key))
        self.session = requests.Session()
        # Else REQUESTS_CA_BUNDLE (set on many machines) silently overrides `verify`, and a
        # proxy from the environment could capture calls to a loopback API server.
        self.session.trust_env = False
        self.session.verify = str(tmp / "ca.crt")
        self.session.cert = (str(tmp / "client.crt"), str(tmp / "client.key"))

    def close(self) -> None:
        self.session.close()
        self._tmp.cleanup()

    def get(self, path: str, **params: Any) -> dict[str, Any] | None:
        """GET ``path``; None on 404."""
        resp = self.session.get(self.server + path, params=params, timeout=30)
        if resp.status_code == 404:
            return None
        resp.raise_for_status()
        return resp.json()

    def apply(self, path: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply ``obj`` at ``path`` (the object's own URL)."""
        resp = self.session.patch(
            self.server + path,
            params={"fieldManager": FIELD_MANAGER, "force": "true"},
            data=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
            timeout=30,
        )
        if resp.status_code >= 400:
            raise RuntimeError(f"apply {path} failed: {resp.status_code} {resp.text[:500]}")
        return resp.json()

    def delete(self, path: str) -> None:
        resp = self.session.delete(self.server + path, timeout=30)
        if resp.status_code not in (200, 202, 404):
            raise RuntimeError(f"delete {path} failed: {resp.status_code} {resp.text[:500]}")

    # --------------------------------------------------------- DevPlane-specific helpers

    def ensure_namespace(self, name: str, labels: dict[str, str]) -> None:
        self.apply(
            f"/api/v1/namespaces/{name}",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}},
        )
        # Pod admission needs the default ServiceAccount, created asynchronously.
        wait_for(
            f"namespace {name}'s default ServiceAccount",
            lambda: self.get(f"/api/v1/namespaces/{name}/serviceaccounts/default") is not None,
            60,
        )

    def delete_namespace(self, name: str) -> None:
        """Delete a namespace whose operator is already gone.

        The operator's finalizers on Workspaces would keep the namespace Terminating forever
        with nobody left to remove them, so they are dropped first.
        """
        base = f"/apis/{API_VERSION}/namespaces/{name}/{PLURAL}"
        for ws in (self.get(base) or {}).get("items", []):
            if ws["metadata"].get("finalizers"):
                self.session.patch(
                    f"{self.server}{base}/{ws['metadata']['name']}",
                    data=json.dumps({"metadata": {"finalizers": None}}),
                    headers={"Content-Type": "application/merge-patch+json"},
                    timeout=30,
                )
        self.delete(f"/api/v1/namespaces/{name}")

    def workspace(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(f"/apis/{API_VERSION}/namespaces/{namespace}/{PLURAL}/{name}")
