"""DevPlane installed by its chart on the local cluster's real node, used as people use it.

The system is `make demo` itself (hack/demo.py, run here as a person runs it): nothing is
simulated but the LLM. The hub, the proxy and the operator are the chart's pods, workspaces
are pods from DevPlane's images pulled from the local registry, NetworkPolicies are enforced,
and a person signs in through the OIDC provider in a real browser (devplane_dev.installed says
how each part is reached). Tests run in file order: a demo killed outright is cleaned up by
the next, alice's journey, then what admins and automation do around it, then Ctrl-C.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from devplane_dev import devcluster, realnode, realnode_procs
from devplane_dev.browser import type_line, wait_for_terminal, wait_for_text
from devplane_dev.demo import USERS
from devplane_dev.installed import LLM_KEY_SECRET, SERVICES_FILE, Installed
from devplane_dev.oidc import OidcUser
from devplane_dev.paths import ROOT
from devplane_dev.poll import wait_for
from devplane_dev.procs import process_start_time
from devplane_dev.progress import check_lines_in_order
from e2e_browser import (
    ARTIFACTS,
    Shots,
    forward_progress,
    sign_in,
    wait_for_server_page,
)

from devplane_api import naming

pytestmark = [pytest.mark.e2e, pytest.mark.cluster, pytest.mark.real_node]

READY_TIMEOUT = 180
START_TIMEOUT = 600  # a cold node pulls every image once
STATE = ARTIFACTS / "installed"
EXAMPLE = ROOT / "examples" / "rest_workspace.py"


@dataclass
class DemoRun:
    process: subprocess.Popen
    output: Path
    installed: Installed
    # What the demo killed before this one had started (name -> (pid, start time)), and
    # which of the node's relays it had made.
    leftovers: dict[str, tuple[int, str]]
    leftover_relays: list[int]


def start_demo(output: Path) -> subprocess.Popen:
    with open(output, "wb") as out:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "hack" / "demo.py")],
            env={**os.environ, "DEVPLANE_DEMO_STATE": str(STATE)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a terminal's foreground job
        )


def kill_a_demo_halfway() -> tuple[dict[str, tuple[int, str]], list[int]]:
    """A demo killed outright (the whole process group, as a closed terminal would) once
    its services run; what it had started on this machine."""
    demo = start_demo(STATE.parent / "killed-demo.log")
    record = STATE / SERVICES_FILE

    def services_started() -> dict | None:
        assert demo.poll() is None, (STATE.parent / "killed-demo.log").read_text()[-3000:]
        try:
            data = json.loads(record.read_text())
        except (OSError, ValueError):
            return None
        return data if len(data["processes"]) >= 2 and len(data["relays"]) >= 2 else None

    data = wait_for("the first demo's services", services_started, START_TIMEOUT)
    os.killpg(demo.pid, signal.SIGKILL)
    demo.wait(30)
    processes = {p["name"]: (p["pid"], p["started"]) for p in data["processes"]}
    assert all(process_start_time(pid) == t for pid, t in processes.values()), "not running"
    return processes, data["relays"]


@pytest.fixture(scope="module")
def demo(kubeconfig: Path, bin_dir: Path) -> Iterator[DemoRun]:
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True)
    leftovers, relays = kill_a_demo_halfway()
    output = STATE.parent / "demo.log"
    process = start_demo(output)

    def banner() -> bool:
        text = output.read_text()
        if process.poll() is not None:
            pytest.fail(f"make demo exited ({process.returncode}):\n{text[-4000:]}", pytrace=False)
        return "Press Ctrl-C" in text

    wait_for("the demo's banner", banner, START_TIMEOUT)
    run = DemoRun(process, output, Installed.load(STATE / "installed.json"), leftovers, relays)
    yield run
    if process.poll() is None:  # the Ctrl-C test did not run (or failed before it stopped it)
        os.killpg(process.pid, signal.SIGINT)
        process.wait(300)


@pytest.fixture(scope="module")
def system(demo: DemoRun) -> Installed:
    return demo.installed


@pytest.fixture(scope="module")
def alice_page(system: Installed, browser) -> Iterator:
    """alice's browser, kept open across the tests that use her terminal."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    yield context.new_page()
    context.close()


def user(name: str) -> OidcUser:
    return next(u for u in USERS if u.username == name)


