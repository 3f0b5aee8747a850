"""The one idempotent reconcile: Workspace -> children and status.

``Controller.reconcile(key)`` reads the Workspace and its children from the cache, builds
every desired child with the pure builders, applies only the differences (compare.py), then
computes the status and writes it only if it changed. Whatever triggered it — a Workspace
event, an event on a child, the periodic resync, a retry — it does the same thing, so it is
safe to run any number of times, from any state, including right after the operator was
killed half-way through.

Errors: a spec the operator cannot realise or refuses (policy.py) raises PermanentFailure
(phase Failed, no retry until the Workspace changes); an API call refused for good (403, 422)
is permanent too but re-checked slowly, since RBAC or admission can be fixed; anything else
raises TemporaryFailure and is retried with exponential back-off. These are our own types, not
kopf's: this module's workers do the retrying, kopf never sees them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from devplane_api import naming
from devplane_api.v1alpha1 import (
    GROUP,
    KIND,
    MANAGED_BY_SELECTOR,
    OWNER_ANNOTATION,
    PLURAL,
    REFUSED,
    SETTLED_PHASES,
    STUCK_REASONS,
    VERSION,
)

from .builders import build_children
from .cache import Cache, Key, workspace_of
from .compare import compare, normalize, replacing_patch
from .events import build_event
from .kube import RESOURCES, Kube, KubeError
from .metrics import (
    RECONCILE_DURATION,
    RECONCILE_ERRORS,
    RECONCILES,
    RESYNC_DURATION,
    RESYNCS,
    STATUS_WRITES,
)
from .model import Refused, SpecError, Workspace, parse_workspace
from .policy import check_hub_secret, check_spec
from .settings import Settings
from .status import compute_status, failed_status, is_news, ready_reason
from .workqueue import WorkQueue

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The operator cannot start its work; the message says why and what to fix."""


Obj = dict[str, Any]
# Children that do not need each other: written concurrently, one round trip instead of four
# before the pod can be created (the pod's start latency is the spawn benchmark's figure).
INDEPENDENT_KINDS = ("PersistentVolumeClaim", "ConfigMap", "Service", "NetworkPolicy")
# The pod last: it mounts the PVC and the ConfigMap, and must never run without its
# NetworkPolicy.
CHILD_KINDS = (*INDEPENDENT_KINDS, "Pod")
_PVC = "PersistentVolumeClaim"
MAX_BACKOFF = 60.0
RECHECK_PERMANENT = 60.0


class PermanentFailure(Exception):
    """The Workspace cannot be realised as it stands: report Failed with ``reason``, do not
    retry."""

    def __init__(self, message: str, reason: str = "InvalidSpec") -> None:
        super().__init__(message)
        self.reason = reason


class TemporaryFailure(Exception):
    """Worth retrying: after at least ``delay`` seconds (the back-off may wait longer)."""

    def __init__(self, message: str, delay: float = 0) -> None:
        super().__init__(message)
        self.delay = delay


def _now() -> datetime:
    return datetime.now(UTC)


def _rank(err: BaseException) -> int:
    """Which of several concurrent failures a reconcile raises: the lowest rank.

    A permanent refusal must not hide behind a retry (it is what makes the Workspace Failed
    with the server's message), nor must an unexpected error (a bug); a temporary one is
    raised only when nothing worse happened. Cancellation goes first: it must stop the
    reconcile.
    """
    if not isinstance(err, Exception):
        return 0
    if isinstance(err, PermanentFailure) or (isinstance(err, KubeError) and err.permanent):
        return 1
    if isinstance(err, KubeError | TemporaryFailure):
        return 3
    return 2


