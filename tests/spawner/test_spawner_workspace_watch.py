"""The hub's shared Workspace watch (workspace_watch.py) against a scripted API: what it
holds when a LIST, a watch event and this process's own writes arrive in any order, and how
it behaves when the API server ends or refuses the watch. The real API server is used in
test_spawner_watch.py."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from devplane_spawner import workspace_watch
from devplane_spawner.workspace_watch import WorkspaceWatch


def ws(name: str, version: int, phase: str = "") -> dict:
    return {"metadata": {"name": name, "resourceVersion": str(version)}, "status": {"phase": phase}}


class Stream:
    """A watch response whose lines the test writes."""

    def __init__(self) -> None:
        self.lines: asyncio.Queue[bytes] = asyncio.Queue()
        self.content = self

    async def readline(self) -> bytes:
        return await self.lines.get()

    def send(self, type_: str, obj: dict) -> None:
        self.lines.put_nowait(json.dumps({"type": type_, "object": obj}).encode() + b"\n")

    def close(self) -> None:
        pass

    def release(self) -> None:
        pass


class Api:
    """list_namespaced_custom_object as the watch calls it: a LIST, or a watch stream."""

    def __init__(self, *items: dict, version: int = 10) -> None:
        self.items = {i["metadata"]["name"]: i for i in items}
        self.version = version
        self.lists = 0
        self.refuse: ApiException | None = None
        self.hold = asyncio.Event()
        self.hold.set()
        self.streams: list[Stream] = []

    async def list_namespaced_custom_object(self, *args, watch: bool = False, **kwargs):
        if watch:
            self.streams.append(Stream())
            return self.streams[-1]
        self.lists += 1
        await self.hold.wait()
        if self.refuse is not None:
            raise self.refuse
        return {
            "metadata": {"resourceVersion": str(self.version)},
            "items": list(self.items.values()),
        }


async def started(api: Api, gets: list | None = None) -> WorkspaceWatch:
    async def get(name: str):
        if gets is not None:
            gets.append(name)
        return api.items.get(name)

    watch = WorkspaceWatch(api, get, "ns")  # type: ignore[arg-type]
    return watch


async def until(check, within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


async def test_a_create_made_while_the_list_was_on_its_way_survives_the_list():
    api = Api(version=10)
    api.hold.clear()
    watch = await started(api)
    await until(lambda: api.lists == 1)
    watch.offer(ws("alice", 12))  # this process created it after the LIST's snapshot
    api.hold.set()
    assert (await watch.current("alice"))["metadata"]["resourceVersion"] == "12"
    # A copy older than the LIST, of something the LIST did not have, is gone: not taken.
    watch.offer(ws("bob", 9))
    assert await watch.current("bob") is None
    await watch.close()


async def test_a_deleted_workspace_is_not_brought_back_by_a_late_copy():
    api = Api(ws("alice", 8, "Running"), version=10)
    watch = await started(api)
    assert (await watch.current("alice"))["status"]["phase"] == "Running"
    await until(lambda: api.streams)
    api.streams[-1].send("DELETED", ws("alice", 20))
    await until(lambda: watch._objects.get("alice") is None)
    watch.offer(ws("alice", 15, "Running"))  # e.g. a patch response that was in flight
    assert await watch.current("alice") is None
    watch.offer(ws("alice", 25, "Pending"))  # created again
    assert (await watch.current("alice"))["status"]["phase"] == "Pending"
    await watch.close()


async def test_a_waiter_sees_each_change_and_a_newer_copy_wins_over_an_older():
    api = Api(ws("alice", 8, "Pending"), version=10)
    watch = await started(api)
    seen: list = []
    waiting = asyncio.create_task(
        watch.wait_for(
            "alice",
            lambda w: w is not None and w["status"]["phase"] == "Running",
            lambda w: seen.append(w and w["status"]["phase"]),
        )
    )
    await until(lambda: seen == ["Pending"] and api.streams)
    api.streams[-1].send("MODIFIED", ws("alice", 30, "Starting"))
    await until(lambda: seen == ["Pending", "Starting"])
    watch.offer(ws("alice", 29, "Pending"))  # older than what is held: ignored
    api.streams[-1].send("MODIFIED", ws("alice", 31, "Running"))
    ready = await asyncio.wait_for(waiting, 2)
    assert ready["metadata"]["resourceVersion"] == "31"
    assert seen == ["Pending", "Starting", "Running"]
    await watch.close()


async def test_a_version_too_old_is_listed_again_at_once():
    api = Api(ws("alice", 8), version=10)
    watch = await started(api)
    await until(lambda: api.streams)
    api.items["alice"] = ws("alice", 40, "Running")  # missed while the watch was gone
    api.version = 41
    gone = {"code": 410, "reason": "Expired", "message": "too old resource version"}
    api.streams[-1].lines.put_nowait(json.dumps({"type": "ERROR", "object": gone}).encode())
    await until(lambda: api.lists == 2, within=0.5)  # no back-off for a first 410
    await until(lambda: watch._synced.is_set())
    assert (await watch.current("alice"))["status"]["phase"] == "Running"
    await watch.close()


async def test_a_refused_watch_fails_waiters_and_reads_go_to_the_api_at_once(monkeypatch):
    monkeypatch.setattr(workspace_watch, "SYNC_WAIT_SECONDS", 5.0)
    api = Api(ws("alice", 8, "Running"))
    api.refuse = ApiException(status=403, reason="Forbidden")
    gets: list = []
    watch = await started(api, gets)
    with pytest.raises(ApiException) as info:
        await asyncio.wait_for(watch.wait_for("alice", lambda w: False), 2)
    assert info.value.status == 403
    begun = time.monotonic()
    assert (await watch.current("alice"))["status"]["phase"] == "Running"
    assert gets == ["alice"] and time.monotonic() - begun < 1
    await watch.close()


async def test_a_watch_the_server_ends_is_resumed_without_a_new_list():
    api = Api(ws("alice", 8), version=10)
    watch = await started(api)
    await until(lambda: api.streams)
    api.streams[-1].send("MODIFIED", ws("alice", 50, "Running"))
    api.streams[-1].lines.put_nowait(b"")  # the server's timeout ends the response
    await until(lambda: len(api.streams) == 2)
    assert api.lists == 1
    assert (await watch.current("alice"))["status"]["phase"] == "Running"
    await watch.close()
