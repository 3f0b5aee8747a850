"""Reaching ttyd, over its unix socket or loopback TCP: one raw connection per terminal.

Only the terminal's WebSocket goes there (the page is the proxy's own, ``terminal_page``):
whatever answers on that socket may be the workspace owner's own server.
"""

from __future__ import annotations

import asyncio

from .settings import Upstream
from .wsrelay import TtydSide


class TtydUpstream:
    """Raw connections to ttyd at the configured address, for relaying WebSockets."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        # What the Host header says to ttyd; on a unix socket any name will do.
        self.host = "localhost" if upstream.unix_path else f"{upstream.host}:{upstream.port}"
        self.ws_path = f"{upstream.base_path}/ws"

    async def connect_relay(self) -> TtydSide:
        """A raw connection to ttyd for relaying an upgraded WebSocket."""
        loop = asyncio.get_running_loop()
        if self.upstream.unix_path:
            connecting = loop.create_unix_connection(TtydSide, self.upstream.unix_path)
        else:
            # asyncio sets TCP_NODELAY on TCP transports: no Nagle delay on keystrokes.
            connecting = loop.create_connection(TtydSide, self.upstream.host, self.upstream.port)
        _, side = await asyncio.wait_for(connecting, 10)
        return side
