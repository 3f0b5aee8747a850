"""What counts as use of a workspace, and reporting it to the hub.

The rule (docs/workspace.md, "Activity"):

* a browser message that ttyd turns into keystrokes (``'0'`` + data) or a terminal resize
  (``'1'`` + JSON) counts, at the moment the proxy forwards it;
* output in any tmux pane counts, with or without a browser attached: the workspace
  container's watcher writes the epoch second of the latest pane activity to
  ``DEVPLANE_ACTIVITY_FILE`` and the proxy reads it (``read_activity_file``: the file is in a
  directory the user writes to, so it is read as untrusted input);
* nothing else counts: not an open tab, not WebSocket pings/pongs, not ttyd's handshake
  message (``{"AuthToken": ...}``), not page or asset loads, not the hub's readiness probe.

Reports go to ``JUPYTERHUB_ACTIVITY_URL`` at most once per ``activity_interval`` seconds and
only when something newer than the last report happened, so an idle workspace stops reporting
and the idle culler can stop it.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import math
import os
import stat
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .settings import ProxySettings

log = logging.getLogger("devplane.authproxy.activity")

# ttyd client-to-server commands (ttyd 1.7 protocol): INPUT and RESIZE_TERMINAL are real use.
_USER_COMMANDS = frozenset(b"01")


def is_user_input(message: str | bytes) -> bool:
    """True for a ttyd client message that is a keystroke or a resize."""
    if not message:
        return False
    first = message[0] if isinstance(message, bytes) else ord(message[0])
    return first in _USER_COMMANDS


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


# The watcher writes one epoch second ("1767225600\n"); anything longer is not its doing.
MAX_ACTIVITY_BYTES = 32
# Both containers read the node's clock; a minute covers a write racing a report.
CLOCK_SKEW = 60.0


def read_activity_file(path: Path, now: float) -> tuple[float, str]:
    """``(epoch seconds, "")`` from the watcher's file, or ``(0.0, why it was ignored)``.

    The user's processes can put anything at that path. A FIFO would block a plain ``open()``
    (and with it the proxy's event loop), a link could point at ``/dev/zero``, and a number
    like ``1e30`` is no time at all. So: opened non-blocking without following a link, a
    regular file only, at most ``MAX_ACTIVITY_BYTES`` read, and a time between 0 and now.
    A missing or empty file is no activity yet (no tmux server before the first attach), not
    a problem.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return 0.0, ""
    except OSError as error:
        if error.errno == errno.ELOOP:
            return 0.0, "is a symbolic link"
        return 0.0, f"cannot be opened ({error.strerror})"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return 0.0, "is not a regular file"
        data = os.read(fd, MAX_ACTIVITY_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_ACTIVITY_BYTES:
        return 0.0, f"is longer than {MAX_ACTIVITY_BYTES} bytes"
    try:
        value = float(data.decode("ascii").strip() or 0)
    except (UnicodeDecodeError, ValueError):
        return 0.0, "does not hold a number"
    if not (math.isfinite(value) and 0 <= value <= now + CLOCK_SKEW):
        return 0.0, "holds a time out of range"
    return value, ""


class ActivityTracker:
    """Latest real activity, from the browser (pushed) and from tmux (pulled from a file)."""

    def __init__(self, activity_file: str = "") -> None:
        self.activity_file = Path(activity_file) if activity_file else None
        self.last_input: float = 0.0
        self._problem = ""  # why the file was last ignored; said once, not every second

    def record_input(self) -> None:
        self.last_input = time.time()

    def pane_activity(self) -> float:
        """Epoch seconds the watcher last saw tmux pane output, or 0 when unknown."""
        if self.activity_file is None:
            return 0.0
        value, problem = read_activity_file(self.activity_file, time.time())
        if problem and problem != self._problem:
            log.warning(
                "activity file %s %s; ignored until it holds an epoch second",
                self.activity_file,
                problem,
            )
        self._problem = problem
        return value

    def latest(self) -> float:
        return max(self.last_input, self.pane_activity())


class ActivityReporter:
    """Posts the tracker's latest activity to the hub, throttled."""

    def __init__(self, settings: ProxySettings, tracker: ActivityTracker) -> None:
        self.settings = settings
        self.tracker = tracker
        self.reported: float = 0.0
        self.http = AsyncHTTPClient(force_instance=True)
        self._task: asyncio.Task[None] | None = None

    def body(self, ts: float) -> dict[str, Any]:
        stamp = _iso(ts)
        return {
            "servers": {self.settings.server_name: {"last_activity": stamp}},
            "last_activity": stamp,
        }

    async def report_once(self) -> bool:
        """Report if something happened since the last report; True when a report was sent."""
        latest = self.tracker.latest()
        if latest <= self.reported:
            return False
        request = HTTPRequest(
            self.settings.activity_url,
            method="POST",
            headers={
                "Authorization": f"token {self.settings.api_token}",
                "Content-Type": "application/json",
            },
            body=json.dumps(self.body(latest)),
            request_timeout=10,
        )
        try:
            await self.http.fetch(request)
        except (HTTPClientError, OSError) as error:
            # The hub may be restarting; keep `reported` so the next round retries.
            log.warning("activity report to %s failed: %s", self.settings.activity_url, error)
            return False
        self.reported = latest
        log.debug("reported activity at %s", _iso(latest))
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.activity_interval)
            try:
                await self.report_once()
            except Exception:
                # One bad round must not end reporting for the life of the pod: without
                # reports the culler would stop a workspace in use.
                log.exception("activity report failed")

    def start(self) -> None:
        if not self.settings.activity_url:
            log.warning("JUPYTERHUB_ACTIVITY_URL is not set; activity is not reported")
            return
        self._task = asyncio.get_running_loop().create_task(self.run())
