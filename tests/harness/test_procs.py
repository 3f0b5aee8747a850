"""The harness's process wrapper leaves nothing behind (devplane_dev.procs.ManagedProcess)."""

from __future__ import annotations

import os
import sys
import time

from devplane_dev.poll import wait_for
from devplane_dev.procs import ManagedProcess, process_state

# A leader that starts a child in a session of its own (as JupyterHub starts its managed
# services), and the child ignores SIGINT and SIGTERM.
LEADER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"],
    start_new_session=True)
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    return process_state(pid) not in (None, "Z")


def test_stop_also_ends_a_child_that_left_the_process_group(tmp_path):
    proc = ManagedProcess([sys.executable, "-c", LEADER], tmp_path / "leader.log")
    child = int(wait_for("the child's pid", lambda: proc.log().strip(), 10))
    assert _alive(child) and os.getpgid(child) != os.getpgid(proc.pid)

    proc.stop(grace=1)

    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the child in its own session outlived stop()"
