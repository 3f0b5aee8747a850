"""The operator's lifetime (app.py): its control loops share one task group, and how they end
decides the exit code the Deployment sees."""

from __future__ import annotations

import asyncio

from devplane_operator.app import lead, run_loops
from devplane_operator.leader import LostLeadership


async def forever(cancelled: list[str], name: str) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        cancelled.append(name)
        raise


async def test_a_stop_cancels_every_loop_and_exits_0():
    stop, cancelled = asyncio.Event(), []
    loops = {name: forever(cancelled, name) for name in ("worker-0", "resync", "kopf")}
    running = asyncio.ensure_future(run_loops(loops, stop))
    await asyncio.sleep(0.05)
    assert not running.done()
    stop.set()
    assert await asyncio.wait_for(running, 5) == 0
    assert sorted(cancelled) == ["kopf", "resync", "worker-0"]


async def test_a_loop_that_returns_stops_the_others_and_exits_0():
    # kopf returns on SIGTERM (it takes the signal over): that is a clean stop.
    async def kopf_after_sigterm() -> None:
        await asyncio.sleep(0.05)

    cancelled: list[str] = []
    loops = {"worker-0": forever(cancelled, "worker-0"), "kopf": kopf_after_sigterm()}
    assert await asyncio.wait_for(run_loops(loops, asyncio.Event()), 5) == 0
    assert cancelled == ["worker-0"]


async def test_a_crash_or_a_lost_lease_stops_the_others_and_exits_1(caplog):
    async def crashes() -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("worker bug")

    async def loses_the_lease() -> None:
        await asyncio.sleep(0.05)
        raise LostLeadership("another replica holds it")

    for name, loop in (("worker-1", crashes), ("lease", loses_the_lease)):
        cancelled: list[str] = []
        loops = {"kopf": forever(cancelled, "kopf"), name: loop()}
        assert await asyncio.wait_for(run_loops(loops, asyncio.Event()), 5) == 1
        assert cancelled == ["kopf"]
    assert "worker-1 crashed" in caplog.text and "worker bug" in caplog.text
    assert "lost leadership (another replica holds it)" in caplog.text


class Elector:
    def __init__(self, acquire_after: float | None) -> None:
        self.acquire_after = acquire_after

    async def acquire(self) -> None:
        if self.acquire_after is None:
            await asyncio.Event().wait()
        await asyncio.sleep(self.acquire_after or 0)


async def test_lead_is_true_once_the_lease_is_held_and_false_when_stopped_first():
    assert await asyncio.wait_for(lead(Elector(0.01), asyncio.Event()), 5) is True
    stop = asyncio.Event()
    standby = asyncio.ensure_future(lead(Elector(None), stop))
    await asyncio.sleep(0.05)
    assert not standby.done()
    stop.set()
    assert await asyncio.wait_for(standby, 5) is False
