"""/metrics (Prometheus), /healthz (liveness) and /readyz (readiness) on one port.

/healthz answers 200 while the event loop runs and the workers are alive — a wedged process
fails it and gets restarted. /readyz answers 200 once this replica is the leader with its
cache primed, and 503 while it is a standby, so a Service or dashboard can tell which
replica is active.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from devplane_api.v1alpha1 import KIND, PHASES

from .cache import Cache
from .metrics import WORKSPACES


def update_phase_gauge(cache: Cache) -> None:
    counts = Counter(
        ((cache.get(KIND, *key) or {}).get("status") or {}).get("phase", "")
        for key in cache.workspaces()
    )
    for phase in ("", *PHASES):
        WORKSPACES.labels(phase=phase).set(counts.get(phase, 0))


async def start_server(
    host: str, port: int, cache: Cache, alive: Callable[[], bool], ready: Callable[[], bool]
) -> web.AppRunner:
    async def metrics(_: web.Request) -> web.Response:
        update_phase_gauge(cache)
        response = web.Response(body=generate_latest())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    async def healthz(_: web.Request) -> web.Response:
        ok = alive()
        return web.Response(text="ok\n" if ok else "workers stopped\n", status=200 if ok else 500)

    async def readyz(_: web.Request) -> web.Response:
        ok = ready()
        return web.Response(text="ready\n" if ok else "standby\n", status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
