"""Read a Workspace's status: is it ready, stopped, failed for good, and what to tell the user.

Pure functions over the Workspace object as a dict (what the API server returns), so the
spawner's decisions can be tested without a cluster. The status fields are the contract in
docs/contracts.md: ``phase``, ``conditions`` (StorageReady, PodReady, Ready), ``message``,
``observedGeneration``, ``url``, ``podIP``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from devplane_api.v1alpha1 import SCHEDULER_UNBOUND_CLAIM, STUCK_REASONS

# Ready=False reasons that waiting will not cure (docs/contracts.md): fail the spawn now.
DEFAULT_FATAL_REASONS = STUCK_REASONS


@dataclass(frozen=True)
class ProgressEvent:
    """One line on the spawn page; ``key`` de-duplicates repeats of the same state."""

    key: str
    progress: int
    message: str


def conditions(ws: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The status conditions by type."""
    items = (ws.get("status") or {}).get("conditions") or []
    return {c.get("type", ""): c for c in items if isinstance(c, Mapping)}


def is_current(ws: Mapping[str, Any], condition: Mapping[str, Any] | None = None) -> bool:
    """Whether the status describes the current spec (not one from before our last write).

    A condition's own observedGeneration wins over the status-wide one when present.
    """
    generation = (ws.get("metadata") or {}).get("generation") or 0
    status = ws.get("status") or {}
    observed = None
    if condition is not None:
        observed = condition.get("observedGeneration")
    if observed is None:
        observed = status.get("observedGeneration")
    return observed is not None and observed >= generation


def ready_reason(ws: Mapping[str, Any]) -> str:
    return (conditions(ws).get("Ready") or {}).get("reason") or ""


def phase(ws: Mapping[str, Any]) -> str:
    return (ws.get("status") or {}).get("phase") or ""


def is_ready(ws: Mapping[str, Any]) -> bool:
    """Started, Ready=True for the current generation, and an address to return."""
    if not (ws.get("spec") or {}).get("started"):
        return False
    ready = conditions(ws).get("Ready")
    status = ws.get("status") or {}
    return (
        ready is not None
        and ready.get("status") == "True"
        and is_current(ws, ready)
        and bool(status.get("url") or status.get("podIP"))
    )


def pod_not_ready(ws: Mapping[str, Any]) -> bool:
    """The operator reports the pod not ready (PodReady=False): one of its containers, the
    auth proxy among them, fails its readiness check or is not running."""
    return (conditions(ws).get("PodReady") or {}).get("status") == "False"


def is_stopped(ws: Mapping[str, Any]) -> bool:
    """Asked to stop and the operator confirms the pod is gone."""
    if (ws.get("spec") or {}).get("started"):
        return False
    return phase(ws) == "Stopped" and is_current(ws)


def fatal_message(
    ws: Mapping[str, Any], fatal_reasons: Iterable[str] = DEFAULT_FATAL_REASONS
) -> str | None:
    """A user-facing reason the start cannot succeed, or None while it still may.

    Only a status describing the current generation counts: a stale ImagePullFailed from the
    previous image must not fail a start with a fixed image.
    """
    status = ws.get("status") or {}
    ready = conditions(ws).get("Ready")
    reasons = set(fatal_reasons)
    if (
        ready is not None
        and ready.get("status") == "False"
        and ready.get("reason") in reasons
        and is_current(ws, ready)
        and not _waiting_for_volume(ready, status)
    ):
        detail = status.get("message") or ready.get("message") or ready.get("reason")
        return f"Your workspace cannot start: {detail}"
    if phase(ws) == "Failed" and is_current(ws):
        detail = status.get("message") or (ready or {}).get("message") or "the operator gave up"
        return f"Your workspace failed: {detail}"
    return None


