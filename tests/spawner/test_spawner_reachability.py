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
from devplane_spawner.reachability import Attempts, host_and_port, wait_connectable


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
        attempts = Attempts()
        waiting = asyncio.create_task(wait_connectable("127.0.0.1", port, attempts))
        # Long enough for a growing back-off (JupyterHub's: 0.2, 0.4, 0.8 s, ...) to leave a
        # gap of most of a second after the port opens.
        await asyncio.sleep(1.5)
        assert not waiting.done()  # refused so far, and still trying
        assert "refused" in attempts.last_error.lower()
        server.listen()
        listening = time.monotonic()
        await asyncio.wait_for(waiting, 5)
        # Retried at a steady short interval, not with a growing back-off.
        assert time.monotonic() - listening < 0.75


async def test_a_lost_first_attempt_does_not_hold_up_the_next(monkeypatch):
    """SYNs are dropped for 1.2 s; a single attempt would wait for the kernel's
    retransmissions (1 s, then 3 s, after its first). Fresh attempts connect soon after the
    way is clear: the one begun at 0.7 s gives up at 1.5 s, the next one connects."""
    # Pinned, so that retuning the default does not change what this test measures.
    monkeypatch.setattr(reachability, "FIRST_ATTEMPT_SECONDS", 0.1)
    with socket.socket() as server, socket.socket() as filler:
        server.bind(("127.0.0.1", 0))
        server.listen(0)  # an accept queue of one connection
        port = server.getsockname()[1]
        filler.connect(("127.0.0.1", port))  # fills it: the kernel drops SYNs from now on
        begun = time.monotonic()
        attempts = Attempts()
        waiting = asyncio.create_task(wait_connectable("127.0.0.1", port, attempts))
        await asyncio.sleep(1.2)
        assert not waiting.done()
        assert attempts.last_error.startswith("no answer within")
        server.accept()[0].close()  # room in the queue again
        await asyncio.wait_for(waiting, 10)
        assert time.monotonic() - begun < 2.5


async def test_gives_up_when_bounded():
    with unused_port() as port:
        begun = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.4):
                await wait_connectable("127.0.0.1", port)
        assert time.monotonic() - begun < 2


async def test_a_name_that_does_not_resolve_is_retried_and_reported(monkeypatch):
    # The resolver answers "no such name" for this one name. A real lookup of a made-up name
    # would leave this machine (tests send traffic to loopback only).
    resolve = socket.getaddrinfo

    def no_such_name(host, *args, **kwargs):
        if host == "ws-gone.devplane.svc":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    attempts = Attempts()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1.2):
            await wait_connectable("ws-gone.devplane.svc", 80, attempts)
    assert attempts.last_error == "ws-gone.devplane.svc does not resolve: Name or service not known"
    assert 2 <= attempts.count <= 4  # one lookup every half second, not a tight loop
