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
from urllib.parse import urlsplit

# The first attempts are short: a connection inside a cluster is set up in well under a
# millisecond once routable, and a lost one should cost little. Later attempts get longer,
# so a slow network is not mistaken for an unreachable one.
FIRST_ATTEMPT_SECONDS = 0.1
LONGEST_ATTEMPT_SECONDS = 2.0
# Between attempts: kube-proxy programs new endpoints at most once a second by default.
RETRY_INTERVAL_SECONDS = 0.05


def host_and_port(url: str) -> tuple[str, int]:
    """``("ws-alice.devplane.svc", 8888)`` from ``"http://ws-alice.devplane.svc:8888/"``."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ValueError(f"{url!r} has no host")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


async def wait_connectable(host: str, port: int) -> None:
    """Return once a TCP connection to ``host:port`` is set up; bound it with
    ``asyncio.timeout``. Each attempt uses a new socket, so one lost connection does not hold
    up the next."""
    attempt = FIRST_ATTEMPT_SECONDS
    while True:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), attempt)
        except TimeoutError:
            attempt = min(attempt * 2, LONGEST_ATTEMPT_SECONDS)
            continue  # the attempt took its time already
        except OSError:  # refused (not routed yet), unreachable, or the name not resolvable yet
            await asyncio.sleep(RETRY_INTERVAL_SECONDS)
            continue
        writer.close()
        # Reset by the peer on close: it was connectable, which is all we asked.
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
