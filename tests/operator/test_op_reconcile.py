"""Reconcile against an in-memory API server: write order, concurrency and error outcome.

No cluster needed. The four independent children are written concurrently; these tests pin
what that must not change: the pod only after what it mounts and its NetworkPolicy exist,
nothing written twice, nothing written when nothing changed, and the same permanent /
temporary outcome as one-at-a-time writes when one or several of the writes fail.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from devplane_dev.workspaces import EXAMPLE_PROVIDERS_JSON, workspace_manifest
from devplane_operator.cache import Cache
from devplane_operator.compare import normalize
from devplane_operator.kube import KubeError
from devplane_operator.reconcile import (
    INDEPENDENT_KINDS,
    Controller,
    PermanentFailure,
    TemporaryFailure,
)
from devplane_operator.settings import load_settings
from devplane_operator.workqueue import WorkQueue
from prometheus_client import REGISTRY

from devplane_api.v1alpha1 import API_VERSION, KIND, REFUSED

Obj = dict[str, Any]
NAMESPACE = "ws"
SETTINGS_ENV = {
    "DEVPLANE_NAMESPACES": NAMESPACE,
    "DEVPLANE_LLM_PROVIDERS": EXAMPLE_PROVIDERS_JSON,
    # Most tests here pin what is written; the hold of progress-only status changes has its
    # own tests below.
    "DEVPLANE_STATUS_HOLD_SECONDS": "0",
}
FORBIDDEN = KubeError(403, "Forbidden", "networkpolicies is forbidden")
INVALID = KubeError(422, "Invalid", "spec.capacity: Invalid value")
UNAVAILABLE = KubeError(503, "ServiceUnavailable", "etcd leader changed")
THROTTLED = KubeError(429, "TooManyRequests", "slow down")
EXISTS = KubeError(409, "AlreadyExists", "already exists")


def _merge(target: Obj, patch: Obj) -> Obj:
    """RFC 7386 merge patch (what the fake server does with every patch)."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge(result[key], value)
        else:
            result[key] = value
    return result


class FakeKube:
    """The part of ``Kube`` reconcile uses, keeping objects in a dict.

    Every write yields to the event loop before it completes, as a real round trip does, so
    concurrent writes really overlap; ``in_flight`` records which ones did. ``fail`` maps a
    kind to the error its next create raises (409 after storing the object, as a create that
    lost a race would).
    """

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], Obj] = {}
        self.writes: list[tuple[str, str]] = []  # (verb, kind), completed, in order
        self.reads: list[tuple[str, str, bool]] = []  # (kind, name, metadata_only) of each GET
        self.fail: dict[str, BaseException] = {}
        self.in_flight: set[str] = set()
        self.peak: set[str] = set()  # the largest set of writes in flight at once
        self.started_with: dict[str, set[str]] = {}  # kind -> writes completed when it started
        self._rv = itertools.count(1)

    async def _round_trip(self, kind: str) -> None:
        self.started_with[kind] = {k for _, k in self.writes}
        self.in_flight.add(kind)
        if len(self.in_flight) > len(self.peak):
            self.peak = set(self.in_flight)
        for _ in range(3):
            await asyncio.sleep(0)
        self.in_flight.discard(kind)

    async def create(self, kind: str, body: Obj) -> Obj:
        await self._round_trip(kind)
        error = self.fail.pop(kind, None)
        if error is not None and not (isinstance(error, KubeError) and error.conflict):
            raise error
        meta = body["metadata"]
        stored = _merge(body, {})
        stored["metadata"] = meta | {
            "uid": f"uid-{kind}-{meta['name']}",
            "resourceVersion": str(next(self._rv)),
            "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if kind != "Event":
            self.objects[(kind, meta["name"])] = stored
        if error is not None:
            raise error
        self.writes.append(("create", kind))
        return stored

    async def get(
        self, kind: str, namespace: str, name: str, metadata_only: bool = False
    ) -> Obj | None:
        self.reads.append((kind, name, metadata_only))
        body = self.objects.get((kind, name))
        if body is None or not metadata_only:
            return body
        return {"kind": "PartialObjectMetadata", "metadata": body["metadata"]}

    async def list(self, kind: str, namespace: str | None, selector: str = "") -> list[Obj]:
        return [body for (k, _), body in self.objects.items() if k == kind]

    async def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        patch: Obj,
        subresource: str = "",
        strategic: bool = False,
    ) -> Obj:
        await self._round_trip(kind)
        current = self.objects[(kind, name)]
        current = _merge(current, patch)
        current["metadata"]["resourceVersion"] = str(next(self._rv))
        self.objects[(kind, name)] = current
        self.writes.append(("patch_status" if subresource else "patch", kind))
        return current

    async def delete(self, kind: str, namespace: str, name: str, uid: str = "") -> Obj | None:
        await self._round_trip(kind)
        self.objects.pop((kind, name), None)
        self.writes.append(("delete", kind))
        return None


