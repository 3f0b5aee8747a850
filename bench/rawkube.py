"""Lean API calls for the benchmarks: plain JSON instead of model objects, and waiting for N
ready objects by watching them instead of listing them every second.

A LIST of 1,000 pods or Workspaces every second costs the API server (and the benchmark's
own Python client, if it builds model objects) as much as the work being measured, on the
same two cores. One LIST and one WATCH, parsed as plain JSON, cost almost nothing.

kubernetes_asyncio's ``_preload_content=False`` returns the raw response *without* checking
its status and without giving the connection back until the body is read: ``call()`` does
both, so a refused request fails loudly and the connection pool never runs dry.
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


class ApiError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        self.status = status
        super().__init__(f"{status}: {body[:500].decode(errors='replace')}")


async def call(method: ListCall, *args: Any, **kwargs: Any) -> Obj:
    """``method(*args)`` of a kubernetes_asyncio API, its JSON body as a dict."""
    response = await method(*args, _preload_content=False, **kwargs)
    try:
        body = await response.read()
    finally:
        response.release()
    if response.status >= 300:
        raise ApiError(response.status, body)
    return json.loads(body)


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
            listing = await call(list_call, **kwargs)
            ready.clear()
            ready.update(i["metadata"]["name"] for i in listing["items"] if is_ready(i))
            if len(ready) >= count:
                return
            version = listing["metadata"]["resourceVersion"]
            response = await list_call(
                watch=True,
                resource_version=version,
                timeout_seconds=int(limit) + 60,
                # aiohttp's own default would end the stream after 5 minutes.
                _request_timeout=limit + 60,
                _preload_content=False,
                **kwargs,
            )
            try:
                if response.status >= 300:
                    raise ApiError(response.status, await response.read())
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
            finally:
                response.close()  # a watch still streaming: drop the connection

    try:
        await asyncio.wait_for(follow(), limit)
    except TimeoutError:
        raise TimeoutError(f"only {len(ready)} of {count} ready after {limit:.0f} s") from None
