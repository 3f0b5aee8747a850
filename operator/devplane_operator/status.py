"""Pure status computation: observed children -> phase, conditions, message.

The message must name the real cause in words a user understands, because the spawner shows
it and fails fast on it instead of waiting out its timeout. Causes that will not fix
themselves get a distinctive Ready reason (ImagePullFailed, Unschedulable, VolumePending,
ContainerConfigError, CrashLoopBackOff, InvalidSpec, Refused). lastTransitionTime only moves when a
condition's status changes, so an unchanged Workspace gets an identical status and no write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from devplane_api.v1alpha1 import (
    PROXY_PORT,
    SCHEDULER_UNBOUND_CLAIM,
    SETTLED_PHASES,
    STUCK_REASONS,
)

from .model import Workspace

Obj = dict[str, Any]

_IMAGE_PULL = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}


@dataclass(frozen=True)
class Cond:
    status: bool
    reason: str
    message: str


def timestamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def storage_condition(
    ws: Workspace, pvc: Obj | None, now: datetime, stuck_after: float
) -> tuple[Cond, float | None]:
    """StorageReady, plus when to look again if the volume might become 'stuck'."""
    name = ws.pvc_name
    if pvc is None:
        return Cond(False, "Provisioning", f"creating the home volume {name}"), None
    if pvc["metadata"].get("deletionTimestamp"):
        return Cond(False, "VolumeTerminating", f"the home volume {name} is being deleted"), None
    phase = (pvc.get("status") or {}).get("phase")
    if phase == "Bound":
        return Cond(True, "Bound", f"the home volume {name} is bound"), None
    if phase == "Lost":
        return Cond(False, "VolumeLost", f"the home volume {name} lost its disk"), None
    created = _parse_time(pvc["metadata"].get("creationTimestamp")) or now
    waited = (now - created).total_seconds()
    storage_class = (pvc.get("spec") or {}).get("storageClassName") or "the default"
    if waited >= stuck_after:
        return Cond(
            False,
            "VolumePending",
            f"the home volume {name} has not been bound after {int(waited)}s: check that "
            f"StorageClass {storage_class} exists and can provision volumes",
        ), None
    return Cond(False, "WaitingForVolume", f"waiting for the home volume {name}"), (
        stuck_after - waited + 1
    )


def _waiting(pod: Obj) -> tuple[str, str, str] | None:
    """(container, reason, message) of the first container stuck waiting, if any."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting")
        if waiting and waiting.get("reason"):
            return status.get("name", ""), waiting["reason"], waiting.get("message", "")
    return None


def _condition(pod: Obj, type_: str) -> Obj | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def pod_condition(ws: Workspace, pod: Obj | None) -> Cond:
    """PodReady, from the pod's status (what a kubelet and the scheduler report)."""
    if not ws.started:
        if pod is None:
            return Cond(False, "Stopped", "the workspace is stopped")
        return Cond(False, "Stopping", "the workspace is stopping")
    if pod is None:
        return Cond(False, "Creating", "creating the workspace pod")
    if pod["metadata"].get("deletionTimestamp"):
        return Cond(False, "Restarting", "replacing the workspace pod")
    waiting = _waiting(pod)
    if waiting:
        container, reason, message = waiting
        image = next(
            (c.get("image") for c in pod["spec"]["containers"] if c.get("name") == container), ""
        )
        if reason in _IMAGE_PULL:
            return Cond(
                False,
                "ImagePullFailed",
                f"the image {image} of container {container} cannot be pulled ({reason}): "
                f"{message}".rstrip(": "),
            )
        if reason == "CreateContainerConfigError":
            return Cond(
                False, "ContainerConfigError", f"container {container} cannot start: {message}"
            )
        if reason == "CrashLoopBackOff":
            return Cond(False, "CrashLoopBackOff", f"container {container} keeps crashing")
    scheduled = _condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False":
        message = scheduled.get("message") or "no node can run it"
        return Cond(False, "Unschedulable", f"the workspace pod cannot be scheduled: {message}")
    ready = _condition(pod, "Ready")
    if ready and ready.get("status") == "True":
        return Cond(True, "PodReady", "the workspace pod is ready")
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Failed":
        return Cond(False, "PodFailed", "the workspace pod failed; replacing it")
    return Cond(False, "ContainersNotReady", "waiting for the workspace to become ready")


def phase_of(ws: Workspace, pod: Obj | None, storage: Cond, podc: Cond) -> str:
    if not ws.started:
        return "Stopped" if pod is None else "Stopping"
    if podc.status:
        return "Running"
    if pod is None or podc.reason == "Unschedulable":
        return "Pending"
    scheduled = _condition(pod, "PodScheduled")
    if not (scheduled and scheduled.get("status") == "True"):
        return "Pending"
    return "Starting"


