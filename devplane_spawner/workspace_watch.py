"""One LIST+WATCH of a namespace's Workspaces, shared by every spawner in the hub process.

JupyterHub calls poll() for every running server every poll interval, and for all of them at
once when it starts: with a GET each, 1,000 servers cost the API server about 33 GETs a
second and a burst of 1,000. And each starting or stopping server held a watch of its own.
Here one watch keeps every Workspace of the namespace in memory, poll() reads it there, and
start()/stop() wait on it (issue 14).

What a reader sees is never older than what this process wrote: the spawner hands every
create and patch response to ``offer()``, and the watch's copies replace a held one only when
newer. While the watch is not in sync (the hub just started, or the API server is away),
``current()`` reads from the API server instead, so poll() never answers from stale memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import watch
from kubernetes_asyncio.client.exceptions import ApiException

from devplane_api.v1alpha1 import GROUP, PLURAL, VERSION

log = logging.getLogger(__name__)

Obj = dict[str, Any]
WATCH_SECONDS = 300  # the server ends each watch after this long; it is then resumed
MAX_BACKOFF = 30.0
SYNC_WAIT_SECONDS = 5.0  # how long current() waits for the first LIST before a GET
_UNSEEN = object()  # what wait_for has seen before its first look (not even absence)


def _version(obj: Obj) -> int:
    """The resourceVersion as a number (etcd's revision, which every version here is)."""
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return 0


class WorkspaceWatch:
    """The namespace's Workspaces by name, kept current by one watch.

    ``getter`` reads one Workspace from the API server (None when absent). The objects handed
    out are the ones held: read them, never change them.
    """

    def __init__(
        self,
        custom: k8s.CustomObjectsApi,
        getter: Callable[[str], Awaitable[Obj | None]],
        namespace: str,
    ) -> None:
        self._custom = custom
        self._get = getter
        self.namespace = namespace
        self._objects: dict[str, Obj] = {}
        # Below these versions an object not held is known to be gone (a late copy of it,
        # e.g. a write's response, must not resurrect it): the last LIST's version, and the
        # version each name was deleted at since.
        self._listed_at = -1
        self._deleted_at: dict[str, int] = {}
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._synced = asyncio.Event()
        self.last_error: BaseException | None = None
        # A hub-lifetime task: the hub process owns the event loop and gives the spawners no
        # scope to run it in, so it is started once here and ends with the process.
        self._task = asyncio.get_running_loop().create_task(self._run(), name="workspace-watch")

    @property
    def running(self) -> bool:
        return not self._task.done()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    # ------------------------------------------------------------ readers

    async def current(self, name: str) -> Obj | None:
        """The Workspace ``name`` as last seen, or from the API server while not in sync."""
        if not self._synced.is_set() and not self._refused():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._synced.wait(), SYNC_WAIT_SECONDS)
        if self._synced.is_set():
            return self._objects.get(name)
        return await self._get(name)

    def _refused(self) -> bool:
        """Whether the API server refuses the watch for good: no RBAC to list or watch, no
        such namespace or resource. Waiting for it to come in sync would be in vain."""
        error = self.last_error
        return isinstance(error, ApiException) and error.status in (401, 403, 404)

    async def wait_for(
        self,
        name: str,
        done: Callable[[Obj | None], bool],
        on_change: Callable[[Obj | None], None] | None = None,
    ) -> Obj | None:
        """Until ``done(ws)`` is true for the Workspace ``name`` (None once it is absent);
        return that state. ``on_change`` sees each new state. The caller bounds the wait."""
        changed = asyncio.Event()
        self._waiters[name].add(changed)
        try:
            seen: object = _UNSEEN
            while True:
                changed.clear()
                if not self._synced.is_set():
                    await self._wait_for_sync()
                    continue
                current = self._objects.get(name)
                if current is not seen:
                    seen = current
                    if on_change:
                        on_change(current)
                    if done(current):
                        return current
                await changed.wait()
        finally:
            self._waiters[name].discard(changed)
            if not self._waiters[name]:
                del self._waiters[name]

    async def _wait_for_sync(self) -> None:
        """Until the watch is in sync; raise what stops it when the API server refuses it for
        good (no RBAC to list or watch, no such namespace or resource), rather than wait out
        the hub's timeout in silence."""
        while not self._synced.is_set():
            if self._refused():
                assert self.last_error is not None
                raise self.last_error
            if not self.running:
                raise RuntimeError(f"the Workspace watch of {self.namespace} ended")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._synced.wait(), 1.0)

    # ------------------------------------------------------------ writers

    def offer(self, obj: Obj) -> None:
        """Hold ``obj`` (a write's response) unless a newer copy is already held."""
        name = obj["metadata"]["name"]
        held = self._objects.get(name)
        version = _version(obj)
        if held is not None and _version(held) >= version:
            return
        if held is None and version <= max(self._listed_at, self._deleted_at.get(name, -1)):
            return
        self._objects[name] = obj
        self._deleted_at.pop(name, None)  # re-created: only names still deleted are kept
        self._notify(name)

    def _remove(self, name: str, version: int) -> None:
        self._deleted_at[name] = version
        if self._objects.pop(name, None) is not None:
            self._notify(name)

    def _notify(self, name: str) -> None:
        for event in self._waiters.get(name, ()):
            event.set()

    def _notify_all(self) -> None:
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    # ------------------------------------------------------------ the watch

    async def _run(self) -> None:
        failures = 0  # in a row; only a watch that ran its course resets it
        version: str | None = None  # None: list (again) before watching
        while True:
            try:
                if version is None:
                    version = await self._relist()
                version = await self._follow(version)
                failures = 0
            except Exception as err:
                version = None
                failures += 1
                # A version too old to resume from (410) is listed again at once, the first
                # time; anything else, or 410s in a row, waits longer each time.
                gone = isinstance(err, ApiException) and err.status == 410
                await self._out_of_sync(err, 0 if gone and failures == 1 else failures)

    async def _out_of_sync(self, err: Exception, failures: int) -> None:
        """After a failed LIST or watch: readers go to the API server until the next LIST,
        and waiters look again (a refusal for good is raised to them)."""
        self._synced.clear()
        self.last_error = err
        self._notify_all()
        if not failures:
            return
        delay = min(MAX_BACKOFF, 0.5 * 2**failures)
        log.warning(
            "Watching Workspaces in %s failed (%s); trying again in %.0f s",
            self.namespace, err, delay,
        )  # fmt: skip
        await asyncio.sleep(delay)

    async def _relist(self) -> str:
        listing = await self._custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL
        )
        listed = {item["metadata"]["name"]: item for item in listing.get("items") or []}
        version: str = listing["metadata"]["resourceVersion"]
        listed_at = int(version)
        for name in set(self._objects) - set(listed):
            # Gone at the LIST's version, unless what is held is newer (a create that this
            # process made while the LIST was on its way).
            if _version(self._objects[name]) <= listed_at:
                self._remove(name, listed_at)
        self._deleted_at = {n: v for n, v in self._deleted_at.items() if v > listed_at}
        for item in listed.values():
            self.offer(item)
        self._listed_at = listed_at
        self.last_error = None
        self._synced.set()
        self._notify_all()  # waiters that waited for the sync look again
        return version

    async def _follow(self, version: str) -> str:
        """Apply the watch's events from ``version`` on, until the server ends the watch;
        return the version to resume from (bookmarks keep it recent). A version too old to
        resume from raises ApiException 410."""
        async with watch.Watch() as w:
            stream = w.stream(
                self._custom.list_namespaced_custom_object,
                GROUP, VERSION, self.namespace, PLURAL,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
                # A connection that died without a word (a load balancer's failover) would
                # otherwise be read forever while the watch looks in sync.
                _request_timeout=WATCH_SECONDS + 30,
            )  # fmt: skip
            async for event in stream:
                kind, obj = event["type"], event["object"]
                if kind == "DELETED":
                    self._remove(obj["metadata"]["name"], _version(obj))
                elif kind in ("ADDED", "MODIFIED"):
                    self.offer(obj)
            return w.resource_version or version
