"""Relay an authenticated WebSocket to ttyd byte for byte, noticing keystrokes on the way.

Why not terminate the WebSocket in the proxy (tornado's WebSocketHandler + client)? Every
keystroke and every block of output would be unframed, unmasked, re-framed and re-masked in
Python twice; that alone doubled the echo latency the proxy adds (bench/terminal_overhead.py).
Once the handshake is authenticated there is nothing left to decide about the server's
output, so it is copied as it comes. The browser's frames are copied too, and a tiny scanner
reads just enough of each (header + first payload byte) to tell ttyd's INPUT/RESIZE commands
from everything else, without buffering or changing a byte.

Compression is not offered to ttyd (``Sec-WebSocket-Extensions`` is dropped), so the first
payload byte is readable; terminal traffic is small and ttyd's pages are local anyway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable

from tornado.iostream import IOStream

from .activity import is_user_input

log = logging.getLogger("devplane.authproxy.ws")

_TEXT, _BINARY = 0x1, 0x2


class ClientFrameScanner:
    """Incremental RFC 6455 parser of client-to-server frames, reading only what it needs.

    ``feed(chunk)`` returns True when a text/binary frame whose (unmasked) first payload byte
    is a ttyd user command started in ``chunk``. Payload bytes are skipped, never copied.
    """

    def __init__(self) -> None:
        self._head = bytearray()
        self._remaining = 0
        self._want_first = False
        self._mask0 = 0

    @staticmethod
    def _header_length(head: bytearray) -> int:
        if len(head) < 2:
            return 0
        size = head[1] & 0x7F
        extended = 2 if size == 126 else 8 if size == 127 else 0
        return 2 + extended + (4 if head[1] & 0x80 else 0)

    def _parse_header(self) -> None:
        head = self._head
        opcode = head[0] & 0x0F
        size = head[1] & 0x7F
        offset = 2
        if size == 126:
            size = int.from_bytes(head[2:4], "big")
            offset = 4
        elif size == 127:
            size = int.from_bytes(head[2:10], "big")
            offset = 10
        self._mask0 = head[offset] if head[1] & 0x80 else 0
        self._remaining = size
        # A fragmented message's first byte is in its first frame (text/binary opcode).
        self._want_first = opcode in (_TEXT, _BINARY) and size > 0
        head.clear()

    def feed(self, data: bytes) -> bool:
        found = False
        i, end = 0, len(data)
        while i < end:
            if self._remaining:
                if self._want_first:
                    found |= is_user_input(bytes((data[i] ^ self._mask0,)))
                    self._want_first = False
                step = min(self._remaining, end - i)
                i += step
                self._remaining -= step
                continue
            self._head.append(data[i])
            i += 1
            need = self._header_length(self._head)
            if need and len(self._head) == need:
                self._parse_header()
        return found


class _Side(asyncio.Protocol):
    """One end of the relay: every byte it receives is written to its peer's transport.

    Plain asyncio protocols, not tornado streams or coroutines: a keystroke costs one
    ``data_received`` call and one ``write`` per direction, nothing else (no futures, no task
    switches), which is what keeps the proxy's share of the echo latency small.
    """

    def __init__(self, inspect: Callable[[bytes], None] | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.inspect = inspect
        self.pending = bytearray()  # received before the peer was linked
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.inspect is not None:
            self.inspect(data)
        if self.peer is None or self.peer.transport is None:
            self.pending += data
        else:
            self.peer.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()
        if not self.closed.done():
            self.closed.set_result(None)

    def write(self, data: bytes) -> None:
        assert self.transport is not None, "written to before the connection was made"
        self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # Back-pressure: when our outgoing buffer is full, stop reading from the other side.
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class TtydSide(_Side):
    """The connection to ttyd: first collects the handshake response, then relays."""

    MAX_HEAD = 64 * 1024

    def __init__(self) -> None:
        super().__init__()
        self._head = bytearray()
        self.head: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.head.done():
            super().data_received(data)
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end >= 0:
            rest = bytes(self._head[end + 4 :])
            self.head.set_result(bytes(self._head[: end + 4]))
            if rest:  # ttyd may send right after its 101; keep it for the browser
                super().data_received(rest)
        elif len(self._head) > self.MAX_HEAD:
            self.head.set_exception(ConnectionError("oversized handshake response from ttyd"))
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(ConnectionError("ttyd closed during the handshake"))
        super().connection_lost(exc)


class Link:
    """An open relay between a browser and ttyd; closing either side closes the other."""

    def __init__(self, browser: _Side, ttyd: TtydSide) -> None:
        self.browser = browser
        self.ttyd = ttyd

    async def wait_closed(self) -> None:
        await asyncio.gather(self.browser.closed, self.ttyd.closed)

    def close(self) -> None:
        """End the terminal now (the browser sees the connection drop, as after a restart)."""
        self.browser.close()
        self.ttyd.close()


async def open_link(
    browser: IOStream, ttyd: TtydSide, handshake: bytes, on_user_input: Callable[[], None]
) -> Link:
    """Send ``handshake`` (the proxy's 101) to the browser, then copy bytes both ways until
    either side closes; ``on_user_input`` is called for each chunk carrying a keystroke or
    resize."""
    scanner = ClientFrameScanner()

    def inspect(chunk: bytes) -> None:
        if scanner.feed(chunk):
            on_user_input()

    # Move the browser's socket from tornado to an asyncio transport: a duplicate of the
    # descriptor keeps the connection open when tornado lets go of its own.
    sock = socket.socket(fileno=os.dup(browser.socket.fileno()))
    browser.close()
    loop = asyncio.get_running_loop()
    _, browser_side = await loop.connect_accepted_socket(lambda: _Side(inspect), sock=sock)
    assert browser_side.transport is not None and ttyd.transport is not None
    browser_side.transport.write(handshake)
    browser_side.peer, ttyd.peer = ttyd, browser_side
    if ttyd.pending:
        browser_side.transport.write(bytes(ttyd.pending))
        ttyd.pending.clear()
    return Link(browser_side, ttyd)
