"""kopf handlers: every watch event goes into the cache and queues its Workspace.

All handlers are ``@kopf.on.event``: they react to what the watch delivers (including the
initial listing, which covers "resume" after a restart) and never store progress on the
object. So kopf writes nothing to a Workspace — no progress annotations, no last-handled
configuration, and no finalizer: deleting a Workspace never waits for the operator, even when
it is down. The actual work happens in reconcile.Controller's workers.

The controller is handed over in kopf's ``memo`` (see app.py).
"""

from __future__ import annotations

import logging
from typing import Any, cast

import kopf

from devplane_api.v1alpha1 import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)


class NoDiffBase(kopf.DiffBaseStorage):
    """A diff-base storage that stores nothing and computes nothing.

    kopf builds a deep-copied "essence" of every object on every event to detect changes for
    on.create/on.update handlers. We have none (everything is an on.event handler), and that
    copy was the operator's biggest CPU cost at 1,000 Workspaces, so we switch it off.
    """

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        return kopf.BodyEssence()

    def fetch(self, *, body: Any) -> None:
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None


def _body(event: kopf.RawEvent) -> dict[str, Any]:
    """The watched object as the cache keeps it: the API server's JSON, decoded.

    kopf types it as its RawBody TypedDict, which describes only the fields kopf reads; the
    object itself is the plain dict from the watch stream, passed on without a copy.
    """
    return cast(dict[str, Any], event["object"])


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Our own Events (events.py) say what matters; kopf's would post one per handler log line.
    settings.posting.enabled = False
    # Reconnect watches well before any proxy or load balancer cuts them.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    # Shut down quickly on SIGTERM: our per-object work is in reconcile's queue, not in kopf's
    # per-object workers, so there is nothing for them to finish.
    settings.queueing.exit_timeout = 0.5
    settings.queueing.idle_timeout = 2.0
    settings.persistence.diffbase_storage = NoDiffBase()
    # Watch only the namespaces we are given, without listing Namespaces and CRDs cluster-wide:
    # the chart grants the operator namespaced Roles only, and with scanning on kopf retries
    # those forbidden lists for about a minute before it starts.
    settings.scanning.disabled = True
    # Never add a finalizer (we have no deletion handlers; this is belt and braces).
    settings.persistence.finalizer = f"{GROUP}/unused-finalizer"


@kopf.on.event(GROUP, VERSION, PLURAL)
async def workspace_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.on_workspace_event(event.get("type"), _body(event))


# The children, by kind: the resource kopf watches for each (group/version, plural).
CHILD_RESOURCES = {
    "Pod": ("v1", "pods"),
    "Service": ("v1", "services"),
    "ConfigMap": ("v1", "configmaps"),
    "PersistentVolumeClaim": ("v1", "persistentvolumeclaims"),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies"),
}


def _register_child_handler(kind: str, api_version: str, plural: str) -> None:
    group, _, version = api_version.rpartition("/")

    async def child_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
        memo.controller.on_child_event(kind, event.get("type"), _body(event))

    kopf.on.event(group=group or None, version=version, plural=plural, id=f"{kind}-event")(
        child_event
    )


for _kind, (_api_version, _plural) in CHILD_RESOURCES.items():
    _register_child_handler(_kind, _api_version, _plural)
