"""What counts as use of a workspace, and reporting it to the hub.

The rule (docs/workspace.md, "Activity"):

* a browser message that ttyd turns into keystrokes (``'0'`` + data) or a terminal resize
  (``'1'`` + JSON) counts, at the moment the proxy forwards it;
* output in any tmux pane counts, with or without a browser attached: the workspace
  container's watcher writes the epoch second of the latest pane activity to
  ``DEVPLANE_ACTIVITY_FILE`` and the proxy reads it;
* nothing else counts: not an open tab, not WebSocket pings/pongs, not ttyd's handshake
  message (``{"AuthToken": ...}``), not page or asset loads, not the hub's readiness probe.

Reports go to ``JUPYTERHUB_ACTIVITY_URL`` at most once per ``activity_interval`` seconds and
only when something newer than the last report happened, so an idle workspace stops reporting
and the idle culler can stop it.
"""

from __future__ import annotations

import asyncio
import json
import logging
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


class ActivityTracker:
    """Latest real activity, from the browser (pushed) and from tmux (pulled from a file)."""

    def __init__(self, activity_file: str = "") -> None:
        self.activity_file = Path(activity_file) if activity_file else None
        self.last_input: float = 0.0

    def record_input(self) -> None:
        self.last_input = time.time()

    def pane_activity(self) -> float:
        """Epoch seconds the watcher last saw tmux pane output, or 0 when unknown."""
        if self.activity_file is None:
            return 0.0
        try:
            return float(self.activity_file.read_text().strip() or 0)
        except (OSError, ValueError):
            # Not written yet (no tmux server before the first attach) or mid-replace.
            return 0.0

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
            await self.report_once()

    def start(self) -> None:
        if not self.settings.activity_url:
            log.warning("JUPYTERHUB_ACTIVITY_URL is not set; activity is not reported")
            return
        self._task = asyncio.get_running_loop().create_task(self.run())
