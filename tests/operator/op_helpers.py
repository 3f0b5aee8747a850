"""Helpers for the operator tests (a uniquely named module: tests/ has no packages, so
pytest puts this directory on sys.path and test modules import it by name)."""

from __future__ import annotations

import json
from typing import Any

from devplane_dev.poll import wait_for
from devplane_dev.workspaces import workspace_manifest as workspace

__all__ = [
    "apply",
    "condition",
    "get",
    "wait_for",
    "wait_ready",
    "workspace",
    "workspace_event_reasons",
]


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


def wait_ready(kubectl, namespace: str, name: str, timeout: float = 120) -> dict[str, Any]:
    def ready():
        ws = get(kubectl, namespace, "workspace", name)
        return ws if condition(ws, "Ready").get("status") == "True" else None

    return wait_for(f"workspace {namespace}/{name} to be Ready", ready, timeout)


def workspace_event_reasons(
    kubectl, namespace: str, name: str, type_: str | None = None
) -> set[str]:
    """The reasons of the Events posted about Workspace ``name`` (of one type, if given)."""
    events = kubectl("get", "events", "-n", namespace, json_out=True)
    return {
        e["reason"]
        for e in events["items"]
        if e["involvedObject"].get("kind") == "Workspace"
        and e["involvedObject"].get("name") == name
        and (type_ is None or e["type"] == type_)
    }
