"""Wiring: settings -> API client -> (leader election) -> cache -> workers + kopf watches.

Order matters: the metrics/health endpoint comes up first (a standby must answer probes),
then the Lease is acquired, then the cache is primed with one LIST per kind, and only then
do the workers and kopf's watches start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import kopf

from . import handlers  # noqa: F401  (registers the kopf handlers)
from .cache import Cache
from .kube import Kube
from .leader import LeaderElector, LostLeadership
from .reconcile import Controller
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


async def run(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or until leadership is lost (exit 1)."""
    configure_logging(settings.log_level)
    kube = await Kube.connect()
    controller = Controller(settings, kube, Cache(), WorkQueue())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    workers: list[asyncio.Task] = []
    state = {"ready": False}

    def alive() -> bool:
        return not any(w.done() for w in workers)

    runner = None
    if settings.metrics_port:
        runner = await start_server(
            settings.metrics_host, settings.metrics_port, controller.cache, alive,
            lambda: state["ready"],
        )  # fmt: skip
        log.info("metrics and health on %s:%d", settings.metrics_host, settings.metrics_port)

    elector = None
    background: list[asyncio.Task] = []
    exit_code = 0
    try:
        if settings.leader_election:
            elector = LeaderElector(
                kube,
                settings.leader_election_namespace,
                settings.leader_election_name,
                settings.identity,
                settings.lease_seconds,
            )
            acquiring = asyncio.create_task(elector.acquire())
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not acquiring.done():
                acquiring.cancel()
                return 0
            background.append(asyncio.create_task(elector.keep(), name="lease"))

        await controller.prime()
        workers.extend(
            asyncio.create_task(controller.worker(), name=f"worker-{i}")
            for i in range(settings.workers)
        )
        background.append(asyncio.create_task(controller.resync_loop(), name="resync"))
        state["ready"] = True
        log.info(
            "reconciling %d workspaces in %s with %d workers",
            controller.cache.count("Workspace"),
            ", ".join(settings.namespaces) or "all namespaces",
            settings.workers,
        )
        kopf_task = asyncio.create_task(
            kopf.operator(
                namespaces=list(settings.namespaces),
                clusterwide=settings.clusterwide,
                standalone=True,  # no kopf peering: leader.py makes two replicas safe
                memo=kopf.Memo(controller=controller),
                # No stop_flag: kopf takes over SIGTERM/SIGINT itself and returns; on any
                # other exit path the task is cancelled below.
            ),
            name="kopf",
        )
        background.append(kopf_task)
        done, _ = await asyncio.wait(
            [*background, *workers, asyncio.create_task(stop.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in done:
            if task.cancelled() or task.exception() is None:
                continue
            if isinstance(task.exception(), LostLeadership):
                log.error("lost leadership (%s); exiting", task.exception())
            else:
                log.error("%s crashed", task.get_name(), exc_info=task.exception())
            exit_code = 1
    finally:
        stop.set()
        state["ready"] = False
        for task in [*background, *workers]:
            task.cancel()
        for task in [*background, *workers]:
            with contextlib.suppress(BaseException):
                await task
        if elector is not None and exit_code == 0:
            await elector.release()
        if runner is not None:
            await runner.cleanup()
        await kube.close()
    return exit_code
