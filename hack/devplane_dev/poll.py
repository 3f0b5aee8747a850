"""Poll until something holds: the one way the harness, the tests and the benchmarks wait.

Standard library only: devcluster.py runs with the system python, before the virtualenv
exists, and waits with this too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120, interval: float = 0.25):
    """Call ``check`` until it returns something truthy and return that.

    ``what`` completes the sentence "timed out waiting for ...". An exception from ``check``
    ends the wait at once (a process that exited, say); it is not retried.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"timed out after {timeout:.0f}s waiting for {what} (last: {result!r})"
            )
        time.sleep(interval)


async def wait_for_async(
    what: str,
    check: Callable[[], Awaitable[Any]],
    timeout: float = 120,  # noqa: ASYNC109 — wait_for's signature, on purpose
    interval: float = 0.25,
):
    """``wait_for`` for a coroutine ``check``, without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"timed out after {timeout:.0f}s waiting for {what} (last: {result!r})"
            )
        await asyncio.sleep(interval)
