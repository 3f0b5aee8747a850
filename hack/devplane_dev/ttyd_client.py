"""A ttyd-protocol client: what ttyd's xterm.js page does over the WebSocket.

Client -> server: first a JSON handshake ``{"AuthToken", "columns", "rows"}``, then
``'0' + input`` (keystrokes) and ``'1' + {"columns", "rows"}`` (resize).
Server -> client: ``'0' + output``, ``'1' + window title``, ``'2' + preferences``.
"""

from __future__ import annotations

import asyncio
import json
import re

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus


class TtydSession:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.output = b""

    @classmethod
    async def open(
        cls, url: str, cookie: str = "", origin: str | None = None, cols: int = 120, rows: int = 30
    ) -> TtydSession:
        # What a browser sends on a WebSocket; JupyterHub's HubOAuth treats requests with
        # Sec-Fetch-Mode: websocket specially (it would take ?token= from the URL).
        headers = {"Sec-Fetch-Mode": "websocket"}
        if cookie:
            headers["Cookie"] = cookie
        ws = await connect(
            url,
            subprotocols=["tty"],
            additional_headers=headers,
            origin=origin,
            open_timeout=15,
            # Like a browser tab: answers pings, sends none of its own.
            ping_interval=None,
            max_size=None,
        )
        session = cls(ws)
        await ws.send(json.dumps({"AuthToken": "", "columns": cols, "rows": rows}).encode())
        return session

    async def type(self, text: str) -> None:
        await self.ws.send(b"0" + text.encode())

    async def run(self, command: str, expect: str) -> bytes:
        """Type ``command`` and Enter, then read until ``expect`` (a regex) shows."""
        await self.type(command + "\r")
        return await self.read_until(expect)

    async def resize(self, cols: int, rows: int) -> None:
        await self.ws.send(b"1" + json.dumps({"columns": cols, "rows": rows}).encode())

    async def read_until(self, pattern: str | bytes, wait: float = 15) -> bytes:
        """Read output until ``pattern`` (a regex) matches all output so far; return it."""
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = asyncio.get_running_loop().time() + wait
        while not regex.search(self.output):
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(self.ws.recv(), remaining)
            except TimeoutError:
                raise TimeoutError(
                    f"no {pattern!r} in terminal output after {wait}s: {self.output[-2000:]!r}"
                ) from None
            data = message if isinstance(message, bytes) else message.encode()
            if data[:1] == b"0":
                self.output += data[1:]
        return self.output

    async def drain(self, quiet: float = 0.5) -> None:
        """Read until the terminal has been silent for ``quiet`` seconds."""
        while True:
            try:
                message = await asyncio.wait_for(self.ws.recv(), quiet)
            except TimeoutError:
                return
            data = message if isinstance(message, bytes) else message.encode()
            if data[:1] == b"0":
                self.output += data[1:]

    async def close(self) -> None:
        await self.ws.close()

    async def __aenter__(self) -> TtydSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def handshake_status(url: str, cookie: str = "", origin: str | None = None) -> int:
    """The HTTP status a browser-like WebSocket handshake to ``url`` gets: 101 when the socket
    opened (it is closed again at once), else the refusal's status."""
    try:
        session = await TtydSession.open(url, cookie=cookie, origin=origin)
    except InvalidStatus as refused:
        return refused.response.status_code
    await session.close()
    return 101
