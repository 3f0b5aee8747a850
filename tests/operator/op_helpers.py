"""Helpers for the operator tests (a uniquely named module: tests/ has no packages, so
pytest puts this directory on sys.path and test modules import it by name)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from support.procs import wait_for as poll

from devplane_api import naming


def workspace(owner: str, server: str = "", **spec: Any) -> dict[str, Any]:
    """A Workspace manifest named as the spawner would name it."""
    return {
        "apiVersion": "devplane.io/v1alpha1",
        "kind": "Workspace",
        "metadata": {"name": naming.workspace_name(owner, server)},
        "spec": {
            "owner": owner,
            "serverName": server,
            "hubSecretRef": {
                "name": naming.child_name(naming.workspace_name(owner, server), "hub")
            },
            **spec,
        },
    }


def apply(kubectl, namespace: str, *manifests: dict[str, Any]) -> None:
    body = {"apiVersion": "v1", "kind": "List", "items": list(manifests)}
    kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(body))


def get(kubectl, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    proc = kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if proc.returncode != 0:
        if "NotFound" in proc.stderr:
            return None
        raise AssertionError(proc.stderr)
    return json.loads(proc.stdout)


def condition(ws: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for cond in ((ws or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return cond
    return {}


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120, every: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` on timeout."""
    return poll(check, timeout=timeout, what=what, interval=every)


def wait_ready(kubectl, namespace: str, name: str, timeout: float = 120) -> dict[str, Any]:
    def ready():
        ws = get(kubectl, namespace, "workspace", name)
        return ws if condition(ws, "Ready").get("status") == "True" else None

    return wait_for(f"workspace {namespace}/{name} to be Ready", ready, timeout)
