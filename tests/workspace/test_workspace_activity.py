"""Activity that means something: what the auth proxy reports to the real hub.

dave's workspace: the proxy reports at most once a second (DEVPLANE_ACTIVITY_INTERVAL=1), the
watcher polls tmux every second, ttyd pings every second, and the hub derives no activity from
proxy traffic (last_activity_interval = 0), so the hub's last_activity for dave's server moves
only when the auth proxy reports.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
import requests
from devplane_dev.localhub import iso_to_epoch
from devplane_dev.poll import wait_for
from devplane_dev.ttyd_client import TtydSession

from devplane_authproxy.activity import is_user_input

# Long enough for the watcher (1 s), the reporter (1 s) and the hub write to have happened.
SETTLE = 3.0


@pytest.mark.parametrize(
    ("message", "counts"),
    [
        (b"0ls\r", True),  # keystrokes
        (b'1{"columns":80,"rows":24}', True),  # resize
        ("0x", True),  # a text frame is the same command
        (b'{"AuthToken":"","columns":80,"rows":24}', False),  # ttyd's handshake
        (b"2", False),  # pause (flow control), not the user
        (b"3", False),  # resume
        (b"", False),
    ],
)
def test_which_ttyd_messages_count(message, counts):
    assert is_user_input(message) is counts


async def _activity(hub, name: str = "dave") -> float:
    return iso_to_epoch(await asyncio.to_thread(hub.server_activity, name))


async def _wait_for_activity_after(hub, since: float, wait: float = 8.0) -> float:
    deadline = asyncio.get_running_loop().time() + wait
    while asyncio.get_running_loop().time() < deadline:
        now = await _activity(hub)
        if now > since:
            return now
        await asyncio.sleep(0.25)
    raise AssertionError(f"the hub saw no activity after {since} within {wait}s")


async def _open_tab(deployment, ping: float | None = None) -> TtydSession:
    hub = deployment.hub
    dave = await asyncio.to_thread(hub.login, "dave")
    term = await hub.open_terminal(dave, "dave")
    if ping:
        # A tab whose client keeps the connection alive with WebSocket pings.
        async def keepalive() -> None:
            while True:
                await asyncio.sleep(ping)
                await term.ws.ping()

        term.keepalive = asyncio.create_task(keepalive())  # type: ignore[attr-defined]
    await term.drain(quiet=1.0)
    await asyncio.sleep(SETTLE)
    return term


async def _close_tab(term: TtydSession) -> None:
    task = getattr(term, "keepalive", None)
    if task:
        task.cancel()
    await term.close()


async def test_an_idle_open_tab_is_not_activity(deployment):
    term = await _open_tab(deployment, ping=0.5)
    try:
        before = await _activity(deployment.hub)
        # Several report rounds with pings both ways (ours and ttyd's) and nothing typed.
        await asyncio.sleep(3 * SETTLE)
        await term.drain(quiet=0.2)
        assert await _activity(deployment.hub) == before
    finally:
        await _close_tab(term)


async def test_keystrokes_are_activity(deployment):
    term = await _open_tab(deployment)
    try:
        before = await _activity(deployment.hub)
        await term.type("x")
        await _wait_for_activity_after(deployment.hub, before)
    finally:
        # Ctrl-U: leave the prompt clean, and see it done before the tab goes (ttyd drops
        # input still in flight when the WebSocket closes).
        await term.type("\x15")
        await term.drain(quiet=0.5)
        await _close_tab(term)


async def test_a_resize_is_activity_even_without_output(deployment):
    term = await _open_tab(deployment)
    workspace = deployment.workspaces["dave"]
    try:
        before = await _activity(deployment.hub)
        pane_before = workspace.pane_activity()
        # Same size as the tab already has: the pty does not change, nothing is printed, so
        # only the proxy's own input tracking can have reported this.
        await term.resize(120, 30)
        await _wait_for_activity_after(deployment.hub, before)
        assert workspace.pane_activity() == pane_before
    finally:
        await _close_tab(term)


async def test_pane_output_with_no_browser_is_activity_until_it_stops(deployment):
    hub = deployment.hub
    term = await _open_tab(deployment)
    # An "agent" that keeps printing for 8 s after the browser goes away.
    # Ctrl-U first: whatever an earlier test left on the prompt must not prefix the command.
    await term.type("\x15(for i in $(seq 8); do sleep 1; echo tick-$i; done) &\r")
    await term.read_until(r"tick-1")
    await _close_tab(term)
    await asyncio.sleep(1.5)
    closed_at = await _activity(hub)
    after = await _wait_for_activity_after(hub, closed_at)
    assert after > closed_at
    # Once the output stops, so do the reports: an abandoned workspace goes quiet.
    await asyncio.sleep(8 + SETTLE)
    quiet = await _activity(hub)
    await asyncio.sleep(2 * SETTLE)
    assert await _activity(hub) == quiet


# mallory's activity file is written by nobody but these tests: her workspace runs no watcher.
HOSTILE_ACTIVITY = {
    "a FIFO": (lambda path: os.mkfifo(path), "is not a regular file"),
    "a directory": (lambda path: path.mkdir(), "is not a regular file"),
    "a link to /dev/zero": (lambda path: path.symlink_to("/dev/zero"), "is a symbolic link"),
    "1e30": (lambda path: path.write_text("1e30\n"), "holds a time out of range"),
    "nan": (lambda path: path.write_text("nan"), "holds a time out of range"),
    "a huge number": (lambda path: path.write_text("9" * 100_000), "is longer than"),
    "not a number": (lambda path: path.write_bytes(b"\x00" * 64), "is longer than"),
    "text": (lambda path: path.write_text("soon"), "does not hold a number"),
}


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    else:
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("content", list(HOSTILE_ACTIVITY))
def test_a_hostile_activity_file_neither_hangs_nor_stops_the_proxy(deployment, content):
    """Finding 11: the file is the user's; a FIFO hung the proxy, 1e30 stopped its reporter.

    The proxy reads it every second (DEVPLANE_ACTIVITY_INTERVAL=1) and says once why it ignores
    it; afterwards it still answers, and a good value written next is still reported.
    """
    hub = deployment.hub
    path = deployment.hostile.root / "run" / "activity"
    make, why = HOSTILE_ACTIVITY[content]
    mark = len(hub.log())
    _remove(path)
    make(path)
    try:
        wait_for(
            f"the proxy to say the activity file {why}",
            lambda: f"activity file {path} {why}" in hub.log()[mark:],
            timeout=15,
        )
        assert requests.get(f"{hub.url}/user/mallory/api", timeout=5).status_code == 200
    finally:
        _remove(path)
    before = iso_to_epoch(hub.server_activity("mallory"))
    stamp = time.time()
    path.write_text(f"{stamp:.3f}\n")
    wait_for(
        "a good value after the hostile one to be reported",
        lambda: iso_to_epoch(hub.server_activity("mallory")) > before,
        timeout=15,
    )
    assert iso_to_epoch(hub.server_activity("mallory")) <= stamp + 1
