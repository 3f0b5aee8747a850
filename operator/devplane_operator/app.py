"""Wiring: settings -> API client -> (leader election) -> cache -> workers + kopf watches.

Order matters: the metrics/health endpoint comes up first (a standby must answer probes),
then the Lease is acquired, then the cache is primed with one LIST per kind, and only then
do the workers and kopf's watches start. The long-running loops (workers, resync, Lease
renewal, kopf) share one asyncio.TaskGroup: one of them crashing stops them all, and the
process exits 1 for the Deployment to restart it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import kopf

from . import handlers  # noqa: F401  (registers the kopf handlers)
from .cache import Cache
from .kube import Kube
from .leader import LeaderElector, LostLeadership
from .reconcile import Controller, StartupError
from .server import start_server
from .settings import Settings
from .workqueue import WorkQueue

log = logging.getLogger(__name__)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", force=True
    )
    # kopf logs every handler call at INFO; ours say what changed.
    logging.getLogger("kopf").setLevel(max(logging.getLevelName(level), logging.WARNING))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class Stopping(Exception):
    """Raised inside the operator's task group to end it: the operator was told to stop."""


@dataclass
class Health:
    """What the probes report: alive until the control loops end; ready while leading."""

    alive: bool = True
    ready: bool = False


@contextlib.asynccontextmanager
async def probes(settings: Settings, cache: Cache, health: Health) -> AsyncIterator[None]:
    """/metrics, /healthz and /readyz for the block, when a metrics port is set. First thing
    up: a standby replica must answer its probes too."""
    if not settings.metrics_port:
        yield
        return
    runner = await start_server(
        settings.metrics_host, settings.metrics_port, cache,
        lambda: health.alive, lambda: health.ready,
    )  # fmt: skip
    log.info("metrics and health on %s:%d", settings.metrics_host, settings.metrics_port)
    try:
        yield
    finally:
        await runner.cleanup()


async def lead(elector: LeaderElector, stop: asyncio.Event) -> bool:
    """Wait for the Lease: True once this replica holds it, False if told to stop first."""
    async with asyncio.TaskGroup() as group:
        acquiring = group.create_task(elector.acquire())
        stopping = group.create_task(stop.wait())
        await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        acquiring.cancel()
        stopping.cancel()
    return not acquiring.cancelled()


def control_loops(
    settings: Settings, controller: Controller, elector: LeaderElector | None
) -> dict[str, Coroutine[Any, Any, object]]:
    """The operator's long-running loops, by name; each runs until the operator stops."""
    loops: dict[str, Coroutine[Any, Any, object]] = {
        f"worker-{i}": controller.worker() for i in range(settings.workers)
    }
    loops["resync"] = controller.resync_loop()
    if elector is not None:
        loops["lease"] = elector.keep()  # raises LostLeadership if another replica took it
    loops["kopf"] = kopf.operator(
        namespaces=list(settings.namespaces),
        clusterwide=settings.clusterwide,
        standalone=True,  # no kopf peering: leader.py makes two replicas safe
        memo=kopf.Memo(controller=controller),
        # No stop_flag: kopf takes over SIGTERM/SIGINT itself and returns, which stops the
        # operator (see run_loops); on any other exit path the task group cancels it.
    )
    return loops


async def run_loops(loops: dict[str, Coroutine[Any, Any, object]], stop: asyncio.Event) -> int:
    """Run the loops until ``stop`` is set or one of them ends: 0 for a stop or a loop that
    returned (kopf does on SIGTERM), 1 for a crash or lost leadership."""

    async def ends_operator(name: str, loop: Coroutine[Any, Any, object]) -> None:
        try:
            await loop
        except LostLeadership:
            raise
        except Exception:
            log.exception("%s crashed", name)
            raise
        stop.set()

    exit_code = 0
    try:
        async with asyncio.TaskGroup() as group:
            for name, loop in loops.items():
                group.create_task(ends_operator(name, loop), name=name)
            await stop.wait()
            raise Stopping
    except* Stopping:
        pass
    except* LostLeadership as lost:
        log.error("lost leadership (%s); exiting", lost.exceptions[0])
        exit_code = 1
    except* Exception:  # logged by ends_operator, with the loop's name
        exit_code = 1
    return exit_code


async def run(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or until leadership is lost or a loop crashes (exit 1)."""
    configure_logging(settings.log_level)
    kube = await Kube.connect()
    controller = Controller(settings, kube, Cache(), WorkQueue())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    health = Health()
    elector = None
    if settings.leader_election:
        elector = LeaderElector(
            kube,
            settings.leader_election_namespace,
            settings.leader_election_name,
            settings.identity,
            settings.lease_seconds,
        )
    exit_code = 0
    try:
        async with probes(settings, controller.cache, health):
            if elector is not None and not await lead(elector, stop):
                return 0  # stopped while standing by
            try:
                await controller.prime()
            except StartupError as err:
                log.error("cannot start: %s", err)
                return 1
            health.ready = True
            log.info(
                "reconciling %d workspaces in %s with %d workers",
                controller.cache.count("Workspace"),
                ", ".join(settings.namespaces) or "all namespaces",
                settings.workers,
            )
            exit_code = await run_loops(control_loops(settings, controller, elector), stop)
            health.alive = health.ready = False
            if elector is not None and exit_code == 0:
                await elector.release()
    finally:
        await kube.close()
    return exit_code
