"""Pure tests of status computation and the desired-vs-actual comparison (no cluster)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

from devplane_operator.builders import build_children
from devplane_operator.cache import Cache, SharedValues, project
from devplane_operator.compare import compare, normalize, replacing_patch
from devplane_operator.status import compute_status, failed_status, is_news
from test_op_builders import settings, ws

from devplane_api.v1alpha1 import OWNER_LABEL

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def live(kind: str, manifest: dict, **extra) -> dict:
    """What the API server would hand back for ``manifest``: defaults and bookkeeping added."""
    body = copy.deepcopy(manifest)
    created = "2026-01-01T11:59:00Z"
    body["metadata"] |= {"uid": "u1", "resourceVersion": "10", "creationTimestamp": created}
    if kind == "Pod":
        body["spec"]["dnsPolicy"] = "ClusterFirst"
        body["spec"]["tolerations"] = [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300},
        ]  # fmt: skip
        for c in body["spec"]["containers"]:
            c["terminationMessagePath"] = "/dev/termination-log"
    if kind == "Service":
        body["spec"] |= {"clusterIP": "10.96.0.9", "sessionAffinity": "None"}
    if kind == "PersistentVolumeClaim":
        body["spec"] |= {"volumeName": "pv-1", "storageClassName": "standard"}
    if kind == "NetworkPolicy":
        body["spec"].pop("ingress", None) if not body["spec"]["ingress"] else None
    for key, value in extra.items():
        body[key] = value
    return project(kind, body)


def test_fresh_children_compare_equal_to_their_manifests():
    """The server's defaults must not look like drift, or we would patch forever."""
    for kind, manifest in build_children(ws(), settings()).items():
        assert compare(kind, manifest, live(kind, manifest)).verb == "none", kind


def test_missing_child_is_created():
    for kind, manifest in build_children(ws(), settings()).items():
        assert compare(kind, manifest, None).verb == "create"


def test_pod_drift_policy():
    desired = build_children(ws(), settings())["Pod"]
    actual = live("Pod", desired)
    image_edit = copy.deepcopy(actual)
    image_edit["spec"]["containers"][0]["image"] = "evil:1"
    image_edit["metadata"]["labels"][OWNER_LABEL] = "mallory"
    action = compare("Pod", desired, image_edit)
    assert action.verb == "patch" and action.strategic
    assert action.patch["spec"]["containers"][0] == {"name": "workspace", "image": ws().image}
    assert action.patch["metadata"]["labels"] == {OWNER_LABEL: "alice"}

    changed = build_children(ws(image="new/image:2"), settings())["Pod"]
    assert compare("Pod", changed, actual).verb == "recreate"
    tolerated = copy.deepcopy(actual)
    tolerated["spec"]["tolerations"].append({"key": "x", "operator": "Exists"})
    assert compare("Pod", desired, tolerated).verb == "recreate"
    # Tolerations the operator was configured with are ours, not drift; one more is.
    toleration = {"key": "dedicated", "operator": "Equal", "value": "dev", "effect": "NoSchedule"}
    placement = {
        "DEVPLANE_WORKSPACE_NODE_SELECTOR": "dedicated=dev",
        "DEVPLANE_WORKSPACE_TOLERATIONS": json.dumps([toleration]),
    }
    desired_there = build_children(ws(env=placement), settings(**placement))["Pod"]
    assert desired_there["spec"]["nodeSelector"] == {"dedicated": "dev"}
    there = live("Pod", desired_there)
    there["spec"]["tolerations"].insert(0, toleration)
    assert compare("Pod", desired_there, there).verb == "none"
    there["spec"]["tolerations"].append({"key": "x", "operator": "Exists"})
    assert compare("Pod", desired_there, there).verb == "recreate"
    finished = copy.deepcopy(actual)
    finished["status"]["phase"] = "Failed"
    assert compare("Pod", desired, finished).verb == "recreate"
    terminating = copy.deepcopy(actual)
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    assert compare("Pod", desired, terminating).verb == "wait"