def _workspace(**spec: Any) -> Obj:
    metadata = {"namespace": NAMESPACE, "uid": "ws-uid", "generation": 1, "resourceVersion": "1"}
    return workspace_manifest("alice", "", metadata, **spec)


def _controller(hold: float = 0, **spec: Any) -> tuple[Controller, FakeKube, tuple[str, str]]:
    kube = FakeKube()
    body = _workspace(**spec)
    kube.objects[(KIND, body["metadata"]["name"])] = body
    env = SETTINGS_ENV | {"DEVPLANE_STATUS_HOLD_SECONDS": str(hold)}
    controller = Controller(load_settings([], env), kube, Cache(), WorkQueue())  # type: ignore[arg-type]
    controller.cache.put(KIND, body)
    return controller, kube, (NAMESPACE, body["metadata"]["name"])


def _children(kube: FakeKube) -> list[str]:
    return sorted(kind for kind, _ in kube.objects if kind != KIND)


async def test_independent_children_are_written_together_and_the_pod_after_them():
    controller, kube, key = _controller()

    await controller.reconcile(key)

    assert kube.peak == set(INDEPENDENT_KINDS), "the four independent writes did not overlap"
    # The pod mounts the PVC and the ConfigMap and must not run without its NetworkPolicy.
    assert kube.started_with["Pod"] >= set(INDEPENDENT_KINDS)
    creates = [kind for verb, kind in kube.writes if verb == "create" and kind != "Event"]
    assert sorted(creates) == sorted([*INDEPENDENT_KINDS, "Pod"])
    assert ("patch_status", KIND) in kube.writes


async def test_a_second_reconcile_writes_nothing():
    controller, kube, key = _controller()
    await controller.reconcile(key)
    status = kube.objects[(KIND, key[1])]["status"]
    kube.writes.clear()

    await controller.reconcile(key)
    await controller.reconcile(key)

    assert kube.writes == []
    assert normalize(kube.objects[(KIND, key[1])]["status"]) == normalize(status)


@pytest.mark.parametrize(
    ("failures", "raised", "cause"),
    [
        # one failure: the same outcome as when the children were written one at a time
        ({"NetworkPolicy": FORBIDDEN}, PermanentFailure, FORBIDDEN),
        ({"ConfigMap": UNAVAILABLE}, TemporaryFailure, UNAVAILABLE),
        ({"Service": EXISTS}, TemporaryFailure, None),
        # several: a permanent refusal wins wherever it is in the child order
        (
            {"PersistentVolumeClaim": UNAVAILABLE, "NetworkPolicy": FORBIDDEN},
            PermanentFailure,
            FORBIDDEN,
        ),
        ({"ConfigMap": EXISTS, "Service": INVALID}, PermanentFailure, INVALID),
        (
            {"PersistentVolumeClaim": INVALID, "NetworkPolicy": FORBIDDEN},
            PermanentFailure,
            INVALID,
        ),
        # only temporary ones: retried; the first in child order is reported
        ({"Service": THROTTLED, "ConfigMap": UNAVAILABLE}, TemporaryFailure, UNAVAILABLE),
    ],
)
async def test_a_failed_child_write_decides_the_outcome_and_the_retry_finishes_the_rest(
    failures, raised, cause
):
    controller, kube, key = _controller()
    kube.fail.update(failures)

    with pytest.raises(raised) as info:
        await controller.reconcile(key)

    if cause is not None:
        assert info.value.__cause__ is cause
    # No pod while what it needs may be missing; the other writes were not cancelled.
    assert "Pod" not in _children(kube)
    created = {kind for verb, kind in kube.writes if verb == "create"}
    assert created == set(INDEPENDENT_KINDS) - set(failures)

    # The retry (the failures cleared) writes only what is still missing: no duplicate.
    kube.writes.clear()
    await controller.reconcile(key)
    creates = [kind for verb, kind in kube.writes if verb == "create" and kind != "Event"]
    missing = {k for k, e in failures.items() if not (isinstance(e, KubeError) and e.conflict)}
    assert sorted(creates) == sorted([*missing, "Pod"])
    assert _children(kube) == sorted([*INDEPENDENT_KINDS, "Pod"])