class Controller:
    """Reconciles Workspaces; owns the cache, the queue and the workers."""

    def __init__(self, settings: Settings, kube: Kube, cache: Cache, queue: WorkQueue[Key]) -> None:
        self.settings = settings
        self.kube = kube
        self.cache = cache
        self.queue = queue
        self._failures: dict[Key, int] = {}
        # When each Workspace's unwritten progress-only status change was first seen.
        self._held_since: dict[Key, float] = {}

    # ---------------------------------------------------------------- event intake

    def on_workspace_event(self, type_: str | None, body: Obj) -> None:
        meta = body.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if type_ == "DELETED":
            self.cache.remove(KIND, *key, uid=meta.get("uid"))
            self.queue.forget(key)
            self._failures.pop(key, None)
            self._held_since.pop(key, None)
            return
        if self.cache.put(KIND, body):
            self.queue.add(key)

    def on_child_event(self, kind: str, type_: str | None, body: Obj) -> None:
        meta = body.get("metadata") or {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        # A child whose labels and owner reference were removed by hand is still ours if we
        # cached it before; anything else unlabelled is not our business.
        owner = workspace_of(body) or self.cache.owner_of(kind, (namespace, name))
        if owner is None:
            return
        if type_ == "DELETED":
            self.cache.remove(kind, namespace, name, uid=meta.get("uid"))
        elif not self.cache.put(kind, body, owner=owner):
            return  # the echo of our own write, or older than what we hold
        if self.cache.get(KIND, namespace, owner) is not None:
            self.queue.add((namespace, owner))

    async def prime(self) -> None:
        """Fill the cache with one LIST per kind before the workers start, and queue every
        Workspace once.

        Without it, a restarted operator would see Workspace events before the children's
        and try to create pods that already exist. The queueing is what makes a restart
        catch up (a child deleted while the operator was down): the watches' initial events
        carry the versions just listed, so they are not news and queue nothing.
        """
        namespaces: list[str | None] = list(self.settings.namespaces) or [None]
        for namespace in namespaces:
            for item in await self._list(KIND, namespace):
                self.cache.put(KIND, item)
            for kind in CHILD_KINDS:
                for item in await self._list(kind, namespace, MANAGED_BY_SELECTOR):
                    owner = workspace_of(item)
                    if owner:
                        self.cache.put(kind, item, owner=owner)
        for key in self.cache.workspaces():
            self.queue.add(key)

    async def _list(
        self, kind: str, namespace: str | None, selector: str = ""
    ) -> list[dict[str, Any]]:
        """kube.list, with the causes an operator cannot start past named (docs/
        troubleshooting.md): a missing CRD, missing RBAC."""
        where = f"in namespace {namespace}" if namespace else "cluster-wide"
        resource = RESOURCES[kind]
        try:
            return await self.kube.list(kind, namespace, selector)
        except KubeError as err:
            if err.status == 404 and kind == KIND:
                raise StartupError(
                    f"cannot list Workspaces {where}: the API server does not serve "
                    f"{PLURAL}.{GROUP}/{VERSION}, so the CRD {PLURAL}.{GROUP} is not installed "
                    f"(kubectl get crd {PLURAL}.{GROUP}; install chart/crds/)"
                ) from None
            if err.status in (401, 403):
                raise StartupError(
                    f"not allowed to list {resource.plural} {where} ({err}). The operator's "
                    "service account needs the chart's operator Role in every namespace it "
                    "watches (DEVPLANE_NAMESPACES), or its ClusterRole when it watches all"
                ) from None
            raise

    # ---------------------------------------------------------------- workers

    async def worker(self) -> None:
        while True:
            key = await self.queue.get()
            started = time.monotonic()
            try:
                await self._process(key)
            finally:
                RECONCILE_DURATION.observe(time.monotonic() - started)
                self.queue.done(key)

    async def _process(self, key: Key) -> None:
        try:
            recheck = await self.reconcile(key)
        except PermanentFailure as err:
            RECONCILES.labels(result="failed").inc()
            RECONCILE_ERRORS.labels(kind="permanent").inc()
            log.warning("workspace %s/%s failed: %s", *key, err)
            await self._report_failure(key, str(err), err.reason)
            self._failures.pop(key, None)
            if isinstance(err.__cause__, KubeError):
                self.queue.add_after(key, RECHECK_PERMANENT)
        except TemporaryFailure as err:
            RECONCILES.labels(result="requeue").inc()
            RECONCILE_ERRORS.labels(kind="temporary").inc()
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            delay = min(MAX_BACKOFF, max(err.delay, 0.25 * 2 ** min(failures, 8)))
            log.info("workspace %s/%s: %s; retrying in %.1fs", *key, err, delay)
            self.queue.add_after(key, delay, retry=True)
        except Exception:
            RECONCILES.labels(result="error").inc()
            RECONCILE_ERRORS.labels(kind="unexpected").inc()
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            log.exception("workspace %s/%s: unexpected error in reconcile", *key)
            self.queue.add_after(key, min(MAX_BACKOFF, 0.5 * 2 ** min(failures, 8)), retry=True)
        else:
            RECONCILES.labels(result="ok").inc()
            self._failures.pop(key, None)
            if recheck is not None:
                self.queue.add_after(key, recheck)

    async def resync_loop(self) -> None:
        """Every resync period, reconcile every known Workspace once (like an informer resync)."""
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            started = time.monotonic()
            for key in self.cache.workspaces():
                self.queue.add(key)
            await self.queue.wait_idle()
            RESYNCS.inc()
            RESYNC_DURATION.set(time.monotonic() - started)
            log.debug("resync of %d workspaces done", self.cache.count(KIND))

    # ---------------------------------------------------------------- reconcile

    async def reconcile(self, key: Key) -> float | None:
        """Bring one Workspace's children and status in line; return when to look again."""
        body = self.cache.get(KIND, *key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None  # children go with it through their ownerReferences
        try:
            return await self._reconcile(body)
        except Refused as err:
            # A refused Workspace runs no pod: one started before (the spec or the settings
            # changed since) would keep what it is now refused for.
            try:
                await self._remove_pod(*key)
            except KubeError as removal:
                raise TemporaryFailure(f"removing the pod: {removal}", delay=1) from removal
            raise PermanentFailure(str(err), reason=REFUSED) from None
        except SpecError as err:
            raise PermanentFailure(str(err)) from None

    async def _reconcile(self, body: Obj) -> float | None:
        ws = parse_workspace(body, self.settings)
        if ws.started:
            check_spec(ws, self.settings)
        try:
            ws = await self._home_volume(ws)
            desired = build_children(ws, self.settings)
            await self._all(ws, [self._apply(ws, k, desired[k]) for k in INDEPENDENT_KINDS])
            if ws.started:
                if self.cache.get("Pod", ws.namespace, ws.child_name) is None:
                    await self._check_hub_secret(ws)  # a new pod is handed the Secret
                await self._apply(ws, "Pod", desired["Pod"])
            else:
                await self._remove_pod(*ws.key)
            status, recheck = compute_status(
                ws,
                self.cache.get("PersistentVolumeClaim", ws.namespace, ws.pvc_name),
                self.cache.get("Pod", ws.namespace, ws.child_name),
                body.get("status") or {},
                _now(),
                self.settings.stuck_after_seconds,
            )
            held = await self._write_status(body, status)
        except KubeError as err:
            if err.permanent:
                raise PermanentFailure(f"the API server refused a change: {err}") from err
            raise TemporaryFailure(str(err), delay=1) from err
        return min((t for t in (recheck, held) if t is not None), default=None)

    async def _home_volume(self, ws: Workspace) -> Workspace:
        """``ws``, using the home volume an older release named (8-hex-digit hash) when no
        volume has today's name and that one is this owner's (devplane_api.naming).

        Its owner annotation (the verbatim user name) is checked because the old hash was
        short enough to be matched on purpose. When the cache has not seen the old volume,
        it is read from the API: deciding on a cold cache would give the user an empty volume
        beside their files.
        """
        legacy = naming.legacy_pvc_name(ws.owner, ws.server_name)
        if legacy == ws.pvc_name or self.cache.get(_PVC, ws.namespace, ws.pvc_name):
            return ws
        pvc = self.cache.get(_PVC, ws.namespace, legacy)
        if pvc is None:
            pvc = await self.kube.get(_PVC, ws.namespace, legacy)
        owner = ((pvc or {}).get("metadata", {}).get("annotations") or {}).get(OWNER_ANNOTATION)
        return dataclasses.replace(ws, legacy_home=legacy) if owner == ws.owner else ws

    async def _all(self, ws: Workspace, writes: list[Coroutine[Any, Any, None]]) -> None:
        """Run ``writes`` concurrently; if any failed, raise the failure that decides the outcome.

        Unlike a TaskGroup, every write is let finish rather than cancelled half-way: what
        succeeded is in the cache, so the retry does not try to create it again.
        """
        results = await asyncio.gather(*writes, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if not errors:
            return
        chosen = min(errors, key=_rank)  # ties: the first in child order
        for err in errors:
            if err is not chosen:  # not raised, but not swallowed silently either
                log.info("workspace %s/%s: also failed: %r", *ws.key, err)
        raise chosen

    async def _apply(self, ws: Workspace, kind: str, desired: Obj) -> None:
        name = desired["metadata"]["name"]
        actual = self.cache.get(kind, ws.namespace, name)
        action = compare(kind, desired, actual)
        if action.verb in ("none", "wait"):
            return
        log.info("workspace %s/%s: %s %s %s (%s)", *ws.key, action.verb, kind, name, action.why)
        if action.verb == "create":
            try:
                created = await self.kube.create(kind, desired)
            except KubeError as err:
                if not err.conflict:
                    raise
                # It exists but our cache has not seen it yet (e.g. a pod still terminating
                # under the same name): refresh and come back.
                current = await self.kube.get(kind, ws.namespace, name)
                if current is not None:
                    self.cache.put(kind, current, owner=ws.name)
                raise TemporaryFailure(f"{kind} {name} already exists", delay=1) from None
            self.cache.put(kind, created, owner=ws.name)
        elif action.verb == "patch":
            patched = await self.kube.patch(
                kind, ws.namespace, name, action.patch, strategic=action.strategic
            )
            self.cache.put(kind, patched, owner=ws.name)
        elif action.verb == "recreate":
            assert actual is not None
            deleted = await self.kube.delete(kind, ws.namespace, name, actual["metadata"]["uid"])
            if deleted:
                self.cache.put(kind, deleted, owner=ws.name)

    async def _check_hub_secret(self, ws: Workspace) -> None:
        """Refuse a hub Secret this Workspace does not own (its metadata only is read)."""
        try:
            secret = await self.kube.get("Secret", ws.namespace, ws.hub_secret, metadata_only=True)
        except KubeError as err:
            if not err.permanent:
                raise
            raise PermanentFailure(
                f"cannot check the hub Secret {ws.hub_secret}: {err}; the operator needs `get` "
                "on Secrets in this namespace (docs/operator.md, RBAC)"
            ) from err
        check_hub_secret(ws, secret)

    async def _remove_pod(self, namespace: str, workspace: str) -> None:
        """Remove the pod of a stopped (or refused) Workspace — and only the pod."""
        name = naming.child_name(workspace)
        pod = self.cache.get("Pod", namespace, name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            return
        log.info("workspace %s/%s: deleting pod %s", namespace, workspace, name)
        deleted = await self.kube.delete("Pod", namespace, name, pod["metadata"]["uid"])
        if deleted:
            self.cache.put("Pod", deleted, owner=workspace)

    # ---------------------------------------------------------------- status and events

    async def _write_status(self, body: Obj, status: Obj, at_once: bool = False) -> float | None:
        """Write ``status`` if it changed, and return None; or hold it back and return after
        how many seconds to look again.

        News a reader acts on (status.is_news) is written at once. A change that is only
        progress waits up to ``status_hold_seconds`` from when it was first seen, so the steps
        of a quick start (created, volume bound, scheduled) become one write with Running;
        a slow start still shows its progress, once per hold period. ``at_once`` writes any
        change (a failure report: nothing would come back to write it later).
        """
        previous = body.get("status") or {}
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if normalize(previous) == normalize(status):
            self._held_since.pop(key, None)
            return None  # the common case at steady state: no write at all
        why = "failure" if at_once else "news" if is_news(previous, status) else "progress"
        if why == "progress":
            now = time.monotonic()
            waited = now - self._held_since.setdefault(key, now)
            if waited < self.settings.status_hold_seconds:
                return self.settings.status_hold_seconds - waited
        patched = await self.kube.patch(
            KIND,
            meta["namespace"],
            meta["name"],
            {"status": replacing_patch(previous, status)},
            subresource="status",
        )
        self._held_since.pop(key, None)  # after the write: a failed one is retried as held
        STATUS_WRITES.labels(why).inc()
        self.cache.put(KIND, patched)
        await self._announce(body, previous, status)
        return None

    async def _announce(self, body: Obj, previous: Obj, status: Obj) -> None:
        """An Event when the Workspace becomes Running, Failed or Stopped, and a Warning when
        it gets stuck: the transitions a person acts on. The steps in between are in its
        status; an Event each would cost the API server a write per step (issue 14)."""
        old_phase, new_phase = previous.get("phase"), status.get("phase")
        old_reason, new_reason = ready_reason(previous), ready_reason(status)
        stuck = new_reason in STUCK_REASONS and new_reason != old_reason
        if not stuck and (old_phase == new_phase or new_phase not in SETTLED_PHASES):
            return
        kind = "Warning" if stuck or new_phase == "Failed" else "Normal"
        reason = new_reason if stuck else (new_phase or "Unknown")
        message = f"phase {old_phase or 'None'} -> {new_phase}"
        if status.get("message"):
            message += f": {status['message']}"
        event = build_event(body, kind, reason, message, _now(), self.settings.identity)
        try:
            await self.kube.create("Event", event)
        except KubeError as err:  # an Event is best effort; never fail a reconcile over it
            log.warning("could not post an Event for %s: %s", body["metadata"]["name"], err)

    async def _report_failure(self, key: Key, message: str, reason: str) -> None:
        body = self.cache.get(KIND, *key)
        if body is None:
            return
        previous = body.get("status") or {}
        generation = int(body["metadata"].get("generation") or 0)
        status = failed_status(generation, message, previous, _now(), reason)
        try:
            await self._write_status(body, status, at_once=True)
        except KubeError as err:
            log.warning("could not report the failure of %s/%s: %s", *key, err)
