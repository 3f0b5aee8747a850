"""Reading a Workspace's status: readiness, fatal causes, spawn-page events, the URL."""

from __future__ import annotations

import pytest

from devplane_api.v1alpha1 import PROXY_PORT
from devplane_spawner import progress


def ws(generation=2, observed=2, started=True, phase="Starting", conds=(), **status):
    return {
        "metadata": {"name": "alice", "generation": generation},
        "spec": {"started": started},
        "status": {
            "phase": phase,
            "observedGeneration": observed,
            "conditions": [
                {"type": t, "status": s, "reason": r, "message": f"{t} {r}"} for t, s, r in conds
            ],
            **status,
        },
    }


READY = [("StorageReady", "True", "Bound"), ("PodReady", "True", "Ready"), ("Ready", "True", "Ok")]


def test_ready_needs_current_generation_condition_and_address():
    assert progress.is_ready(ws(conds=READY, url="http://ws-alice.ns.svc:8888"))
    assert not progress.is_ready(ws(observed=1, conds=READY, url="http://x"))  # stale status
    assert not progress.is_ready(ws(conds=READY))  # no address yet
    assert not progress.is_ready(ws(started=False, conds=READY, url="http://x"))
    assert not progress.is_ready({"metadata": {"generation": 1}, "spec": {"started": True}})


def test_condition_generation_wins_over_status_generation():
    obj = ws(observed=2, conds=READY, url="http://x")
    obj["status"]["conditions"][2]["observedGeneration"] = 1
    assert not progress.is_ready(obj)


def test_stopped():
    assert progress.is_stopped(ws(started=False, phase="Stopped"))
    assert not progress.is_stopped(ws(started=False, phase="Stopping"))
    assert not progress.is_stopped(ws(started=False, phase="Stopped", observed=1))
    assert not progress.is_stopped(ws(started=True, phase="Stopped"))


def test_image_pull_failure_is_fatal_with_the_operator_message():
    obj = ws(
        conds=[("StorageReady", "True", "Bound"), ("Ready", "False", "ImagePullFailed")],
        message="the image registry.invalid/ws:1 cannot be pulled",
    )
    assert progress.fatal_message(obj) == (
        "Your workspace cannot start: the image registry.invalid/ws:1 cannot be pulled"
    )
    # Only for the current generation: the new spec may have fixed the image.
    stale = ws(observed=1, conds=[("Ready", "False", "ImagePullFailed")], message="old")
    assert progress.fatal_message(stale) is None
    # A transient reason is not fatal; a configured reason list is honoured.
    waiting = ws(conds=[("Ready", "False", "PodStarting")])
    assert progress.fatal_message(waiting) is None
    assert progress.fatal_message(waiting, {"PodStarting"}) is not None


def test_unschedulable_for_an_unbound_volume_is_a_wait_not_a_failure():
    conds = [("StorageReady", "True", "Bound"), ("Ready", "False", "Unschedulable")]
    waiting = ws(
        conds=conds,
        message="0/1 nodes are available: pod has unbound immediate "
        "PersistentVolumeClaims. not found",
    )
    assert progress.fatal_message(waiting) is None
    too_big = ws(conds=conds, message="0/1 nodes are available: 1 Insufficient cpu.")
    assert "Insufficient cpu" in progress.fatal_message(too_big)


def test_failed_phase_is_fatal():
    assert "disk full" in progress.fatal_message(ws(phase="Failed", message="disk full"))


def test_status_events_follow_the_conditions():
    def messages(obj):
        return [e.message for e in progress.status_events(obj)]

    assert messages(ws(conds=[])) == [
        "Your workspace has been requested",
        "Creating your home volume",
    ]
    assert messages(ws(conds=[("StorageReady", "True", "Bound")]))[-1] == "Starting your workspace"
    done = progress.status_events(ws(conds=READY, podIP="127.20.0.5"))
    assert [e.progress for e in done] == [10, 40, 80, 95]
    assert len({e.key for e in done}) == len(done)


def test_a_stream_says_each_state_once_with_a_bar_that_never_goes_back():
    lines = progress.ProgressLines()
    first = list(lines.fresh(progress.workspace_progress(ws(conds=[]))))
    assert [e["message"] for e in first] == [
        "Your workspace has been requested",
        "Creating your home volume",
    ]
    event = progress.kube_event({"message": "Pulling", "metadata": {"uid": "7"}})
    later = [
        *lines.fresh(progress.workspace_progress(ws(conds=[("StorageReady", "True", "Bound")]))),
        *lines.fresh([event, event]),
    ]
    assert [e["message"] for e in later] == [
        "Your home volume is ready",
        "Starting your workspace",
        "Pulling",
    ]
    assert [e["progress"] for e in first + later] == [10, 20, 40, 60, 60]


def test_a_failing_start_adds_its_cause_as_the_last_line():
    failing = ws(conds=[("Ready", "False", "ImagePullFailed")], message="no such image")
    assert progress.workspace_progress(failing)[-1].message == (
        "Your workspace cannot start: no such image"
    )


def test_kube_event_lines():
    line = progress.kube_event({"type": "Warning", "message": "Back-off", "metadata": {"uid": "1"}})
    assert line.message == "Warning: Back-off" and line.key == "event:1"
    assert progress.kube_event({"message": ""}) is None


def test_server_url_by_connect_mode():
    obj = ws(conds=READY, url=f"http://ws-alice.ns.svc:{PROXY_PORT}", podIP="127.20.0.7")
    assert progress.server_url(obj, "service", PROXY_PORT) == "http://ws-alice.ns.svc:8888"
    assert progress.server_url(obj, "pod-ip", PROXY_PORT) == "http://127.20.0.7:8888"
    with pytest.raises(ValueError, match="podIP"):
        progress.server_url(ws(url="http://x"), "pod-ip", PROXY_PORT)


def test_pod_not_ready_only_when_the_operator_says_so():
    def ws(*conds):
        return {"status": {"conditions": [{"type": t, "status": s} for t, s in conds]}}

    assert progress.pod_not_ready(ws(("PodReady", "False"), ("Ready", "False")))
    assert not progress.pod_not_ready(ws(("PodReady", "True"), ("Ready", "True")))
    assert not progress.pod_not_ready(ws())  # nothing reported yet: not a verdict
