"""The harness's process wrapper leaves nothing behind (devplane_dev.procs.ManagedProcess)."""

from __future__ import annotations

import os
import sys
import time

import pytest
from devplane_dev.poll import wait_for
from devplane_dev.procs import ManagedProcess, StartError, process_state

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


def test_log_is_this_runs_part_of_a_log_file_kept_across_restarts(tmp_path):
    """The demo appends to its logs across restarts; an old run's "ready" line must not
    count as this run's."""
    log = tmp_path / "component.log"
    ManagedProcess([sys.executable, "-c", "print('ready 1')"], log).proc.wait()
    second = ManagedProcess([sys.executable, "-c", "print('ready 2')"], log)
    second.proc.wait()
    assert second.log() == "ready 2\n"
    assert log.read_text() == "ready 1\nready 2\n"
    second.stop()


def test_waiting_on_a_process_that_exits_fails_at_once_and_quotes_its_log(tmp_path):
    proc = ManagedProcess(
        [sys.executable, "-c", "import sys; print('bad flag'); sys.exit(2)"],
        tmp_path / "broken.log",
        name="broken",
    )
    started = time.monotonic()
    with pytest.raises(StartError, match=r"(?s)broken exited while waiting for its port.*bad flag"):
        proc.wait_until("its port", lambda: False, timeout=30)
    assert time.monotonic() - started < 10
    proc.stop()
