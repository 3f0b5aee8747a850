"""The hub's spawn progress stream, read the way a client reads it, and what a start must say.

JupyterHub serves ``/hub/api/users/<name>/server/progress`` only while a spawn is pending, and
asks the spawner for its events when a client subscribes (a client that comes after the
server is ready gets one "ready" event and nothing else). A test that wants DevPlane's own
lines must therefore subscribe while the spawn is certainly pending: hold the workspace's
server from answering (the hub tests hold the stand-in responders), follow the stream, wait
for the lines, then let the spawn finish.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import requests

# DevPlane's lines for a start (devplane_spawner/progress.py status_events), in the order a
# start goes. A subscriber gets each of them whatever the moment it subscribed: the spawner
# derives them from the Workspace's status, listing every step already done. The lines for
# steps still under way ("Creating your home volume", "Starting your workspace") and the
# operator's Events come only if a status was caught midway: they may come between these.
START_LINES = (
    "Your workspace has been requested",
    "Your home volume is ready",
    "Your workspace is running",
    "Your workspace is ready, connecting",
)


class ProgressStream:
    """Follows one server's progress event-stream in a thread, collecting every event."""

    def __init__(self, hub_url: str, user: str, token: str, timeout: float = 120) -> None:
        self.url = f"{hub_url}/hub/api/users/{user}/server/progress"
        self.events: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._token = token
        self._timeout = timeout
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with requests.get(
                self.url,
                headers={"Authorization": f"token {self._token}"},
                stream=True,
                timeout=(10, self._timeout),
            ) as response:
                response.raise_for_status()
                for line in response.iter_lines(decode_unicode=True):
                    if line and line.startswith("data:"):
                        with self._changed:
                            self.events.append(json.loads(line[len("data:") :]))
                            self._changed.notify_all()
        except BaseException as err:  # reported by wait_for_message() and result()
            self.error = err
        finally:
            with self._changed:
                self._changed.notify_all()

    def wait_for_message(self, message: str, timeout: float) -> None:
        """Until an event says ``message``; fails early if the spawn fails or the stream ends."""

        def settled() -> bool:
            return (
                any(e.get("message") == message or e.get("failed") for e in self.events)
                or not self._thread.is_alive()
            )

        with self._changed:
            self._changed.wait_for(settled, timeout)
            events = list(self.events)
        if not any(e.get("message") == message for e in events):
            raise AssertionError(
                f"the progress stream did not say {message!r} within {timeout}s "
                f"(error: {self.error!r}); it delivered: {events}"
            )

    def result(self, timeout: float) -> list[dict[str, Any]]:
        """Every event, once the hub has ended the stream (after the ready or failed event)."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"the stream did not end within {timeout}s: {self.events}")
        if self.error is not None:
            raise AssertionError(f"reading the stream failed: {self.error!r}; {self.events}")
        return list(self.events)


def check_lines_in_order(messages: Sequence[str], lines: Sequence[str] = START_LINES) -> None:
    """Each of ``lines`` was delivered, first in this order; other lines may come between."""
    missing = [line for line in lines if line not in messages]
    assert not missing, f"the progress stream never said {missing}; it said: {list(messages)}"
    first = [messages.index(line) for line in lines]
    assert first == sorted(first), f"DevPlane's lines out of order: {list(messages)}"


def check_start_progress(events: Sequence[dict[str, Any]], server_url: str) -> None:
    """A whole stream for a start that succeeded: the hub's first line, DevPlane's lines in
    order with a bar that never goes back, then the hub's ready event pointing at the server."""
    messages = [e.get("message", "") for e in events]
    assert not [e for e in events if e.get("failed")], f"a start failed: {events}"
    assert messages[:1] == ["Server requested"], messages  # JupyterHub's own first event
    check_lines_in_order(messages)
    bar = [e["progress"] for e in events if "progress" in e]
    assert bar == sorted(bar), f"the progress bar went back: {bar}"
    last = events[-1]
    assert last.get("ready") is True and last.get("url") == server_url, events
