"""Crash-safety, steady state and two replicas, against the local control plane."""

from __future__ import annotations

import json
import time

from op_helpers import apply, condition, wait_for, workspace

from devplane_api.v1alpha1 import MANAGED_BY, MANAGED_BY_VALUE, PLURAL

WRITES = "devplane_operator_api_writes_total"


def listing(kubectl, namespace: str, kind: str) -> list[dict]:
    return json.loads(kubectl("get", kind, "-n", namespace, "-o", "json"))["items"]


def all_ready(kubectl, namespace: str, count: int) -> bool:
    items = listing(kubectl, namespace, PLURAL)
    ready = [w for w in items if condition(w, "Ready").get("status") == "True"]
    return len(ready) == count


def test_killed_mid_reconcile_converges_without_duplicates_or_lost_volumes(
    kubectl, make_namespace, run_operator
):
    ns = make_namespace("op")
    owners = [f"user{i}" for i in range(30)]
    op = run_operator(ns)
    apply(kubectl, ns, *(workspace(o) for o in owners))

    # Kill it while it is still creating children: some pods exist, not all are ready.
    wait_for(
        "the operator to have created a few pods",
        lambda: len(listing(kubectl, ns, "pods")) >= 3,
        timeout=120,
        interval=0.1,
    )
    op.kill()
    pvcs_before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in listing(kubectl, ns, "pvc")}
    ready_before = sum(
        condition(w, "Ready").get("status") == "True" for w in listing(kubectl, ns, PLURAL)
    )
    assert ready_before < len(owners), "the operator was not killed mid-way"

    run_operator(ns)
    wait_for(f"all {len(owners)} workspaces Ready", lambda: all_ready(kubectl, ns, 30), 120)

    pods = listing(kubectl, ns, "pods")
    assert sorted(p["metadata"]["name"] for p in pods) == sorted(f"ws-{o}" for o in owners)
    assert all(not p["metadata"].get("deletionTimestamp") for p in pods)
    pvcs = {p["metadata"]["name"]: p["metadata"]["uid"] for p in listing(kubectl, ns, "pvc")}
    assert sorted(pvcs) == sorted(f"home-{o}" for o in owners)
    for name, uid in pvcs_before.items():  # no volume created before the kill was replaced
        assert pvcs[name] == uid, name
    for kind in ("services", "configmaps", "networkpolicies"):
        owned = [
            i for i in listing(kubectl, ns, kind)
            if i["metadata"].get("labels", {}).get(MANAGED_BY) == MANAGED_BY_VALUE
        ]  # fmt: skip
        assert len(owned) == len(owners), kind


def test_resync_of_unchanged_workspaces_writes_nothing(kubectl, make_namespace, run_operator):
    ns = make_namespace("op")
    op = run_operator(ns, DEVPLANE_RESYNC_SECONDS="1")
    apply(kubectl, ns, *(workspace(f"quiet{i}") for i in range(5)))
    wait_for("5 workspaces Ready", lambda: all_ready(kubectl, ns, 5), 120)

    def resyncs() -> float:
        return op.metric("devplane_operator_resyncs_total")

    # Let one resync pass after everything is Ready, then measure across two more.
    start = resyncs()
    wait_for("a resync", lambda: resyncs() > start, 30, interval=0.2)
    writes = op.metric(WRITES)
    reconciles = op.metric("devplane_operator_reconciles_total", {"result": "ok"})
    start = resyncs()
    wait_for("two more resyncs", lambda: resyncs() >= start + 2, 30, interval=0.2)
    assert op.metric("devplane_operator_reconciles_total", {"result": "ok"}) >= reconciles + 10
    assert op.metric(WRITES) == writes, op.metrics_text()
    assert writes > 0  # the counter does count: creating 5 workspaces took writes


def test_two_replicas_one_leader_and_a_fast_takeover(kubectl, make_namespace, run_operator):
    ns = make_namespace("op")
    lease = {"DEVPLANE_LEASE_SECONDS": "4"}
    first = run_operator(ns, leader_election=True, **lease)
    second = run_operator(ns, leader_election=True, wait=False, **lease)
    second.wait_ready(path="/healthz")  # up and alive...
    time.sleep(2)
    assert second._get("/readyz")[0] == 503  # ...but a standby
    assert second._get("/healthz")[0] == 200  # but alive
    assert first.metric("devplane_operator_leader") == 1
    assert second.metric("devplane_operator_leader") == 0

    apply(kubectl, ns, workspace("lena"))
    wait_for("lena Ready", lambda: all_ready(kubectl, ns, 1), 120)
    assert second.metric("devplane_operator_reconciles_total") == 0

    first.kill()  # no chance to release the Lease: the standby waits it out
    killed = time.monotonic()
    second.wait_ready(timeout=30)
    assert time.monotonic() - killed < 15
    apply(kubectl, ns, workspace("mona"))
    wait_for("mona Ready too", lambda: all_ready(kubectl, ns, 2), 120)
    assert second.metric("devplane_operator_reconciles_total") > 0


def test_the_work_queue_and_every_api_call_are_measured(kubectl, make_namespace, run_operator):
    """The metrics a dashboard needs (docs/metrics.md): queue adds and wait, retries, and each
    API request by verb, resource and status code, with its latency."""
    ns = make_namespace("op")
    op = run_operator(ns)
    apply(kubectl, ns, workspace("mira"))
    wait_for("mira Ready", lambda: all_ready(kubectl, ns, 1), 120)
    assert op.metric("devplane_operator_workqueue_adds_total") >= 1
    assert op.metric("devplane_operator_workqueue_queue_duration_seconds_count") >= 1
    # The pod was created (201) and the Workspace's status written (200).
    created = {"verb": "POST", "resource": "pods", "code": "201"}
    assert op.metric("devplane_operator_api_requests_total", created) >= 1, op.metrics_text()
    status = {"verb": "PATCH", "resource": PLURAL, "code": "200"}
    assert op.metric("devplane_operator_api_requests_total", status) >= 1
    latency = {"verb": "POST", "resource": "pods"}
    assert op.metric("devplane_operator_api_request_duration_seconds_count", latency) >= 1
