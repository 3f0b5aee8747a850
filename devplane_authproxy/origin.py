"""Whether a WebSocket handshake comes from a page on the workspace's own origin.

Browsers send ``Origin`` on every WebSocket handshake and a page cannot forge it, so comparing
it with our own origin stops cross-site WebSocket hijacking, which would otherwise ride on the
user's cookie. An origin is a scheme, a host and a port, all three compared (RFC 6454): an
``https:`` page is not the ``http:`` site, and ``hub.example.com.evil.example``,
``hub.example.com@evil.example`` and ``null`` are nobody's.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from jupyterhub.utils import get_browser_protocol
from tornado.httputil import HTTPServerRequest

Origin = tuple[str, str, int]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origin(value: str, *, path_allowed: bool = False) -> Origin | None:
    """``(scheme, host, port)`` of a serialized origin; None for anything else (``null``,
    userinfo, a query, a path unless ``path_allowed``, a port that is no number)."""
    parts = urlsplit(value)
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if "@" in parts.netloc or parts.query or parts.fragment:
        return None
    if parts.path and not path_allowed:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return None
    return parts.scheme, parts.hostname.lower(), port


def request_origin(request: HTTPServerRequest) -> Origin | None:
    """The origin the browser used to reach us: its scheme as the outermost proxy saw it
    (X-Forwarded-Proto's first value; chp appends its own), and the Host it sent, which chp
    forwards unchanged."""
    host = request.headers.get("Host", "")
    return parse_origin(f"{get_browser_protocol(request)}://{host}")


def same_origin(origin: str | None, expected: Origin | None) -> bool:
    return bool(origin) and expected is not None and parse_origin(origin or "") == expected


def serialize(origin: Origin | None) -> str:
    """``http://127.0.0.1:8000``, for messages; ``unknown`` when the request had no usable Host."""
    return f"{origin[0]}://{origin[1]}:{origin[2]}" if origin else "unknown"