def test_pvc_grows_but_never_shrinks_and_ownership_follows_reclaim_policy():
    desired = build_children(ws(storage={"size": "20Gi"}), settings())["PersistentVolumeClaim"]
    smaller = live(
        "PersistentVolumeClaim", build_children(ws(), settings())["PersistentVolumeClaim"]
    )
    action = compare("PersistentVolumeClaim", desired, smaller)
    assert action.patch["spec"] == {"resources": {"requests": {"storage": "20Gi"}}}
    small = build_children(ws(storage={"size": "1Gi"}), settings())["PersistentVolumeClaim"]
    assert compare("PersistentVolumeClaim", small, smaller).verb == "none"
    deleting = build_children(ws(storage={"reclaimPolicy": "Delete"}), settings())
    action = compare("PersistentVolumeClaim", deleting["PersistentVolumeClaim"], smaller)
    assert action.patch["metadata"]["ownerReferences"][0]["kind"] == "Workspace"


def test_replacing_patch_removes_foreign_keys():
    assert replacing_patch({"a": 1, "b": {"c": 1, "d": 2}}, {"b": {"c": 1}}) == {
        "a": None,
        "b": {"d": None},
    }
    assert normalize({"a": [], "b": {}, "c": None, "d": [{"e": {}}]}) == {"d": [{}]}


# ------------------------------------------------------------------ status


def pod(**status) -> dict:
    manifest = build_children(ws(), settings())["Pod"]
    return live("Pod", manifest, status=status)


def pvc(phase: str = "Bound", created: datetime = NOW) -> dict:
    manifest = build_children(ws(), settings())["PersistentVolumeClaim"]
    body = live("PersistentVolumeClaim", manifest, status={"phase": phase})
    body["metadata"]["creationTimestamp"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
    return body


def conds(status: dict) -> dict:
    return {c["type"]: c for c in status["conditions"]}


READY_POD = {
    "phase": "Running",
    "podIP": "127.20.0.5",
    "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
}


def test_running_status_has_every_field():
    status, recheck = compute_status(ws(), pvc(), pod(**READY_POD), {}, NOW, 120)
    assert status["phase"] == "Running" and status["message"] == ""
    assert status["podIP"] == "127.20.0.5" and status["podName"] == "ws-alice"
    assert status["url"] == "http://ws-alice.ws.svc:8888"
    assert status["observedGeneration"] == 3
    assert {t: c["status"] for t, c in conds(status).items()} == {
        "StorageReady": "True",
        "PodReady": "True",
        "Ready": "True",
    }
    assert recheck is None


def test_unchanged_status_keeps_transition_times():
    first, _ = compute_status(ws(), pvc(), pod(**READY_POD), {}, NOW, 120)
    again, _ = compute_status(ws(), pvc(), pod(**READY_POD), first, NOW + timedelta(hours=1), 120)
    assert again == first


def test_image_pull_failure_as_the_local_cluster_reports_it():
    kwok_status = {
        "phase": "Pending",
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"},
        ],
        "containerStatuses": [
            {
                "name": "workspace",
                "ready": False,
                "state": {
                    "waiting": {
                        "reason": "ImagePullBackOff",
                        "message": 'Back-off pulling image "registry.invalid/ws:1"',
                    }
                },
            }
        ],
    }
    w = ws(image="registry.invalid/ws:1")
    manifest = build_children(w, settings())["Pod"]
    status, _ = compute_status(w, pvc(), live("Pod", manifest, status=kwok_status), {}, NOW, 120)
    ready = conds(status)["Ready"]
    assert ready["reason"] == "ImagePullFailed" and ready["status"] == "False"
    assert "registry.invalid/ws:1" in status["message"] and "cannot be pulled" in status["message"]
    assert status["phase"] == "Starting"


