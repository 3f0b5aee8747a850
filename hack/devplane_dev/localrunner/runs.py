"""A demo run's processes: the marker that finds them, and stopping every one of them.

Every process of a run carries the run's marker variable in its environment, so anything
that daemonised out of its process group (tmux servers, node workers) is still found and
stopped, and `stop_run()` can prove that nothing of this run is left.
"""

from __future__ import annotations

import os

from ..procs import ManagedProcess
from .supervisor import is_alive, kill_marked, processes_with_marker

RUN_MARKER_ENV = "DEVPLANE_DEMO_RUN"


def stop_run(procs: list[ManagedProcess], markers: list[tuple[str, str]]) -> list[int]:
    """Stop ``procs`` in reverse start order, then anything else carrying one of ``markers``
    (environment ``(name, value)`` pairs that identify the run).

    Returns the PIDs still carrying a marker afterwards (empty when the stop was clean).
    """
    for proc in reversed(procs):
        # The hub stops its services and the proxy its routes; give them time to.
        proc.stop(grace=20.0 if proc.name == "hub" else 10.0)
    for key, value in markers:
        kill_marked(key, value)
    alive = {p for key, value in markers for p in processes_with_marker(key, value)}
    return sorted(p for p in alive - {os.getpid()} if is_alive(p))
