"""Reaching ttyd over a unix socket or loopback TCP with tornado's own clients."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from tornado.httpclient import HTTPRequest
from tornado.netutil import Resolver
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from .settings import Upstream
from .wsrelay import TtydSide


class UnixSocketResolver(Resolver):
    """Resolve every host name to one unix socket.

    tornado's TCP client opens ``socket.socket(family)`` and connects to the resolved address,
    so answering ``(AF_UNIX, path)`` makes its HTTP client and raw streams talk to a unix
    socket without a private transport of our own.
    """

    def initialize(self, path: str) -> None:
        self.path = path

    async def resolve(
        self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[tuple[int, Any]]:
        return [(socket.AF_UNIX, self.path)]


class TtydUpstream:
    """HTTP requests and raw connections to ttyd at the configured address."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        if upstream.unix_path:
            self.resolver: Resolver | None = UnixSocketResolver(path=upstream.unix_path)
            self.host, self.port = "localhost", 80
        else:
            self.resolver = None
            self.host, self.port = upstream.host, upstream.port
        self.base = f"http://{self.host}:{self.port}"
        # force_instance: our own client, so its resolver never leaks into other users.
        self.http = SimpleAsyncHTTPClient(force_instance=True, resolver=self.resolver)

    def http_request(self, path: str, **kwargs: Any) -> HTTPRequest:
        return HTTPRequest(self.base + path, **kwargs)

    async def connect_relay(self) -> TtydSide:
        """A raw connection to ttyd for relaying an upgraded WebSocket."""
        loop = asyncio.get_running_loop()
        if self.upstream.unix_path:
            connecting = loop.create_unix_connection(TtydSide, self.upstream.unix_path)
        else:
            # asyncio sets TCP_NODELAY on TCP transports: no Nagle delay on keystrokes.
            connecting = loop.create_connection(TtydSide, self.host, self.port)
        _, side = await asyncio.wait_for(connecting, 10)
        return side
