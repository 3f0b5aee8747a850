"""Prometheus metrics of the operator (all on the default registry, served by server.py).

The default registry also carries the process collector (process_resident_memory_bytes, CPU),
which the benchmark and dashboards use for memory.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "devplane_operator_reconciles_total",
    "Reconciles of a Workspace, by result (ok, requeue, failed, error).",
    ["result"],
)
RECONCILE_DURATION = Histogram(
    "devplane_operator_reconcile_duration_seconds",
    "Time spent in one reconcile of one Workspace.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RECONCILE_ERRORS = Counter(
    "devplane_operator_reconcile_errors_total",
    "Reconciles that failed: temporary (retried with back-off) or permanent (phase Failed).",
    ["kind"],
)
API_WRITES = Counter(
    "devplane_operator_api_writes_total",
    "Every write the operator sends to the API server, by verb and resource.",
    ["verb", "resource"],
)
STATUS_WRITES = Counter(
    "devplane_operator_status_writes_total",
    "Workspace status writes by why: news a reader acts on (written at once), progress (held "
    "up to DEVPLANE_STATUS_HOLD_SECONDS, then written), failure (a failure report).",
    ["why"],
)
WORKSPACES = Gauge(
    "devplane_operator_workspaces",
    "Workspaces known to this replica, by status.phase ('' = not reported yet).",
    ["phase"],
)
# The work queue, named as client-go's workqueue metrics are (depth, adds, latency, retries).
QUEUE_DEPTH = Gauge("devplane_operator_queue_depth", "Workspace keys waiting for a reconcile.")
QUEUE_ADDS = Counter(
    "devplane_operator_workqueue_adds_total",
    "Workspace keys put on the work queue (a key already waiting is not added twice).",
)
QUEUE_LATENCY = Histogram(
    "devplane_operator_workqueue_queue_duration_seconds",
    "Time a Workspace key waited on the queue before a worker took it.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
QUEUE_RETRIES = Counter(
    "devplane_operator_workqueue_retries_total",
    "Reconciles queued again with back-off after a temporary failure.",
)
# Every request the operator makes to the API server (kopf's watches are kopf's own).
API_REQUESTS = Counter(
    "devplane_operator_api_requests_total",
    "Requests to the API server, by verb, resource and HTTP status code (0: unreachable).",
    ["verb", "resource", "code"],
)
API_LATENCY = Histogram(
    "devplane_operator_api_request_duration_seconds",
    "Time an API server request took, by verb and resource.",
    ["verb", "resource"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RESYNCS = Counter(
    "devplane_operator_resyncs_total",
    "Completed periodic resyncs (every Workspace reconciled once and the queue drained).",
)
RESYNC_DURATION = Gauge(
    "devplane_operator_last_resync_seconds", "Duration of the last completed resync."
)
LEADER = Gauge("devplane_operator_leader", "1 while this replica holds the leader Lease.")
