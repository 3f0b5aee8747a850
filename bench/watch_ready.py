"""Wait until N objects are ready by watching them, not by listing them every second.

A LIST of 1,000 pods or Workspaces every second costs the API server (and the benchmark's
own Python client, if it builds model objects) as much as the work being measured, on the
same two cores. One LIST and one WATCH, parsed as plain JSON, cost almost nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

Obj = dict[str, Any]
# A kubernetes_asyncio list method with its positional arguments bound, e.g.
# functools.partial(core.list_namespaced_pod, namespace).
ListCall = Callable[..., Awaitable[Any]]


def condition_true(obj: Obj, type_: str) -> bool:
    return any(
        c.get("type") == type_ and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


async def wait_until_ready(
    list_call: ListCall, count: int, is_ready: Callable[[Obj], bool], limit: float, **kwargs: Any
) -> None:
    """Return once ``count`` objects are ready at the same time; TimeoutError after ``limit``."""
    ready: set[str] = set()

    async def follow() -> None:
        while True:  # a 410 Gone (or a closed watch) starts over with a fresh LIST
            response = await list_call(_preload_content=False, **kwargs)
            listing = json.loads(await response.read())
            ready.clear()
            ready.update(i["metadata"]["name"] for i in listing["items"] if is_ready(i))
            if len(ready) >= count:
                return
            version = listing["metadata"]["resourceVersion"]
            response = await list_call(
                watch=True,
                resource_version=version,
                timeout_seconds=int(limit) + 60,
                _preload_content=False,
                **kwargs,
            )
            async for line in response.content:
                event = json.loads(line)
                if event["type"] == "ERROR":
                    break
                obj, name = event["object"], event["object"]["metadata"]["name"]
                if event["type"] != "DELETED" and is_ready(obj):
                    ready.add(name)
                else:
                    ready.discard(name)
                if len(ready) >= count:
                    return
            response.release()

    try:
        await asyncio.wait_for(follow(), limit)
    except TimeoutError:
        raise TimeoutError(f"only {len(ready)} of {count} ready after {limit:.0f} s") from None
