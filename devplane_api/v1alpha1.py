"""The words of the Workspace contract, each defined once.

The CRD (chart/crds/workspaces.devplane.io.yaml) is the schema; this module is what code on
either side of it needs to name: the resource, the labels every child carries, the port and
entry point of the auth proxy, and the status vocabulary. docs/workspace-api.md explains each.
"""

from __future__ import annotations

from . import naming

GROUP = "devplane.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Workspace"
PLURAL = "workspaces"

# Labels on every Workspace and child (docs/workspace-api.md, "Labels").
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "devplane"
MANAGED_BY_SELECTOR = f"{MANAGED_BY}={MANAGED_BY_VALUE}"
APP_NAME = "app.kubernetes.io/name"
APP_NAME_VALUE = "devplane-workspace"
WORKSPACE_LABEL = f"{GROUP}/workspace"
OWNER_LABEL = f"{GROUP}/owner"
SERVER_LABEL = f"{GROUP}/server"
# The owner's JupyterHub name verbatim (a label value cannot hold every user name).
OWNER_ANNOTATION = f"{GROUP}/owner"

# The auth proxy: the port users reach the workspace through, and the module its container runs
# (from the hub image). The local harness starts the same module.
PROXY_PORT = 8888
PROXY_PORT_NAME = "http"
AUTHPROXY_MODULE = "devplane_authproxy"
# The workspace's LLM gateway: served by the auth proxy's container on the pod's loopback, where
# opencode's providers point (docs/llm-gateway.md). Not a containerPort: nothing outside the
# pod may call it.
LLM_GATEWAY_PORT = 8899
# The auth proxy's Prometheus metrics (the gateway's token counters), for the cluster's monitoring.
METRICS_PORT = 9102
METRICS_PORT_NAME = "metrics"

PHASES = ("Pending", "Starting", "Running", "Stopping", "Stopped", "Failed")
# The phases a client's wait ends on (a start on Running or Failed, a stop on Stopped): the
# operator writes and announces their arrival at once, never held back with progress.
SETTLED_PHASES = frozenset({"Running", "Failed", "Stopped"})

# The Ready=False reason of a Workspace the operator will not run because it references
# something it may not (another Workspace's hub Secret, a Secret not on the API-key allow-list,
# an image from a registry not allowed); the message says which and how to fix it.
REFUSED = "Refused"

# Ready=False reasons that waiting will not cure. The operator sets them; the spawner fails
# a start at once on them instead of holding the user on the spawn page until start_timeout.
# (Slow-to-clear causes such as VolumePending are reported only after the operator's
# stuck-after delay.)
STUCK_REASONS = frozenset(
    {
        "ImagePullFailed",
        "Unschedulable",
        "VolumePending",
        "ContainerConfigError",
        "CrashLoopBackOff",
        "InvalidSpec",
        REFUSED,
    }
)


# The scheduler's words (stable since Kubernetes 1.12) for a pod it will not place until its
# claim is bound. Both the operator and the spawner read it as a wait for the volume, not
# as "Unschedulable": the scheduler retries once the volume binds.
SCHEDULER_UNBOUND_CLAIM = "unbound immediate PersistentVolumeClaims"


def workspace_labels(name: str, owner: str, server_name: str = "") -> dict[str, str]:
    """The labels of the Workspace ``name`` and of every child it owns."""
    labels = {
        MANAGED_BY: MANAGED_BY_VALUE,
        APP_NAME: APP_NAME_VALUE,
        WORKSPACE_LABEL: name,
        OWNER_LABEL: naming.safe_slug(owner),
    }
    if server_name:
        labels[SERVER_LABEL] = naming.safe_slug(server_name)
    return labels
