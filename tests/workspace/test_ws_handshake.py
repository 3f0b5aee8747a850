"""The WebSocket handshakes the proxy writes itself, on each side (RFC 6455, 4)."""

from __future__ import annotations

import pytest
from tornado.httputil import HTTPHeaders

from devplane_authproxy.wshandshake import (
    HandshakeError,
    accept_for,
    browser_response,
    check_upstream_response,
    client_key,
    offered_protocols,
    upstream_request,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455's example


def headers(**values: str) -> HTTPHeaders:
    return HTTPHeaders({name.replace("_", "-"): value for name, value in values.items()})


def test_accept_value_is_rfc_6455_s():
    assert accept_for(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        (headers(Sec_WebSocket_Key=KEY), "Version: 13"),
        (headers(Sec_WebSocket_Version="13", Sec_WebSocket_Key="short"), "16 bytes"),
        (headers(Sec_WebSocket_Version="13", Sec_WebSocket_Key="a\r\nX: y"), "16 bytes"),
    ],
)
def test_a_browser_handshake_that_is_not_one_is_named(given, problem):
    with pytest.raises(HandshakeError, match=problem):
        client_key(given)


def test_offered_protocols_are_tokens():
    assert offered_protocols(headers(Sec_WebSocket_Protocol="tty, other")) == ["tty", "other"]
    assert offered_protocols(headers()) == []
    with pytest.raises(HandshakeError, match="tokens"):
        offered_protocols(headers(Sec_WebSocket_Protocol="tty\r\nX-Injected: yes"))


def test_the_request_to_the_socket_carries_nothing_of_the_browser_s():
    request = upstream_request("/ws", "localhost", KEY, ["tty"]).decode()
    assert request.split("\r\n") == [
        "GET /ws HTTP/1.1", "Host: localhost", "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Version: 13", f"Sec-WebSocket-Key: {KEY}", "Sec-WebSocket-Protocol: tty",
        "", "",
    ]  # fmt: skip


def _answer(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


GOOD = ("HTTP/1.1 101 Switching Protocols", f"Sec-WebSocket-Accept: {accept_for(KEY)}")


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (_answer("HTTP/1.1 200 OK", "Set-Cookie: a=b"), "with 200, not 101"),
        (_answer("garbage"), "with no status, not 101"),
        (_answer("HTTP/1.1 101 X", "Sec-WebSocket-Accept: wrong"), "wrong Sec-WebSocket-Accept"),
        (_answer(*GOOD, "Sec-WebSocket-Protocol: evil"), "did not offer"),
        (_answer(*GOOD, "Sec-WebSocket-Extensions: permessage-deflate"), "extension"),
    ],
)
def test_a_socket_s_answer_that_is_not_the_expected_101_is_refused(answer, problem):
    with pytest.raises(HandshakeError, match=problem):
        check_upstream_response(answer, KEY, ["tty"])


def test_the_browser_gets_the_proxy_s_101_whatever_the_socket_added():
    answer = _answer(*GOOD, "Sec-WebSocket-Protocol: tty", "Set-Cookie: jupyterhub-hub-login=x")
    protocol = check_upstream_response(answer, KEY, ["tty"])
    assert protocol == "tty"
    response = browser_response("x3JJHMbDL1EzLkh9GBhXDw==", protocol).decode()
    assert response.split("\r\n") == [
        "HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=", "Sec-WebSocket-Protocol: tty",
        "", "",
    ]  # fmt: skip