def test_the_demo_prints_how_to_sign_in_and_cleaned_up_a_killed_one(demo: DemoRun) -> None:
    text = demo.output.read_text()
    assert f"Open        {demo.installed.url}/" in text
    for person in USERS:
        assert re.search(rf"(?m)^\s+{person.username}\s+password {person.password}\b", text)
    assert f"token: {demo.installed.api_token}" in text
    # What the killed demo had started on this machine is gone (not merely orphaned).
    for name, (pid, started) in demo.leftovers.items():
        assert process_start_time(pid) != started, f"the killed demo's {name} still runs"
    lay = realnode.layout()
    for port in demo.leftover_relays:
        assert not realnode_procs.alive(lay, f"expose-{port}-host"), port


def server_ready(system: Installed, name: str, server: str = "") -> bool:
    reply = system.api("GET", f"/users/{name}")
    if reply.status_code != 200:  # the proxy's 503 while the hub is away
        return False
    servers = reply.json().get("servers") or {}
    return bool(servers.get(server, {}).get("ready"))


def workspace_pod(system: Installed, owner: str, server: str = "") -> dict:
    name = naming.child_name(naming.workspace_name(owner, server))
    out = system.kubectl("get", "pod", name, "-n", system.workspace_namespace, "-o", "json")
    return json.loads(out)


def pod_is_ready(pod: dict) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def in_workspace(system: Installed, owner: str, *argv: str) -> str:
    pod = workspace_pod(system, owner)["metadata"]["name"]
    return system.kubectl("exec", "-n", system.workspace_namespace, pod, "-c", "workspace",
                          "--", *argv)  # fmt: skip


def test_user_signs_in_and_works_in_a_real_workspace_pod(
    system: Installed, alice_page, shots: Shots
) -> None:
    page, alice = alice_page, user("alice")
    events = forward_progress(page)
    sign_in(page, system.url, alice.username, alice.password, shots)
    # The spawn form offers the profiles; the hub then shows its progress page, which
    # follows the spawn's progress stream and takes her on to her server.
    page.goto(f"{system.url}/hub/spawn")
    page.wait_for_selector("#spawn_form", timeout=30_000)
    assert page.get_by_text("Chat model").count() == 1
    shots(page, "spawn-form")
    page.click("#spawn_form button[type=submit]")
    wait_for_server_page(page, system.url, alice.username, timeout=READY_TIMEOUT)
    # What the progress page received: DevPlane's lines in order, then the hub's ready event.
    # (A real pod takes seconds to become Ready; the page loads within about one.)
    check_lines_in_order([e.get("message", "") for e in events])
    assert events[-1].get("ready") is True, events
    wait_for_terminal(page)
    shots(page, "terminal")
    # The shell is the workspace's: uid 1000, a read-only root, no service-account token.
    type_line(page, "echo uid-$(id -u)")
    wait_for_text(page, r"uid-1000\b")
    type_line(page, "touch /probe 2>&1 | grep -o 'Read-only file system'")
    wait_for_text(page, r"(?m)^Read-only file system\s*$")
    type_line(page, "ls /var/run/secrets/kubernetes.io/serviceaccount 2>&1 | grep -c 'No such'")
    wait_for_text(page, r"(?m)^1\s*$")
    shots(page, "unprivileged")
    # opencode, configured by the operator, answers through the LLM stand-in.
    type_line(page, 'opencode run "Say hello from the real node"')
    wait_for_text(page, rf"DEVPLANE-STUB-ANSWER \(model {system.models[0]}\)", timeout=120)
    shots(page, "opencode-answer")
    # A reload re-attaches the same tmux session.
    mark = secrets.token_hex(4)
    type_line(page, f"export DEVPLANE_MARK={mark}")
    page.reload()
    wait_for_terminal(page)
    type_line(page, "echo mark-$DEVPLANE_MARK")
    wait_for_text(page, rf"mark-{mark}")
    assert workspace_pod(system, "alice")["spec"]["nodeName"] == "real-node-0"
    # Her git identity came from the provider's claims, into her home's git configuration.
    identity = in_workspace(system, "alice", "git", "config", "--global", "--get-regexp", "^user")
    assert identity.splitlines() == [f"user.name {alice.display_name}", f"user.email {alice.email}"]