def _ready(ws: Workspace, storage: Cond, podc: Cond) -> Cond:
    if storage.status and podc.status:
        return Cond(True, "Running", "the workspace is running")
    if not ws.started:
        return Cond(False, podc.reason, podc.message)
    # The cause a user can act on first: a stuck one, then storage, then the pod.
    for cond in (storage, podc):
        if not cond.status and cond.reason in STUCK_REASONS:
            return cond
    return storage if not storage.status else podc


def _conditions(
    conds: dict[str, Cond], previous: list[Obj], generation: int, now: datetime
) -> list[Obj]:
    before = {c.get("type"): c for c in previous or []}
    result = []
    for type_, cond in conds.items():
        status = "True" if cond.status else "False"
        old = before.get(type_) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        result.append(
            {
                "type": type_,
                "status": status,
                "reason": cond.reason,
                "message": cond.message,
                "lastTransitionTime": since or timestamp(now),
                "observedGeneration": generation,
            }
        )
    return result


def service_url(ws: Workspace) -> str:
    """What the spawner returns to the hub (docs/contracts.md): the Service's DNS name."""
    return f"http://{ws.child_name}.{ws.namespace}.svc:{PROXY_PORT}"


def compute_status(
    ws: Workspace,
    pvc: Obj | None,
    pod: Obj | None,
    previous: Obj,
    now: datetime,
    stuck_after: float,
) -> tuple[Obj, float | None]:
    """The Workspace's status, and after how many seconds to look again (None: no need)."""
    storage, recheck = storage_condition(ws, pvc, now, stuck_after)
    podc = pod_condition(ws, pod)
    if podc.reason == "Unschedulable" and (
        not storage.status or SCHEDULER_UNBOUND_CLAIM in podc.message
    ):
        # The scheduler waits for an unbound claim ("pod has unbound immediate
        # PersistentVolumeClaims"): that is the volume's story, not a scheduling dead end,
        # and must not make the spawner give up early. Under load the volume may be Bound
        # here before the scheduler has seen it: it retries then, so this is still a wait
        # (not a stuck cause, a Warning Event and an urgent status write).
        podc = Cond(False, "WaitingForVolume", "the workspace pod waits for its home volume")
    ready = _ready(ws, storage, podc)
    status: Obj = {
        "phase": phase_of(ws, pod, storage, podc),
        "message": "" if ready.status else ready.message,
        "observedGeneration": ws.generation,
        "url": service_url(ws),
        "pvcName": ws.pvc_name,
        "serviceName": ws.child_name,
        "conditions": _conditions(
            {"StorageReady": storage, "PodReady": podc, "Ready": ready},
            previous.get("conditions") or [],
            ws.generation,
            now,
        ),
    }
    if pod is not None:
        status["podName"] = pod["metadata"]["name"]
        pod_ip = (pod.get("status") or {}).get("podIP")
        if pod_ip:
            status["podIP"] = pod_ip
    return status, recheck


def failed_status(
    generation: int, message: str, previous: Obj, now: datetime, reason: str = "InvalidSpec"
) -> Obj:
    """Status of a Workspace whose spec cannot be realised or is refused (a permanent error)."""
    cond = Cond(False, reason, message)
    return {
        "phase": "Failed",
        "message": message,
        "observedGeneration": generation,
        "conditions": _conditions(
            {"StorageReady": cond, "PodReady": cond, "Ready": cond},
            previous.get("conditions") or [],
            generation,
            now,
        ),
    }


def ready_reason(status: Obj) -> str:
    return _ready_condition(status).get("reason", "")


def _ready_condition(status: Obj) -> Obj:
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond
    return {}


def is_news(previous: Obj, status: Obj) -> bool:
    """Whether the change from ``previous`` to ``status`` is one a reader acts on at once.

    The spawner waits for Ready and fails a start on a stuck reason or Failed, stop() waits
    for Stopped, and the hub's poll() and its proxy must learn at once that a Ready pod no
    longer is (its auth proxy port may then be anyone's). Everything else (Pending ->
    Starting, the volume binding, a new observedGeneration) is progress detail that may be
    held back briefly and folded into the next write.
    """
    old_ready, new_ready = _ready_condition(previous), _ready_condition(status)
    if old_ready.get("status", "False") != new_ready.get("status", "False"):
        return True
    new_reason = new_ready.get("reason", "")
    final = (
        new_ready.get("status") == "True"
        or new_reason in STUCK_REASONS
        or status.get("phase") in SETTLED_PHASES
    )
    if final and status.get("observedGeneration") != previous.get("observedGeneration"):
        # The spawner's start() and stop() wait for this generation's Ready, stuck cause,
        # Failed or Stopped (progress.is_current): a new generation of one is news.
        return True
    if status.get("phase") == "Failed" and status.get("message") != previous.get("message"):
        return True  # failed for another reason: what the user is shown changed
    if new_reason in STUCK_REASONS and new_reason != old_ready.get("reason", ""):
        return True
    return status.get("phase") in SETTLED_PHASES and status.get("phase") != previous.get("phase")