def test_unschedulable_and_volume_pending_and_stopped():
    unschedulable = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient cpu.",
            }
        ],
    }
    status, _ = compute_status(ws(), pvc(), pod(**unschedulable), {}, NOW, 120)
    assert conds(status)["Ready"]["reason"] == "Unschedulable"
    assert "Insufficient cpu" in status["message"] and status["phase"] == "Pending"
    # While the volume is unbound, the scheduler's complaint is about the volume: not stuck.
    status, _ = compute_status(ws(), pvc("Pending"), pod(**unschedulable), {}, NOW, 120)
    assert conds(status)["Ready"]["reason"] == "WaitingForVolume"
    assert conds(status)["PodReady"]["reason"] == "WaitingForVolume"
    # Nor when the volume has just been bound and the scheduler has not seen it yet (it
    # retries then): its own words say it is the volume it waits for.
    unbound = json.loads(json.dumps(unschedulable))
    unbound["conditions"][0]["message"] = (
        "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )
    status, _ = compute_status(ws(), pvc(), pod(**unbound), {}, NOW, 120)
    assert conds(status)["Ready"]["reason"] == "WaitingForVolume", status

    young = pvc("Pending", created=NOW - timedelta(seconds=10))
    status, recheck = compute_status(ws(), young, None, {}, NOW, 120)
    assert conds(status)["StorageReady"]["reason"] == "WaitingForVolume"
    assert recheck is not None and 100 < recheck <= 111
    old = pvc("Pending", created=NOW - timedelta(seconds=300))
    status, _ = compute_status(ws(), old, None, {}, NOW, 120)
    assert conds(status)["Ready"]["reason"] == "VolumePending"
    assert "has not been bound" in status["message"]

    stopped = ws(started=False)
    status, _ = compute_status(stopped, pvc(), pod(**READY_POD), {}, NOW, 120)
    assert status["phase"] == "Stopping"
    status, _ = compute_status(stopped, pvc(), None, {}, NOW, 120)
    assert status["phase"] == "Stopped" and "podIP" not in status
    assert conds(status)["Ready"]["reason"] == "Stopped"


def test_a_late_copy_of_a_deleted_object_does_not_come_back():
    """The DELETE's response can reach the cache after the watch's DELETED event: the cache
    must not hold the deleted pod again (a stopped Workspace read "Stopping" until a resync)."""
    cache = Cache()
    pod = {"metadata": {"namespace": "ws", "name": "ws-a", "uid": "u1", "resourceVersion": "5"}}
    terminating = {"metadata": {**pod["metadata"], "resourceVersion": "6",
                                "deletionTimestamp": "2026-01-01T00:00:00Z"}}  # fmt: skip
    cache.put("Pod", pod, owner="a")
    cache.remove("Pod", "ws", "ws-a", uid="u1")  # the watch's DELETED event
    assert cache.put("Pod", terminating, owner="a") is False  # then the DELETE's response
    assert cache.get("Pod", "ws", "ws-a") is None
    # A new pod under the same name is news, and a late copy of the old one does not replace it.
    again = {"metadata": {"namespace": "ws", "name": "ws-a", "uid": "u2", "resourceVersion": "9"}}
    assert cache.put("Pod", again, owner="a") is True
    assert cache.put("Pod", terminating, owner="a") is False
    assert cache.get("Pod", "ws", "ws-a")["metadata"]["uid"] == "u2"


def test_the_cache_keeps_one_copy_of_what_workspaces_share_and_nothing_else_changes():
    """Two users' children hold the same rules, files and containers once (the memory of
    10,000 Workspaces); each still reads exactly as projected, and its own parts (the pod
    selector, names, uids) stay its own."""
    cache = Cache()
    for owner, uid in (("alice", "u1"), ("bob", "u2")):
        for kind, manifest in build_children(ws(owner), settings()).items():
            body = json.loads(json.dumps(manifest))  # as decoded from a watch event
            body["metadata"] |= {"uid": f"{uid}-{kind}", "resourceVersion": "7"}
            assert cache.put(kind, body, owner=f"{owner}") is True
            assert cache.get(kind, "ws", manifest["metadata"]["name"]) == json.loads(
                json.dumps(project(kind, copy.deepcopy(body)))
            )
    a, b = (build_children(ws(o), settings()) for o in ("alice", "bob"))

    def cached(kind: str, children: dict) -> dict:
        return cache.get(kind, "ws", children[kind]["metadata"]["name"])

    for kind, path in (
        ("NetworkPolicy", ("spec", "egress")),
        ("NetworkPolicy", ("spec", "ingress")),
        ("ConfigMap", ("data",)),
        ("Pod", ("spec", "containers")),
        ("Service", ("spec", "ports")),
    ):
        one, other = cached(kind, a), cached(kind, b)
        for step in path:
            one, other = one[step], other[step]
        assert one is other, (kind, path)
    selectors = [cached("NetworkPolicy", c)["spec"]["podSelector"] for c in (a, b)]
    assert selectors[0] != selectors[1]
    # An echo of the version held is not news and changes nothing.
    held = cached("Pod", a)
    echo = json.loads(json.dumps(a["Pod"]))
    echo["metadata"] |= {"uid": "u1-Pod", "resourceVersion": "7", "labels": {"changed": "x"}}
    assert cache.put("Pod", echo, owner="alice") is False
    assert cached("Pod", a) is held


def test_the_shared_table_stops_growing_at_its_limit():
    share = SharedValues(limit=1)
    first, again = {"a": [1]}, {"a": [1]}
    assert share(first) == first and share(again) is share(first)
    other = {"b": 2}
    assert share(other) is other and len(share) == 1  # kept as it is, not remembered


# ------------------------------------------------------------------ what is written at once


def test_the_steps_of_a_start_are_progress_and_its_end_is_news():
    created, _ = compute_status(ws(), None, None, {}, NOW, 120)
    scheduled = {"conditions": [{"type": "PodScheduled", "status": "True"}]}
    starting, _ = compute_status(ws(), pvc(), pod(**scheduled), created, NOW, 120)
    running, _ = compute_status(ws(), pvc(), pod(**READY_POD), starting, NOW, 120)
    assert (created["phase"], starting["phase"], running["phase"]) == (
        "Pending", "Starting", "Running",
    )  # fmt: skip
    assert not is_news({}, created)
    assert not is_news(created, starting)
    assert is_news(starting, running)
    assert is_news({}, running)  # a start quick enough to skip the steps


def test_losing_ready_a_stuck_cause_failed_and_stopped_are_news():
    running, _ = compute_status(ws(), pvc(), pod(**READY_POD), {}, NOW, 120)
    restarting, _ = compute_status(ws(), pvc(), None, running, NOW, 120)
    assert is_news(running, restarting)  # the hub's route must go at once
    pulling = {"containerStatuses": [{"name": "workspace", "state": {
        "waiting": {"reason": "ErrImagePull", "message": "not found"}}}]}  # fmt: skip
    stuck, _ = compute_status(ws(), pvc(), pod(**pulling), restarting, NOW, 120)
    assert is_news(restarting, stuck)
    assert not is_news(stuck, dict(stuck, message="another wording"))
    assert is_news(stuck, failed_status(3, "refused", stuck, NOW, "Refused"))
    stopped, _ = compute_status(ws(started=False), pvc(), None, running, NOW, 120)
    assert stopped["phase"] == "Stopped" and is_news(restarting, stopped)


def test_a_new_generation_of_an_end_state_is_news():
    """The spawner's start() and stop() wait for their own generation's Ready, stuck cause,
    Failed or Stopped (progress.is_current), so a new generation of each is written at once;
    so is a failure for another reason."""
    running, _ = compute_status(ws(), pvc(), pod(**READY_POD), {}, NOW, 120)
    stopped, _ = compute_status(ws(started=False), pvc(), None, running, NOW, 120)
    pulling = {"containerStatuses": [{"name": "workspace", "state": {
        "waiting": {"reason": "ErrImagePull", "message": "not found"}}}]}  # fmt: skip
    stuck, _ = compute_status(ws(), pvc(), pod(**pulling), {}, NOW, 120)
    failed = failed_status(3, "refused: registry", running, NOW, "Refused")
    for status in (running, stopped, stuck, failed):
        newer = dict(status, observedGeneration=status["observedGeneration"] + 1)
        assert is_news(status, newer), status["phase"]
    assert is_news(failed, dict(failed, message="refused: another cause"))
    starting, _ = compute_status(ws(), pvc(), pod(conditions=[]), {}, NOW, 120)
    assert not is_news(
        starting, dict(starting, observedGeneration=starting["observedGeneration"] + 1)
    )