@pytest.fixture(scope="module")
def bob_running(system: Installed) -> str:
    """bob's workspace, started over the REST API (as automation would)."""
    assert system.api("POST", "/users/bob").status_code in (201, 409)
    resp = system.api("POST", "/users/bob/server", json={})
    assert resp.status_code in (201, 202), resp.text
    wait_for("bob's workspace to be ready", lambda: server_ready(system, "bob"), READY_TIMEOUT)
    return "bob"


def test_user_cannot_open_another_users_terminal(
    system: Installed, bob_running: str, new_page, shots: Shots
) -> None:
    page, alice = new_page(), user("alice")
    sign_in(page, system.url, alice.username, alice.password, shots)
    response = page.goto(f"{system.url}/user/{bob_running}/")
    assert response is not None and response.status == 403, page.url
    assert page.locator(".xterm").count() == 0


# Run in alice's workspace container with the key on standard input (so it is in no command
# line): where the key shows up, as "env", "/proc/<pid>/environ" or "file:<path>".
KEY_HUNT = r"""
read -r k
found=""
env | grep -qF -- "$k" && found="$found env"
for f in /proc/[0-9]*/environ; do
    tr '\0' '\n' < "$f" 2>/dev/null | grep -qF -- "$k" && found="$found $f"
done
for f in $(grep -rsIlF -- "$k" /home/dev /etc /tmp /run 2>/dev/null); do
    found="$found file:$f"
done
echo "hunted:$found."
"""


def test_the_llm_key_is_nowhere_the_user_can_read(system: Installed, alice_page) -> None:
    """opencode answered alice through her workspace's LLM gateway, which added the stand-in's
    key; the key is in the auth proxy's container only: not in her environment, her files,
    the configuration mounted for her, or any process she can see."""
    encoded = system.kubectl("get", "secret", LLM_KEY_SECRET, "-n", system.workspace_namespace,
                             "-o", "jsonpath={.data.api-key}")  # fmt: skip
    key = base64.b64decode(encoded).decode()
    assert len(key) >= 16
    pod = workspace_pod(system, "alice")["metadata"]["name"]
    out = devcluster.kubectl(system.bin_dir, "exec", "-i", "-n", system.workspace_namespace,
                             pod, "-c", "workspace", "--", "sh", "-c", KEY_HUNT,
                             stdin=key + "\n")  # fmt: skip
    assert "hunted:." in out, out


def test_admin_stops_and_starts_a_workspace_from_the_admin_panel(
    system: Installed, bob_running: str, new_page, shots: Shots
) -> None:
    note = secrets.token_hex(8)
    in_workspace(system, bob_running, "sh", "-c", f"echo {note} > ~/notes.txt")
    before = workspace_pod(system, bob_running)["metadata"]["uid"]
    admin = user("admin")
    page = new_page()
    sign_in(page, system.url, admin.username, admin.password, shots)
    page.goto(f"{system.url}/hub/admin")
    row = page.locator("tr", has=page.get_by_text(bob_running, exact=True))
    row.get_by_role("button", name="Stop Server").click()
    shots(page, "stop-clicked")
    wait_for(
        "the hub to list no server for bob",
        lambda: system.api("GET", f"/users/{bob_running}").json()["servers"] == {},
        90,
    )
    row.get_by_role("button", name="Start Server").click()
    shots(page, "start-clicked")
    wait_for("bob's workspace to be ready again", lambda: server_ready(system, "bob"),
             READY_TIMEOUT)  # fmt: skip
    assert workspace_pod(system, bob_running)["metadata"]["uid"] != before
    assert in_workspace(system, bob_running, "cat", "notes.txt").strip() == note


def test_a_named_server_starts_through_the_hub(system: Installed) -> None:
    resp = system.api("POST", "/users/alice/servers/second", json={})
    assert resp.status_code in (201, 202), resp.text
    wait_for("alice's named server", lambda: server_ready(system, "alice", "second"),
             READY_TIMEOUT)  # fmt: skip
    pod = workspace_pod(system, "alice", "second")
    assert pod["status"]["phase"] == "Running" and pod["spec"]["nodeName"] == "real-node-0"
    assert system.api("DELETE", "/users/alice/servers/second").status_code in (202, 204)