async def test_an_unexpected_error_is_not_hidden_behind_a_temporary_one():
    controller, kube, key = _controller()
    bug = RuntimeError("a bug in a comparer")
    kube.fail.update({"PersistentVolumeClaim": UNAVAILABLE, "Service": bug})

    with pytest.raises(RuntimeError) as info:
        await controller.reconcile(key)

    assert info.value is bug


def _hub_secret(owner_uid: str) -> Obj:
    owner = {"apiVersion": API_VERSION, "kind": KIND, "name": "alice", "uid": owner_uid}
    return {
        "kind": "Secret",
        "metadata": {"name": "ws-alice-hub", "ownerReferences": [owner]},
        "data": {"JUPYTERHUB_API_TOKEN": "dG9rZW4="},
    }


async def test_the_hub_secret_is_checked_once_before_the_pod_is_created_by_its_metadata():
    controller, kube, key = _controller()
    kube.objects[("Secret", "ws-alice-hub")] = _hub_secret(owner_uid="ws-uid")

    await controller.reconcile(key)
    await controller.reconcile(key)  # a resync: the pod exists, nothing to check again

    assert kube.reads == [("Secret", "ws-alice-hub", True)]
    assert "Pod" in _children(kube)


async def test_a_hub_secret_owned_by_another_workspace_gets_no_pod():
    controller, kube, key = _controller()
    kube.objects[("Secret", "ws-alice-hub")] = _hub_secret(owner_uid="an-earlier-alice")

    with pytest.raises(PermanentFailure) as info:
        await controller.reconcile(key)

    assert info.value.reason == REFUSED
    assert "Pod" not in _children(kube)


async def test_a_refused_workspace_loses_the_pod_it_had():
    controller, kube, key = _controller()
    await controller.reconcile(key)
    changed = _workspace(image="elsewhere.example/ws:1")
    changed["metadata"] |= {"generation": 2, "resourceVersion": "99"}
    controller.cache.put(KIND, changed)
    kube.writes.clear()

    with pytest.raises(PermanentFailure) as info:
        await controller.reconcile(key)

    assert info.value.reason == REFUSED
    assert kube.writes == [("delete", "Pod")]


async def test_a_stopped_workspace_gets_its_children_but_no_pod():
    controller, kube, key = _controller(started=False)

    await controller.reconcile(key)

    assert _children(kube) == sorted(INDEPENDENT_KINDS)


async def test_the_echo_of_our_own_writes_queues_nothing_but_a_real_change_does():
    controller, kube, key = _controller()
    await controller.reconcile(key)
    assert len(controller.queue) == 0
    # What the watches deliver next: every object exactly as our writes returned it.
    for (kind, _name), body in list(kube.objects.items()):
        if kind == KIND:
            controller.on_workspace_event("MODIFIED", body)
        else:
            controller.on_child_event(kind, "ADDED", body)
    assert len(controller.queue) == 0, "the echo of our own writes was reconciled again"

    # Someone else's change to a child (here kwok/the kubelet reporting the pod) is news.
    pod = next(b for (kind, _), b in kube.objects.items() if kind == "Pod")
    changed = json.loads(json.dumps(pod))
    changed["metadata"]["resourceVersion"] = str(int(pod["metadata"]["resourceVersion"]) + 100)
    changed["status"] = {"phase": "Running"}
    controller.on_child_event("Pod", "MODIFIED", changed)
    assert len(controller.queue) == 1
    # An older copy arriving late is not.
    assert not controller.cache.put("Pod", pod)


