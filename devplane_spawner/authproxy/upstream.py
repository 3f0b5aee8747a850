"""Reaching ttyd over a unix socket or loopback TCP with tornado's own clients."""

from __future__ import annotations

import socket
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.netutil import Resolver
from tornado.simple_httpclient import SimpleAsyncHTTPClient
from tornado.websocket import WebSocketClientConnection, websocket_connect

from .settings import Upstream


class UnixSocketResolver(Resolver):
    """Resolve every host name to one unix socket.

    tornado's TCP client opens ``socket.socket(family)`` and connects to the resolved address,
    so answering ``(AF_UNIX, path)`` makes its HTTP and WebSocket clients talk to a unix socket
    without a private transport of our own.
    """

    def initialize(self, path: str) -> None:  # type: ignore[override]
        self.path = path

    async def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, Any]]:
        return [(socket.AF_UNIX, self.path)]


class TtydUpstream:
    """HTTP and WebSocket access to ttyd at the configured address."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        if upstream.unix_path:
            self.resolver: Resolver | None = UnixSocketResolver(path=upstream.unix_path)
            self.base = "http://localhost"
        else:
            self.resolver = None
            self.base = f"http://{upstream.host}:{upstream.port}"
        # force_instance: our own client, so its resolver never leaks into other users.
        self.http = SimpleAsyncHTTPClient(force_instance=True, resolver=self.resolver)

    def http_request(self, path: str, **kwargs: Any) -> HTTPRequest:
        return HTTPRequest(self.base + path, **kwargs)

    async def websocket(
        self, path: str, subprotocols: list[str], on_message: Any
    ) -> WebSocketClientConnection:
        ws_url = "ws" + self.base[len("http") :] + path
        return await websocket_connect(
            HTTPRequest(ws_url, connect_timeout=10),
            on_message_callback=on_message,
            subprotocols=subprotocols,
            resolver=self.resolver,
            # ttyd's own pings keep the upstream leg alive; none needed from us.
            ping_interval=None,
        )
