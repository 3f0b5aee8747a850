"""The terminal WebSocket's opening handshake, on each side of the proxy (RFC 6455, 4).

Neither side's handshake is passed through. Whatever answers on the ttyd socket may be the
workspace owner's own server, and the browser may be an admin's; so:

* to the socket goes a request the proxy writes itself: ``GET <base>/ws``, the proxy's own key,
  and the subprotocols the browser offered; no cookie, no address, no header of the browser's;
* its answer must be a ``101`` with the accept value for that key and one of those
  subprotocols (anything else is a 502 that quotes nothing of it);
* to the browser goes a ``101`` the proxy writes itself: ``Upgrade``, ``Connection``, the
  accept value for the browser's key and the chosen subprotocol. No header of the socket's
  answer (a ``Set-Cookie`` for the hub's origin, say) ever reaches the browser.

No extension is offered (no compression): the relay reads the first byte of each frame.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re

from tornado.httputil import HTTPHeaders

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
MAX_PROTOCOLS = 8


class HandshakeError(ValueError):
    """A handshake that is not one: the message says what is wrong, quoting nothing of it."""


def accept_for(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + _GUID).encode("ascii")).digest()).decode()


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def client_key(headers: HTTPHeaders) -> str:
    """The browser's ``Sec-WebSocket-Key``, checked: version 13, 16 bytes in base64."""
    if headers.get("Sec-WebSocket-Version") != "13":
        raise HandshakeError("a WebSocket handshake needs Sec-WebSocket-Version: 13")
    key = headers.get("Sec-WebSocket-Key", "")
    try:
        if len(base64.b64decode(key, validate=True)) == 16:
            return key
    except (binascii.Error, ValueError):
        pass
    raise HandshakeError("Sec-WebSocket-Key is not 16 bytes in base64")


def offered_protocols(headers: HTTPHeaders) -> list[str]:
    """The subprotocols the browser offered (ttyd's page offers ``tty``), tokens only."""
    offered = [
        name.strip()
        for value in headers.get_list("Sec-WebSocket-Protocol")
        for name in value.split(",")
        if name.strip()
    ]
    if len(offered) > MAX_PROTOCOLS or not all(_TOKEN.fullmatch(name) for name in offered):
        raise HandshakeError("Sec-WebSocket-Protocol is not a short list of tokens")
    return offered


def _head(start: str, *headers: tuple[str, str]) -> bytes:
    """An HTTP head: the start line, then the headers that have a value."""
    lines = [start, *(f"{name}: {value}" for name, value in headers if value)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def upstream_request(path: str, host: str, key: str, protocols: list[str]) -> bytes:
    return _head(
        f"GET {path} HTTP/1.1",
        ("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Protocol", ", ".join(protocols)),
    )


def check_upstream_response(head: bytes, key: str, offered: list[str]) -> str | None:
    """The subprotocol the socket's ``101`` chose, or HandshakeError."""
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or status[1] != "101":
        code = status[1][:3] if len(status) > 1 and status[1].isdigit() else "no status"
        raise HandshakeError(f"the terminal answered the WebSocket with {code}, not 101")
    headers = HTTPHeaders()
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.add(name.strip(), value.strip())
    if headers.get("Sec-WebSocket-Accept") != accept_for(key):
        raise HandshakeError("the terminal's 101 has the wrong Sec-WebSocket-Accept")
    chosen = headers.get("Sec-WebSocket-Protocol") or None
    if chosen is not None and chosen not in offered:
        raise HandshakeError("the terminal chose a subprotocol the browser did not offer")
    if headers.get("Sec-WebSocket-Extensions"):
        raise HandshakeError("the terminal chose an extension nobody offered")
    return chosen


def browser_response(key: str, protocol: str | None) -> bytes:
    return _head(
        "HTTP/1.1 101 Switching Protocols",
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_for(key)),
        ("Sec-WebSocket-Protocol", protocol or ""),
    )