def _waiting_for_volume(ready: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """ "Unschedulable" only because the home volume is not bound (yet) is a storage wait.

    The scheduler gives up on a pod whose fresh PVC is still unbound and retries when the
    volume binds, which can take a while on a busy cluster. A volume that never binds is
    reported as VolumePending by the operator after its stuck-after delay, so failing here
    would only turn a slow start into a failed one.
    """
    text = f"{status.get('message') or ''} {ready.get('message') or ''}"
    return ready.get("reason") == "Unschedulable" and SCHEDULER_UNBOUND_CLAIM in text


def server_url(ws: Mapping[str, Any], connect_via: str, port: int) -> str:
    """The URL the hub (and its proxy) use to reach the workspace.

    ``service``: the operator's ``status.url`` (Service DNS, the in-cluster default);
    ``pod-ip``: ``http://<podIP>:<port>`` (tests on kwok's simulated pods: no Service DNS).
    """
    status = ws.get("status") or {}
    if connect_via == "pod-ip":
        ip = status.get("podIP")
        if not ip:
            raise ValueError("the Workspace reports no podIP yet")
        return f"http://{ip}:{port}"
    url = status.get("url")
    if not url:
        raise ValueError("the Workspace reports no url yet")
    return url


@dataclass(frozen=True)
class _Stage:
    """One step of a start as a condition reports it: (progress, message) while and after."""

    condition: str
    tag: str
    waiting: tuple[int, str]
    done: tuple[int, str]


_STAGES = (
    _Stage(
        "StorageReady",
        "storage",
        (20, "Creating your home volume"),
        (40, "Your home volume is ready"),
    ),
    _Stage("PodReady", "pod", (60, "Starting your workspace"), (80, "Your workspace is running")),
)


def status_events(ws: Mapping[str, Any]) -> list[ProgressEvent]:
    """Spawn-page lines for the Workspace's current conditions, in the order a start goes."""
    conds = conditions(ws)
    events = [ProgressEvent("requested", 10, "Your workspace has been requested")]
    for stage in _STAGES:
        condition = conds.get(stage.condition)
        if condition is None or condition.get("status") != "True":
            reason = (condition or {}).get("reason") or "Pending"
            events.append(ProgressEvent(f"{stage.tag}:{reason}", *stage.waiting))
            return events
        events.append(ProgressEvent(f"{stage.tag}:ready", *stage.done))
    if is_ready(ws):
        events.append(ProgressEvent("ready", 95, "Your workspace is ready, connecting"))
    return events


def kube_event(event: Mapping[str, Any]) -> ProgressEvent | None:
    """A spawn-page line for a Kubernetes Event about the Workspace (written by the operator)."""
    message = event.get("message") or event.get("note")
    if not message:
        return None
    uid = (event.get("metadata") or {}).get("uid") or message
    prefix = "Warning: " if event.get("type") == "Warning" else ""
    return ProgressEvent(f"event:{uid}", 50, f"{prefix}{message}")


def workspace_progress(
    ws: Mapping[str, Any], fatal_reasons: Iterable[str] = DEFAULT_FATAL_REASONS
) -> list[ProgressEvent]:
    """The spawn-page lines the Workspace's status gives: each step so far, then the cause
    once the start cannot succeed."""
    events = status_events(ws)
    cause = fatal_message(ws, fatal_reasons)
    if cause:
        events.append(ProgressEvent(f"cause:{cause}", 0, cause))
    return events


@dataclass
class ProgressLines:
    """One progress stream's lines: each state said once, and a bar that never goes back."""

    said: set[str] = field(default_factory=set)
    progress: int = 0

    def fresh(self, events: Iterable[ProgressEvent]) -> Iterator[dict[str, Any]]:
        """The hub's progress events for those of ``events`` not said yet."""
        for event in events:
            if event.key in self.said or event.message in self.said:
                continue
            self.said.update((event.key, event.message))
            # Kubernetes Events carry no progress of their own: the bar stays where it is.
            self.progress = max(self.progress, event.progress)
            yield {"progress": self.progress, "message": event.message}
