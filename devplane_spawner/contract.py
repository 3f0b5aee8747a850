"""Words of the Workspace contract that the spawner and the operator must agree on.

Kept apart from both so neither imports the other's dependencies (the operator image has
no JupyterHub; the spawner does not need kopf). docs/workspace-api.md describes them.
"""

PHASES = ("Pending", "Starting", "Running", "Stopping", "Stopped", "Failed")

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
    }
)
