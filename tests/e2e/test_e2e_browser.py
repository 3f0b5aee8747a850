"""DevPlane the way a person uses it: a real browser against the system `make demo` runs.

Order matters and is kept by pytest (file order): alice's journey first; then bob's workspace
is started over the REST API so that alice can be refused at his terminal and the admin can
stop it from the admin panel.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from devplane_dev.browser import (
    csp_violations,
    record_csp_violations,
    type_line,
    wait_for_terminal,
    wait_for_text,
)
from devplane_dev.localrunner.stack import DemoStack
from devplane_dev.localrunner.supervisor import is_alive
from devplane_dev.poll import wait_for as wait_until
from devplane_dev.progress import (
    START_LINES,
    ProgressStream,
    check_lines_in_order,
    check_start_progress,
)
from e2e_browser import (
    Shots,
    record_progress,
    request_start,
    sign_in,
    wait_for_progress,
    wait_for_server_page,
)
from e2e_support import runner_held

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]


def _user(demo: DemoStack, name: str):
    return next(u for u in demo.config.users if u.username == name)


def test_user_signs_in_and_works_in_the_terminal(demo: DemoStack, new_page, shots: Shots) -> None:
    alice = _user(demo, "alice")
    hub_url = demo.config.url
    page = new_page()
    record_progress(page)
    record_csp_violations(page)
    sign_in(page, hub_url, alice.username, alice.password, shots)

    # What the progress stream delivers, followed while the spawn certainly is pending: with
    # the local runner held, alice's Workspace becomes Ready but her server cannot answer yet,
    # so the hub waits, however fast this machine is. Both her page and an API client get
    # DevPlane's lines; then the spawn is let go and the stream ends with the ready event.
    with runner_held(demo):
        request_start(page, hub_url, alice.username, shots)
        stream = ProgressStream(hub_url, alice.username, demo.config.api_token)
        stream.wait_for_message(START_LINES[-1], timeout=45)
        on_page = wait_for_progress(page, START_LINES[-1])
        shots(page, "spawn-pending")
    check_start_progress(stream.result(timeout=90), f"/user/{alice.username}/")
    check_lines_in_order([e.get("message", "") for e in on_page])

    # What she sees: the hub takes her page on to her terminal.
    wait_for_server_page(page, hub_url, alice.username)
    wait_for_terminal(page)
    shots(page, "terminal")
    type_line(page, "echo hello")
    # The command echo and its output: "hello" alone on a line, not just the typed command.
    wait_for_text(page, r"(?m)^hello\s*$")
    shots(page, "echo-hello")

    # The AI assistant, wired by the operator to the (stand-in) vLLM endpoint.
    type_line(page, 'opencode run "Say hello to the DevPlane demo"')
    # The stand-in's deterministic answer, naming the model the operator configured.
    wait_for_text(page, rf"DEVPLANE-STUB-ANSWER \(model {demo.config.model}\)", timeout=120)
    shots(page, "opencode-answer")

    # A reload re-attaches the same tmux session: the shell keeps its state.
    mark = secrets.token_hex(4)
    type_line(page, f"export DEVPLANE_MARK={mark}")
    page.reload()
    wait_for_terminal(page)
    wait_for_text(page, r"(?m)^hello\s*$")  # tmux redraws the earlier output
    type_line(page, "echo mark-$DEVPLANE_MARK")
    wait_for_text(page, rf"mark-{mark}")
    shots(page, "after-reload")
    # All of it under the terminal page's Content-Security-Policy, which the proxy sends.
    assert csp_violations(page) == []


@pytest.fixture(scope="module")
def bob_running(demo: DemoStack) -> str:
    """bob's workspace, started over the REST API (as automation would)."""
    assert demo.api("POST", "/users/bob").status_code in (201, 409)
    resp = demo.api("POST", "/users/bob/server", json={})
    assert resp.status_code in (201, 202), resp.text

    def ready() -> bool:
        user = demo.api("GET", "/users/bob").json()
        server = (user.get("servers") or {}).get("")
        return bool(server and server.get("ready"))

    wait_until("bob's workspace to be ready", ready, timeout=120)
    return "bob"


def test_user_cannot_open_another_users_terminal(
    demo: DemoStack, bob_running: str, new_page, shots: Shots
) -> None:
    alice = _user(demo, "alice")
    page = new_page()
    sign_in(page, demo.config.url, alice.username, alice.password, shots)
    response = page.goto(f"{demo.config.url}/user/{bob_running}/")
    shots(page, "bobs-terminal-refused")
    assert response is not None
    # The hub refuses alice the OAuth grant for bob's server (403); she never gets a terminal.
    assert response.status == 403, f"expected 403 at {page.url}, got {response.status}"
    assert page.locator(".xterm").count() == 0
    # The terminal's WebSocket is refused as well.
    ws_url = f"{demo.config.url.replace('http', 'ws', 1)}/user/{bob_running}/ws"
    outcome = page.evaluate(
        """(url) => new Promise((resolve) => {
            const ws = new WebSocket(url, ["tty"]);
            ws.onopen = () => resolve("open");
            ws.onerror = () => resolve("refused");
            setTimeout(() => resolve("timeout"), 10000);
        })""",
        ws_url,
    )
    assert outcome == "refused"


def test_admin_stops_a_workspace_from_the_admin_panel(
    demo: DemoStack, bob_running: str, new_page, shots: Shots
) -> None:
    # Something of bob's in his home volume, to find again after the stop.
    before = demo.runner_pod(f"ws-{bob_running}")
    assert before is not None, "the local runner does not run bob's pod"
    home = Path(before["containers"]["workspace"]["env"]["HOME"])
    note = secrets.token_hex(8)
    (home / "notes.txt").write_text(note)

    admin = next(u for u in demo.config.users if u.admin)
    page = new_page()
    sign_in(page, demo.config.url, admin.username, admin.password, shots)
    page.goto(f"{demo.config.url}/hub/admin")
    # The admin panel lists every user who has signed in or was created over the API.
    for name in ("alice", bob_running, admin.username):
        page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
    shots(page, "admin-panel")

    row = page.locator("tr", has=page.get_by_text(bob_running, exact=True))
    row.get_by_role("button", name="Stop Server").click()
    shots(page, "stop-clicked")
    wait_until(
        "bob's Workspace to report phase Stopped",
        lambda: demo.workspace_phase(bob_running) == "Stopped",
        timeout=90,
    )
    row.get_by_role("button", name="Start Server").wait_for(timeout=30_000)
    shots(page, "bob-stopped")
    # The panel flips its button when the hub answers the stop, which it may do (202) before
    # it has forgotten the server: wait for the hub's own record.
    wait_until(
        "the hub to list no server for bob",
        lambda: demo.api("GET", f"/users/{bob_running}").json()["servers"] == {},
        timeout=60,
    )
    # The pod is gone, and with it every process the runner had started for it.
    wait_until("the runner to stop bob's pod", lambda: demo.runner_pod(f"ws-{bob_running}") is None)
    pids = [c["pid"] for c in before["containers"].values()]
    assert not [p for p in pids if is_alive(p)], "bob's processes survived"

    # Started again, bob gets a new pod on the same home volume.
    assert demo.api("POST", f"/users/{bob_running}/server", json={}).status_code in (201, 202)
    after = wait_until("bob's new pod", lambda: demo.runner_pod(f"ws-{bob_running}"), timeout=120)
    assert after["uid"] != before["uid"]
    assert Path(after["containers"]["workspace"]["env"]["HOME"]) == home
    assert (home / "notes.txt").read_text() == note
