"""The relay's frame scanner finds ttyd keystrokes/resizes in raw client bytes, any split."""

from __future__ import annotations

import os

import pytest

from devplane_authproxy.wsrelay import ClientFrameScanner


def client_frame(payload: bytes, opcode: int = 0x2, fin: bool = True) -> bytes:
    """A masked client frame, as a browser sends it (RFC 6455 5.2)."""
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([0x80 | size])
    elif size < 1 << 16:
        head += bytes([0x80 | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + size.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def scan(stream: bytes, chunk: int) -> int:
    scanner = ClientFrameScanner()
    return sum(scanner.feed(stream[i : i + chunk]) for i in range(0, len(stream), chunk))


HANDSHAKE = client_frame(b'{"AuthToken":"","columns":80,"rows":24}')
KEY = client_frame(b"0a")
RESIZE = client_frame(b'1{"columns":100,"rows":40}')
PASTE = client_frame(b"0" + b"x" * 70_000)  # 64-bit length
MEDIUM = client_frame(b"0" + b"y" * 300)  # 16-bit length
PING = client_frame(b"0ping-payload", opcode=0x9)  # control frame: never input
PONG = client_frame(b"1", opcode=0xA)
PAUSE = client_frame(b"2")


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
def test_counts_only_user_commands_whatever_the_chunking(chunk):
    assert scan(HANDSHAKE + PING + PONG + PAUSE, chunk) == 0
    # Each user command is found once (one per feed() at most, so count with chunk=1).
    assert scan(KEY, chunk) == 1
    assert scan(HANDSHAKE + RESIZE + PING + PASTE + PONG + MEDIUM, 1) == 3
    assert scan(HANDSHAKE + RESIZE + PING + PASTE + PONG + MEDIUM, chunk) >= 1


def test_text_frames_count_and_continuations_do_not_restart():
    first = client_frame(b"0ab", opcode=0x1, fin=False)
    cont = client_frame(b"1cd", opcode=0x0)  # continuation: its first byte is not a command
    assert scan(first, 1) == 1
    assert scan(cont, 1) == 0