def test_a_running_terminal_outlives_the_hub_pod(system: Installed, alice_page) -> None:
    page = alice_page
    hub_selector = "app.kubernetes.io/component=hub"
    old = system.kubectl("get", "pod", "-n", system.namespace, "-l", hub_selector, "-o",
                         "jsonpath={.items[*].metadata.name}").split()  # fmt: skip
    system.kubectl("delete", "pod", "-n", system.namespace, "-l", hub_selector, "--wait=false")
    # The terminal does not go through the hub: it keeps working while the hub is away.
    type_line(page, "echo while-hub-is-away")
    wait_for_text(page, r"(?m)^while-hub-is-away\s*$")

    def new_hub_ready() -> bool:
        listing = system.kubectl("get", "pod", "-n", system.namespace, "-l", hub_selector,
                                 "-o", "json")  # fmt: skip
        return any(
            p["metadata"]["name"] not in old and pod_is_ready(p)
            for p in json.loads(listing)["items"]
        )

    wait_for("a new hub pod to be Ready", new_hub_ready, READY_TIMEOUT)
    # The new hub knows alice's workspace, and the terminal still answers.
    wait_for("the hub to report alice's server ready", lambda: server_ready(system, "alice"), 60)
    type_line(page, "echo after-the-hub-came-back")
    wait_for_text(page, r"(?m)^after-the-hub-came-back\s*$")


def test_a_deleted_workspace_pod_comes_back_with_its_home(system: Installed) -> None:
    note = secrets.token_hex(8)
    in_workspace(system, "alice", "sh", "-c", f"echo {note} > ~/kept.txt")
    pod = workspace_pod(system, "alice")
    system.kubectl("delete", "pod", pod["metadata"]["name"], "-n", system.workspace_namespace,
                   "--wait=false")  # fmt: skip

    def recreated() -> bool:
        try:
            again = workspace_pod(system, "alice")
        except devcluster.DevclusterError:
            return False
        return again["metadata"]["uid"] != pod["metadata"]["uid"] and pod_is_ready(again)

    wait_for("the operator to recreate alice's pod", recreated, READY_TIMEOUT)
    assert in_workspace(system, "alice", "cat", "kept.txt").strip() == note


def run_rest_example(system: Installed, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEVPLANE_HUB_URL": system.url, "DEVPLANE_API_TOKEN": system.api_token}
    return subprocess.run([sys.executable, str(EXAMPLE), *args], env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_rest_example_creates_starts_and_stops_a_workspace(system: Installed) -> None:
    proc = run_rest_example(system, "dana", "--profile", "chat")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "user dana: created" in out
    assert "%]" in out, f"no progress events printed:\n{out}"
    assert f"is ready: {system.url}/user/dana/" in out
    assert "workspace of dana: stopped" in out
    # The profile reached the Workspace, and stopping kept it (and its home) as Stopped.
    name = naming.workspace_name("dana", "")

    def workspace() -> dict:
        return json.loads(system.kubectl("get", "workspace", name, "-n",
                                         system.workspace_namespace, "-o", "json"))  # fmt: skip

    assert workspace()["spec"]["ai"]["defaultModel"].endswith(system.models[1])
    wait_for("dana's Workspace to be Stopped",
             lambda: workspace().get("status", {}).get("phase") == "Stopped", 60)  # fmt: skip


def test_rest_example_reports_an_unknown_profile(system: Installed) -> None:
    proc = run_rest_example(system, "erin", "--profile", "huge")
    assert proc.returncode == 1
    # The spawner's 400 names the allowed profiles instead of silently using a default.
    assert "huge" in proc.stderr and "standard" in proc.stderr, proc.stderr


def test_ctrl_c_uninstalls_and_leaves_nothing_running(demo: DemoRun) -> None:
    services = json.loads((STATE / SERVICES_FILE).read_text())
    os.killpg(demo.process.pid, signal.SIGINT)  # what Ctrl-C in its terminal sends
    assert demo.process.wait(300) == 0, demo.output.read_text()[-4000:]
    assert "nothing of the demo is left" in demo.output.read_text()
    for ns in (demo.installed.namespace, demo.installed.workspace_namespace):
        assert not demo.installed.kubectl("get", "namespace", ns, "--ignore-not-found"), ns
    for entry in services["processes"]:
        assert process_start_time(entry["pid"]) != entry["started"], entry["name"]
    lay = realnode.layout()
    for port in services["relays"]:
        assert not realnode_procs.alive(lay, f"expose-{port}-host"), port
    assert devcluster.api_healthy(), "the cluster must stay up"
