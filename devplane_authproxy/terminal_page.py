"""ttyd's terminal page, from the proxy's own copy, with the policy that confines it.

The page is never fetched from the ttyd socket: whatever answers there may be the workspace
owner's own server, and a page (or a ``Set-Cookie``) from it, served on the hub's origin to
an admin, would be the owner's script running with the admin's hub session. So the proxy
serves the page the pinned ttyd ships (``ttyd_index.html.gz``, the bytes ttyd 1.7.7 serves,
refreshed by ``python -m devplane_dev.ttyd_page`` and checked against the pinned ttyd by the
tests), and relays only the terminal's WebSocket.

The Content-Security-Policy lets the page run exactly its own inline script (by hash) and
talk to nothing but its own origin (the WebSocket and the ``token`` fetch): whatever the
terminal stream makes the page do, it cannot load or send anything elsewhere.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

PAGE_FILE = Path(__file__).with_name("ttyd_index.html.gz")
_INLINE_SCRIPT = re.compile(rb"<script\b[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)


def build_csp(html: bytes) -> str:
    """The page's Content-Security-Policy: its own inline scripts (by SHA-256) and nothing else.

    Styles stay ``'unsafe-inline'``: xterm.js writes ``<style>`` elements at run time, and a
    style can neither run code nor, with ``img-src``/``font-src`` limited to ``data:`` and
    ``connect-src`` to our own origin, send anything anywhere.
    """
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {hashes}",
            "style-src 'unsafe-inline'",
            "img-src data:",
            "font-src data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'self'",
        ]
    )


@dataclass(frozen=True)
class TerminalPage:
    """The page as stored (gzip, for browsers that accept it), inflated, and its policy."""

    gzipped: bytes
    html: bytes
    csp: str

    @classmethod
    def load(cls, path: Path = PAGE_FILE) -> TerminalPage:
        gzipped = path.read_bytes()
        html = gzip.decompress(gzipped)
        if not _INLINE_SCRIPT.search(html):
            raise ValueError(f"{path} holds no ttyd page (no inline script)")
        return cls(gzipped=gzipped, html=html, csp=build_csp(html))
