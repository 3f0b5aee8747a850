"""What a workspace's owner can put on its ttyd socket: the server the auth proxy must not trust.

The owner runs every process of the workspace container, so whatever answers on
``/run/devplane/ttyd.sock`` may be theirs rather than ttyd. This one

* records the head of every request it receives (one JSON line each: the request line and the
  header lines, verbatim), so a test can tell exactly what the auth proxy sent it;
* answers a WebSocket upgrade with ``101``, a ``Set-Cookie`` for the hub's login cookie and one
  ttyd output message (``'0'`` + text), then echoes nothing and waits for the close;
* answers anything else with its own HTML page and the same ``Set-Cookie``.

    python -m devplane_dev.hostile_ttyd --socket PATH --record PATH

``HostileTtyd`` runs it as a process for the tests, where ``LocalWorkspace`` would run ttyd.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import sys
from pathlib import Path

from .procs import ManagedProcess

PAGE = b"<!DOCTYPE html><html><body><h1>HOSTILE-PAGE</h1></body></html>"
# What the owner would like an admin's browser to keep: the hub's own login cookie, replaced.
SET_COOKIE = "jupyterhub-hub-login=hostile-cookie; Path=/hub/"
OUTPUT = b"0HOSTILE-OUTPUT\r\n"
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()


def _frame(payload: bytes) -> bytes:
    """One unmasked binary frame (server to client), payload < 126 bytes."""
    return bytes((0x82, len(payload))) + payload


class _Server:
    def __init__(self, record: Path) -> None:
        self.record = record

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ValueError):
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            lines = head.split("\r\n")[:-2]
            with self.record.open("a") as record:
                record.write(json.dumps(lines) + "\n")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:])
            }
            if headers.get("upgrade", "").lower() == "websocket":
                writer.write(
                    (
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        f"Sec-WebSocket-Accept: {_accept(headers.get('sec-websocket-key', ''))}\r\n"
                        "Sec-WebSocket-Protocol: tty\r\n"
                        f"Set-Cookie: {SET_COOKIE}\r\n\r\n"
                    ).encode()
                    + _frame(OUTPUT)
                )
                await writer.drain()
                while await reader.read(65536):
                    pass
            else:
                writer.write(
                    (
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                        f"Set-Cookie: {SET_COOKIE}\r\nContent-Length: {len(PAGE)}\r\n"
                        "Connection: close\r\n\r\n"
                    ).encode()
                    + PAGE
                )
                await writer.drain()
        writer.close()


async def serve(socket_path: Path, record: Path) -> None:
    server = await asyncio.start_unix_server(_Server(record).handle, path=str(socket_path))
    print(f"hostile server on {socket_path}", flush=True)
    async with server:
        await server.serve_forever()


class HostileTtyd:
    """The hostile server as a process at a workspace's ttyd socket path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "run" / "ttyd.sock"
        self.record = root / "requests.jsonl"
        self.process: ManagedProcess | None = None

    def start(self, timeout: float = 20) -> None:
        self.socket.parent.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        self.record.touch()
        argv = [sys.executable, "-m", __name__, "--socket", str(self.socket)]
        self.process = ManagedProcess(
            [*argv, "--record", str(self.record)], self.root / "hostile.log"
        )
        self.process.wait_until(f"its socket {self.socket}", self.socket.is_socket, timeout)

    def requests(self) -> list[list[str]]:
        """Every request head received so far: [request line, header line, ...]."""
        return [json.loads(line) for line in self.record.read_text().splitlines()]

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--record", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.socket, args.record))


if __name__ == "__main__":
    main()
