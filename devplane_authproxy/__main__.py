"""``python -m devplane_authproxy`` / ``devplane-authproxy``: run the auth proxy."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from tornado.httpserver import HTTPServer

from .activity import ActivityReporter, ActivityTracker
from .app import make_app
from .llm.config import ConfigFile
from .llm.gateway import MAX_REQUEST, Gateway, make_gateway_app, make_metrics_app
from .logs import install as install_logging
from .settings import ProxySettings

log = logging.getLogger("devplane.authproxy")


async def serve(settings: ProxySettings) -> None:
    # One tracker: the terminal handlers record input into it, the reporter posts it.
    tracker = ActivityTracker(settings.activity_file)
    app = make_app(settings, tracker)
    # xheaders: behind the hub's proxy, X-Forwarded-Proto tells us the browser used https,
    # which is what makes HubOAuth mark its cookie Secure.
    server = HTTPServer(app, xheaders=True)
    server.listen(settings.listen_port, settings.listen_ip)
    extra, gateway = start_llm_servers(settings)
    servers = [server, *extra]
    reporter = ActivityReporter(settings, tracker)
    reporter.start()
    log.info(
        "auth proxy for %s on %s:%s -> %s",
        settings.owner,
        settings.listen_ip,
        settings.listen_port,
        settings.upstream.unix_path or f"{settings.upstream.host}:{settings.upstream.port}",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for each in servers:
        each.stop()
    if gateway is not None:
        await gateway.close()
    # One last report so work done just before a shutdown is not lost.
    if settings.activity_url:
        await reporter.report_once()


def start_llm_servers(settings: ProxySettings) -> tuple[list[HTTPServer], Gateway | None]:
    """The LLM gateway on the pod's loopback, and the metrics port, when configured."""
    started = []
    gateway = None
    if settings.llm_gateway_config:
        gateway = Gateway(ConfigFile(Path(settings.llm_gateway_config)), settings.owner)
        # No xheaders: only the pod's own containers reach it, never through a proxy.
        gateway_server = HTTPServer(make_gateway_app(gateway), max_body_size=MAX_REQUEST)
        gateway_server.listen(settings.llm_gateway_port, "127.0.0.1")
        started.append(gateway_server)
        log.info("LLM gateway on 127.0.0.1:%s", settings.llm_gateway_port)
    if settings.metrics_port:
        metrics_server = HTTPServer(make_metrics_app())
        metrics_server.listen(settings.metrics_port, settings.listen_ip)
        started.append(metrics_server)
    return started, gateway


def main() -> None:
    install_logging()
    try:
        settings = ProxySettings.from_env()
    except ValueError as err:  # a bad setting: say which, without a traceback
        sys.exit(f"devplane-authproxy: {err}")
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