async def test_a_restarted_operator_reconciles_every_workspace_it_lists():
    controller, kube, key = _controller()
    await controller.reconcile(key)
    restarted = Controller(controller.settings, kube, Cache(), WorkQueue())  # type: ignore[arg-type]

    await restarted.prime()

    # The watches' first events will carry the versions just listed (not news), so prime
    # itself must queue each Workspace, or a child deleted meanwhile would stay missing.
    assert len(restarted.queue) == 1
    assert await restarted.queue.get() == key


# ------------------------------------------------------------------ holding progress back


def _status_writes(kube: FakeKube) -> list[tuple[str, str]]:
    return [w for w in kube.writes if w == ("patch_status", KIND)]


def _status_writes_counted(why: str) -> float:
    """devplane_operator_status_writes_total{why}, as /metrics shows it."""
    return REGISTRY.get_sample_value("devplane_operator_status_writes_total", {"why": why}) or 0


def _pod_becomes_ready(controller: Controller, kube: FakeKube) -> None:
    pod = next(b for (kind, _), b in kube.objects.items() if kind == "Pod")
    ready = json.loads(json.dumps(pod))
    ready["metadata"]["resourceVersion"] = str(int(pod["metadata"]["resourceVersion"]) + 100)
    ready["status"] = {
        "phase": "Running",
        "podIP": "10.0.0.7",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True"},
        ],
    }
    pvc = next(b for (kind, _), b in kube.objects.items() if kind == "PersistentVolumeClaim")
    bound = json.loads(json.dumps(pvc)) | {"status": {"phase": "Bound"}}
    bound["metadata"]["resourceVersion"] = str(int(pvc["metadata"]["resourceVersion"]) + 100)
    controller.on_child_event("Pod", "MODIFIED", ready)
    controller.on_child_event("PersistentVolumeClaim", "MODIFIED", bound)


async def test_progress_is_held_back_and_written_when_the_hold_is_over():
    controller, kube, key = _controller(hold=0.2)

    recheck = await controller.reconcile(key)

    assert _status_writes(kube) == [], "Pending was written at once"
    assert recheck is not None and 0 < recheck <= 0.2
    assert await controller.reconcile(key) <= recheck  # still held, not restarted
    assert _status_writes(kube) == []
    progress = _status_writes_counted("progress")
    await asyncio.sleep(recheck + 0.05)
    await controller.reconcile(key)
    assert len(_status_writes(kube)) == 1
    assert kube.objects[(KIND, key[1])]["status"]["phase"] == "Pending"
    assert _status_writes_counted("progress") == progress + 1  # counted by why


async def test_a_quick_start_writes_its_status_once_at_running_and_posts_one_event():
    controller, kube, key = _controller(hold=60)
    await controller.reconcile(key)  # Pending, held
    _pod_becomes_ready(controller, kube)

    assert await controller.reconcile(key) is None

    assert len(_status_writes(kube)) == 1
    assert kube.objects[(KIND, key[1])]["status"]["phase"] == "Running"
    assert [kind for verb, kind in kube.writes if kind == "Event"] == ["Event"]


async def test_a_stopped_workspace_is_reported_at_once():
    controller, kube, key = _controller(hold=60, started=False)
    news = _status_writes_counted("news")

    await controller.reconcile(key)

    assert len(_status_writes(kube)) == 1
    assert _status_writes_counted("news") == news + 1
    assert kube.objects[(KIND, key[1])]["status"]["phase"] == "Stopped"


async def test_a_refusal_is_reported_at_once_also_when_it_repeats_at_a_new_generation():
    controller, kube, key = _controller(hold=60, image="elsewhere.example/ws:1")

    await controller._process(key)

    status = kube.objects[(KIND, key[1])]["status"]
    assert (status["phase"], status["observedGeneration"]) == ("Failed", 1)
    again = _workspace(image="elsewhere.example/ws:2")
    again["metadata"] |= {"generation": 2, "resourceVersion": "99"}
    again["status"] = status
    controller.cache.put(KIND, again)

    await controller._process(key)

    status = kube.objects[(KIND, key[1])]["status"]
    assert (status["phase"], status["observedGeneration"]) == ("Failed", 2)
    assert len(_status_writes(kube)) == 2
