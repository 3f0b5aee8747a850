"""devplane_dev.procs.free_port: ports for servers that tests and the demo start.

The ports must stay out of the kernel's ephemeral range, which it also gives to outgoing
connections: CI once failed when the demo's hub port, picked by the kernel, was taken by a
connection before the hub bound it. No cluster needed.
"""

from __future__ import annotations

import socket

from devplane_dev.procs import _ephemeral_range, free_port


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range():
    low, _ = _ephemeral_range()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(10000 <= p < min(low, 30000) for p in ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[-1]))


def test_a_port_someone_listens_on_is_never_handed_out():
    taken = []
    try:
        for port in range(20000, 20200):  # occupy a block, then ask many times
            sock = socket.socket()
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            sock.listen()
            taken.append(sock)
        busy = {s.getsockname()[1] for s in taken}
        assert not busy & {free_port() for _ in range(300)}
    finally:
        for sock in taken:
            sock.close()
