"""Kubernetes Events on a Workspace (core/v1), for the transitions a person acts on.

`kubectl describe ws alice` then tells the story (Running, Stopped, Failed, or why it is
stuck) without reading operator logs. Events are written only on such a transition, never on
a no-op reconcile; reconcile.Controller._announce decides which.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from devplane_api.v1alpha1 import API_VERSION, GROUP, KIND, MANAGED_BY, MANAGED_BY_VALUE

from .status import timestamp

COMPONENT = "devplane-operator"


def build_event(
    workspace: dict[str, Any],
    type_: str,
    reason: str,
    message: str,
    now: datetime,
    instance: str,
) -> dict[str, Any]:
    """A core/v1 Event about ``workspace`` (a Workspace body)."""
    meta = workspace["metadata"]
    stamp = timestamp(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
            "namespace": meta["namespace"],
            "labels": {MANAGED_BY: MANAGED_BY_VALUE},
        },
        "involvedObject": {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": f"{GROUP}/{COMPONENT}",
        "reportingInstance": instance[:128],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
