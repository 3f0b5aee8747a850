"""`make demo`'s entry point itself: it comes up, prints how to sign in, Ctrl-C leaves nothing
running, and a demo that was killed outright does not block the next one."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from devplane_dev.localrunner.kube import Kube
from devplane_dev.localrunner.runs import RUN_MARKER_ENV
from devplane_dev.localrunner.supervisor import is_alive, kill_marked, processes_with_marker
from devplane_dev.paths import ROOT
from devplane_dev.poll import wait_for
from devplane_dev.procs import free_port, port_open

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]


def _start_demo(env: dict[str, str], out_path: Path) -> tuple[subprocess.Popen, str]:
    """Run hack/demo.py until its banner; returns the process and its output so far."""
    with open(out_path, "wb") as out:
        demo = subprocess.Popen(
            [sys.executable, str(ROOT / "hack" / "demo.py")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a terminal's foreground job
        )
    wait_for(
        "the demo's banner",
        lambda: demo.poll() is not None or "Press Ctrl-C" in out_path.read_text(),
        timeout=240,
    )
    text = out_path.read_text()
    assert demo.poll() is None, f"the demo exited:\n{text[-3000:]}"
    return demo, text


def test_demo_starts_prints_credentials_and_stops_cleanly_on_ctrl_c(
    kubeconfig: Path, tmp_path: Path
) -> None:
    ports = {
        name: free_port()
        for name in ("PORT", "PROXY_API_PORT", "HUB_API_PORT", "OIDC_PORT", "LLM_PORT")
    }
    env = {
        **os.environ,
        **{f"DEVPLANE_DEMO_{name}": str(port) for name, port in ports.items()},
        "DEVPLANE_DEMO_STATE": str(tmp_path / "state"),
        "DEVPLANE_DEMO_NAMESPACE": f"democli-{uuid.uuid4().hex[:6]}",
    }
    url = f"http://127.0.0.1:{ports['PORT']}"
    demo = None
    try:
        # A first demo killed outright (kill -9): its components live on in their own sessions.
        killed, _ = _start_demo(env, tmp_path / "killed.out")
        killed.kill()
        killed.wait()
        assert port_open(ports["PORT"])

        # The next demo stops them first, then comes up on the same ports.
        demo, banner = _start_demo(env, tmp_path / "demo.out")
        assert "left by a previous demo run" in banner
        assert f"Open        {url}/" in banner
        assert re.search(r"admin\s+password \S+\s+\(admin\)", banner), banner
        # The printed URL is the hub, whose login page leads to the OIDC provider.
        login = requests.get(f"{url}/hub/login", timeout=10)
        assert login.status_code == 200 and "oauth_login" in login.text
    finally:
        if demo is not None:
            os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
            try:
                demo.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
                raise
        # Checked from outside, before any clean-up of ours: no process of this hub (the
        # workspaces' proxies and the hub's services carry its API URL), no port still open.
        hub_api = f"http://127.0.0.1:{ports['HUB_API_PORT']}/hub/api"
        time.sleep(0.5)
        survivors = [p for p in processes_with_marker("JUPYTERHUB_API_URL", hub_api) if is_alive(p)]
        open_ports = [p for p in ports.values() if port_open(p)]
        # Whatever failed above, nothing of either run may outlive the test.
        run_record = tmp_path / "state" / "run.json"
        if run_record.exists():
            kill_marked(RUN_MARKER_ENV, json.loads(run_record.read_text())["run_id"])
        kill_marked("JUPYTERHUB_API_URL", hub_api)
        kube = Kube(kubeconfig)  # the demo keeps its namespace; a test must not
        kube.delete_namespace(env["DEVPLANE_DEMO_NAMESPACE"])
        kube.close()
    text = (tmp_path / "demo.out").read_text()
    assert demo.returncode == 0, text[-3000:]
    assert "nothing of the demo is left running" in text
    assert survivors == [], f"processes of the demo's hub still running: {survivors}"
    assert open_ports == [], f"ports still open after the demo stopped: {open_ports}"
