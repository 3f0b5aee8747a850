"""A de-duplicating work queue of Workspace keys, in the style of client-go's workqueue.

* a key queued twice before a worker takes it is reconciled once (a burst of pod status
  events becomes one reconcile);
* a key is never reconciled by two workers at once: if it is queued again while being
  processed, it is re-queued when the worker finishes;
* ``add_after`` schedules a retry (temporary errors, back-off) or a re-check (a volume that
  may become "stuck").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

from .metrics import QUEUE_ADDS, QUEUE_DEPTH, QUEUE_LATENCY, QUEUE_RETRIES

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._added_at: dict[K, float] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    def __len__(self) -> int:
        return len(self._queued)

    def add(self, key: K) -> None:
        if key in self._processing:
            self._dirty.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._added_at[key] = time.monotonic()
        self._idle.clear()
        self._queue.put_nowait(key)
        QUEUE_ADDS.inc()
        QUEUE_DEPTH.set(len(self._queued))

    def add_after(self, key: K, delay: float, retry: bool = False) -> None:
        """Queue ``key`` after ``delay`` seconds; an earlier pending timer for it wins.
        ``retry``: this is a back-off after a failure (counted as a retry)."""
        if retry:
            QUEUE_RETRIES.inc()
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        if existing is not None and existing.when() <= loop.time() + delay:
            return
        if existing is not None:
            existing.cancel()

        def fire() -> None:
            self._timers.pop(key, None)
            self.add(key)

        self._timers[key] = loop.call_later(delay, fire)

    async def get(self) -> K:
        key = await self._queue.get()
        self._queued.discard(key)
        added = self._added_at.pop(key, None)
        if added is not None:
            QUEUE_LATENCY.observe(time.monotonic() - added)
        self._processing.add(key)
        QUEUE_DEPTH.set(len(self._queued))
        return key

    def done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)
        elif not self._queued and not self._processing:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once nothing is queued or being processed (delayed retries do not count)."""
        await self._idle.wait()

    def forget(self, key: K) -> None:
        """Drop a pending delayed retry (the Workspace is gone)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
