"""Wait until a Ready workspace's address takes TCP connections, before the hub tries HTTP.

Why the spawner does this itself (docs/spawner.md, "Reaching a workspace"): a workspace's
Service becomes routable only when kube-proxy (or its replacement) has programmed the new
endpoint on the hub's node, which lags the pod's readiness by up to its sync period. Until
then a connection is refused, or, while the rules are being rewritten, its first packet
leaves without being translated. That connection is then lost for good: the connection
tracker pins every retransmission of it to the same untranslated path, so the attempt only
ends when the kernel gives up (3 s on a bridge where nothing answers for the ClusterIP, the
TCP timeout elsewhere). JupyterHub's own check backs off exponentially, to 5 s between
tries, and makes no attempt shorter than its HTTP client's timeout.

Short attempts on fresh sockets, retried at a short, steady interval, find the moment the
route works without either cost. Only a TCP handshake is made: nothing is sent, and the
auth proxy answers HTTP as usual afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from urllib.parse import urlsplit

# The first attempts are short: a connection inside a cluster is set up in well under a
# millisecond once routable, and a lost one should cost little. Later attempts get longer,
# so a slow network is not mistaken for an unreachable one.
FIRST_ATTEMPT_SECONDS = 0.1
LONGEST_ATTEMPT_SECONDS = 2.0
# After a refusal (the Service has no ready endpoint here yet): short, because the route
# appears at an instant nothing here can see, and a refused try costs next to nothing.
RETRY_INTERVAL_SECONDS = 0.05
# After a failed name lookup: each try is several queries to the cluster's DNS.
LOOKUP_RETRY_SECONDS = 0.5


def host_and_port(url: str) -> tuple[str, int]:
    """``("ws-alice.devplane.svc", 8888)`` from ``"http://ws-alice.devplane.svc:8888/"``."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"{url!r} has no host")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


class Attempts:
    """What the tries so far ended with, for a caller that gives up (the last one's error)."""

    def __init__(self) -> None:
        self.count = 0
        self.last_error: str = "no attempt finished"


async def wait_connectable(host: str, port: int, attempts: Attempts | None = None) -> None:
    """Return once a TCP connection to ``host:port`` is set up; bound it with
    ``asyncio.timeout``. Each attempt uses a new socket, so one lost connection does not hold
    up the next; ``attempts`` (when given) records how they ended."""
    seen = attempts or Attempts()
    attempt = FIRST_ATTEMPT_SECONDS
    while True:
        seen.count += 1
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the caller's
            # cancellation when its own attempt ends at the same moment.
            async with asyncio.timeout(attempt):
                _, writer = await asyncio.open_connection(host, port)
        except TimeoutError:
            seen.last_error = f"no answer within {attempt:g}s"
            attempt = min(attempt * 2, LONGEST_ATTEMPT_SECONDS)
            continue  # the attempt took its time already
        except socket.gaierror as e:  # the name does not resolve (yet)
            seen.last_error = f"{host} does not resolve: {e.strerror}"
            await asyncio.sleep(LOOKUP_RETRY_SECONDS)
            continue
        except OSError as e:  # refused (no ready endpoint here yet), or unreachable
            # asyncio's message names the address only; the errno says what happened.
            seen.last_error = os.strerror(e.errno) if e.errno else str(e)
            await asyncio.sleep(RETRY_INTERVAL_SECONDS)
            continue
        writer.close()
        # Reset by the peer on close: it was connectable, which is all we asked.
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
