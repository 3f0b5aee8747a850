"""ttyd's own page, read from a running ttyd: what the auth proxy's copy must equal.

The auth proxy serves ttyd's page from its own copy (``devplane_authproxy/ttyd_index.html.gz``)
and never from the ttyd socket, which the workspace's owner controls. When the pinned ttyd
changes, refresh the copy from it:

    python -m devplane_dev.ttyd_page        # runs the pinned ttyd, writes the proxy's copy

``tests/workspace/test_authproxy_upstream_trust.py`` fails while the two differ.
"""

from __future__ import annotations

import gzip
import http.client
import shutil
import socket
import sys
from pathlib import Path

from .paths import ROOT, TTYD_BINARY
from .procs import ManagedProcess, short_tempdir

PROXY_COPY = ROOT / "devplane_authproxy" / "ttyd_index.html.gz"


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(str(self.path))


def fetch_page(ttyd_socket: Path) -> bytes:
    """``GET /`` from the ttyd listening on ``ttyd_socket``, uncompressed."""
    connection = _UnixConnection(ttyd_socket)
    try:
        connection.request("GET", "/")  # no Accept-Encoding: ttyd inflates its stored page
        response = connection.getresponse()
        if response.status != 200:
            raise RuntimeError(f"ttyd at {ttyd_socket} answered {response.status} for its page")
        return response.read()
    finally:
        connection.close()


def page_of_pinned_ttyd() -> bytes:
    """Run the pinned ttyd (``paths.TTYD_BINARY``) just long enough to read its page."""
    workdir = short_tempdir("dp-ttyd-page-")
    sock = workdir / "ttyd.sock"
    process = ManagedProcess([str(TTYD_BINARY), "-W", "-i", str(sock), "true"], workdir / "log")
    try:
        process.wait_until(f"its socket {sock}", sock.is_socket, timeout=20)
        return fetch_page(sock)
    finally:
        process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def write_proxy_copy(page: bytes, path: Path = PROXY_COPY) -> None:
    # mtime=0: the same page makes the same file, so a refresh without a change is no diff.
    path.write_bytes(gzip.compress(page, compresslevel=9, mtime=0))


def main() -> None:
    page = page_of_pinned_ttyd()
    write_proxy_copy(page)
    print(f"wrote {PROXY_COPY} ({len(page)} bytes of ttyd's page from {TTYD_BINARY})")


if __name__ == "__main__":
    sys.exit(main())
