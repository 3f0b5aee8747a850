"""The spawner's wait for a Ready workspace's address to take connections (``reachability``),
against real sockets on loopback: refused until something listens, and connections whose
first packet is lost (a listener whose accept queue is full drops them, as a half-programmed
Service does)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from devplane_spawner import reachability
from devplane_spawner.reachability import host_and_port, wait_connectable


@contextmanager
def unused_port() -> Iterator[int]:
    """A port nothing listens on while the block runs (bound, never listening: a connection
    to it is refused, and no other program can take it meanwhile)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


def test_host_and_port_of_a_service_url():
    assert host_and_port("http://ws-alice.devplane.svc:8888/") == ("ws-alice.devplane.svc", 8888)
    assert host_and_port("http://10.96.0.7:8888") == ("10.96.0.7", 8888)
    assert host_and_port("https://ws.example") == ("ws.example", 443)
    with pytest.raises(ValueError, match="has no host"):
        host_and_port("/user/alice/")


async def test_refused_until_something_listens():
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        waiting = asyncio.create_task(wait_connectable("127.0.0.1", port))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # refused so far, and still trying
        server.listen()
        listening = time.monotonic()
        await asyncio.wait_for(waiting, 5)
        # Retried at a steady short interval, not with JupyterHub's growing back-off.
        assert time.monotonic() - listening < 0.5


async def test_a_lost_first_attempt_does_not_hold_up_the_next(monkeypatch):
    """The first SYNs are dropped; a single attempt would wait for the kernel's retransmission
    (1 s or more). Fresh short attempts connect soon after the way is clear."""
    monkeypatch.setattr(reachability, "FIRST_ATTEMPT_SECONDS", 0.1)
    with socket.socket() as server, socket.socket() as filler:
        server.bind(("127.0.0.1", 0))
        server.listen(0)  # an accept queue of one connection
        port = server.getsockname()[1]
        filler.connect(("127.0.0.1", port))  # fills it: the kernel drops SYNs from now on
        begun = time.monotonic()
        waiting = asyncio.create_task(wait_connectable("127.0.0.1", port))
        await asyncio.sleep(0.15)
        assert not waiting.done()
        server.accept()[0].close()  # room in the queue again
        await asyncio.wait_for(waiting, 5)
        assert time.monotonic() - begun < 0.9


async def test_gives_up_when_bounded():
    with unused_port() as port:
        begun = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.4):
                await wait_connectable("127.0.0.1", port)
        assert time.monotonic() - begun < 2
