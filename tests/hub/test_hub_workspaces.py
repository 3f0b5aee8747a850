"""Workspaces through the hub's REST API: the real hub, spawner, operator and control plane.

One stack per module (namespace, operator, proxy, hub, pod responders) keeps the suite fast;
each test uses its own user, so they do not depend on each other's order.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from devplane_dev.hub import NO_LOGIN, Hub
from devplane_dev.kubectl import TEST_NAMESPACE
from devplane_dev.operator_process import OperatorProcess, install_crd
from devplane_dev.poll import wait_for
from devplane_dev.progress import START_LINES, check_start_progress
from devplane_dev.proxy import ConfigurableHttpProxy
from devplane_dev.responders import PodResponders
from hub_testdata import PROFILES

from devplane_api import naming

pytestmark = pytest.mark.cluster


class Stack:
    """The running pieces plus small helpers to look at the cluster."""

    def __init__(self, hub: Hub, namespace: str, kubectl, responders: PodResponders) -> None:
        self.hub = hub
        self.namespace = namespace
        self.kubectl = kubectl
        self.responders = responders

    def get(self, kind: str, name: str) -> dict | None:
        proc = self.kubectl("get", kind, name, "-n", self.namespace, "-o", "json", check=False)
        if proc.returncode != 0:
            assert "NotFound" in proc.stderr, proc.stderr
            return None
        return json.loads(proc.stdout)

    def create_user(self, name: str) -> None:
        response = self.hub.api("POST", f"/users/{name}")
        assert response.status_code == 201, response.text

    def start(self, user: str, options: dict | None) -> requests.Response:
        return self.hub.api("POST", f"/users/{user}/server", json={"user_options": options})


@pytest.fixture(scope="module")
def stack(kubeconfig, kubectl, tmp_path_factory) -> Iterator[Stack]:
    workdir: Path = tmp_path_factory.mktemp("hub-workspaces")
    namespace = f"hub-{uuid.uuid4().hex[:8]}"
    install_crd(kubectl.argv)
    kubectl.create_namespace(namespace, TEST_NAMESPACE)
    operator = OperatorProcess(kubeconfig, [namespace], log_path=workdir / "operator.log")
    responders = PodResponders(str(kubeconfig), namespace)
    proxy = ConfigurableHttpProxy(workdir)
    hub = Hub(
        workdir, proxy, None, namespace, PROFILES,
        # Workspaces reach the hub API through the proxy, as the chart sets it up.
        extra_env={"KUBECONFIG": str(kubeconfig), **NO_LOGIN,
                   "DEVPLANE_WORKSPACE_HUB_URL": proxy.url},
    )  # fmt: skip
    try:
        operator.start()
        operator.wait_ready()
        hub.start()
        yield Stack(hub, namespace, kubectl, responders)
    finally:
        hub.stop()
        proxy.stop()
        responders.stop()
        operator.stop()
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        print(f"hub, proxy and operator logs: {workdir}")


def test_rest_lifecycle_with_a_profile_and_the_same_volume(stack):
    hub, user = stack.hub, "alice"
    ws_name = naming.workspace_name(user)
    stack.create_user(user)

    # The pod's server held from answering, so the spawn is pending while the stream is
    # followed, however quick the start: the stream says all of DevPlane's lines, then ready.
    with stack.responders.held():
        response = hub.start_in_background(user, {"profile": "large"})
        stream = hub.follow_progress(user)
        stream.wait_for_message(START_LINES[-1], timeout=25)  # within the hub's http_timeout
    events = stream.result(timeout=60)
    reply = response(60)
    assert reply.status_code in (201, 202), reply.text
    check_start_progress(events, f"/user/{user}/")

    ws = stack.get("workspace", ws_name)
    assert ws["spec"]["started"] is True
    assert ws["spec"]["resources"]["limits"] == {"cpu": "4", "memory": "8Gi"}  # the profile
    assert ws["spec"]["servicePrefix"] == f"/user/{user}/"
    assert ws["status"]["phase"] == "Running"
    # The hub reached the pod's IP for its readiness check.
    hits = stack.responders.hits[ws["status"]["podIP"]]
    assert any(path.endswith(f"/user/{user}/api") for path in hits), hits

    # The credentials Secret: the token is there (and only there), owned by the Workspace.
    secret = stack.get("secret", naming.child_name(ws_name, "hub"))
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data["JUPYTERHUB_USER"] == user and data["JUPYTERHUB_API_TOKEN"]
    # The auth proxy calls the hub API through the proxy, never the hub's own port.
    assert data["JUPYTERHUB_API_URL"] == f"{hub.proxy.url}/hub/api"
    assert data["JUPYTERHUB_ACTIVITY_URL"].startswith(f"{hub.proxy.url}/hub/api/")
    assert data["JUPYTERHUB_API_TOKEN"] not in json.dumps(ws)
    assert [o["uid"] for o in secret["metadata"]["ownerReferences"]] == [ws["metadata"]["uid"]]
    pvc_uid = stack.get("pvc", naming.pvc_name(user))["metadata"]["uid"]

    # Stop: the pod goes, the Workspace and the volume stay.
    response = hub.api("DELETE", f"/users/{user}/server")
    assert response.status_code in (202, 204), response.text
    hub.wait_stopped(user)
    ws = stack.get("workspace", ws_name)
    assert ws["spec"]["started"] is False and ws["status"]["phase"] == "Stopped"
    assert stack.get("pod", naming.child_name(ws_name)) is None

    # Start again with another profile: same Workspace, same volume.
    assert stack.start(user, {"profile": "small"}).status_code in (201, 202)
    hub.wait_ready(user)
    ws = stack.get("workspace", ws_name)
    assert ws["spec"]["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert stack.get("pvc", naming.pvc_name(user))["metadata"]["uid"] == pvc_uid

    # Delete the user: the Workspace goes; the home volume is kept (reclaimPolicy Retain).
    assert hub.api("DELETE", f"/users/{user}/server").status_code in (202, 204)
    hub.wait_stopped(user)
    assert hub.api("DELETE", f"/users/{user}").status_code == 204
    wait_for("the Workspace to be deleted", lambda: stack.get("workspace", ws_name) is None, 30)
    assert stack.get("pvc", naming.pvc_name(user))["metadata"]["uid"] == pvc_uid


def test_hub_restart_keeps_a_running_workspace(stack):
    hub, user = stack.hub, "bob"
    stack.create_user(user)
    assert stack.start(user, {"profile": "small"}).status_code in (201, 202)
    hub.wait_ready(user)
    ws_uid = stack.get("workspace", naming.workspace_name(user))["metadata"]["uid"]

    hub.restart()

    model = hub.api("GET", f"/users/{user}").json()
    assert model["servers"][""]["ready"] is True, model
    ws = stack.get("workspace", naming.workspace_name(user))
    assert ws["metadata"]["uid"] == ws_uid and ws["spec"]["started"] is True
    # Through the proxy to the pod: the route survived and leads to the same workspace.
    reply = requests.get(f"{hub.url}/user/{user}/api", timeout=10)
    assert reply.status_code == 200
    assert reply.headers["X-DevPlane-Test-Responder"] == ws["status"]["podIP"]
    # The restarted hub still controls it (its state found the Workspace): stop works.
    assert hub.api("DELETE", f"/users/{user}/server").status_code in (202, 204)
    hub.wait_stopped(user)
    assert stack.get("workspace", naming.workspace_name(user))["spec"]["started"] is False


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"profile": "gigantic"}, "choose one of: small, large, broken-image"),
        ({"profil": "small"}, "unknown user_options ['profil']"),
        ({"profile": 7}, "'profile' must be a string"),
    ],
)
def test_invalid_profile_is_a_400_that_says_what_is_allowed(stack, options, expected):
    user = f"carol-{uuid.uuid4().hex[:6]}"
    stack.create_user(user)
    response = stack.start(user, options)
    assert response.status_code == 400, response.text
    assert expected in response.json()["message"]
    assert stack.get("workspace", naming.workspace_name(user)) is None


def test_image_that_cannot_be_pulled_fails_fast_with_the_cause(stack):
    hub, user = stack.hub, "dave"
    stack.create_user(user)
    started = time.monotonic()
    response, events = hub.start_and_follow(user, {"profile": "broken-image"})
    elapsed = time.monotonic() - started
    # Within the hub's 10 s slow_spawn_timeout the POST itself fails; the stream says why too.
    if response.status_code in (201, 202):
        message = events[-1]["message"]
        assert events[-1].get("failed") is True, events
    else:
        assert response.status_code == 500, response.text
        message = response.json()["message"]
    assert "registry.invalid/devplane/workspace:missing" in message, message
    assert "cannot be pulled" in message, message
    assert elapsed < 60, f"took {elapsed:.1f}s; start_timeout is 120s"
    model = hub.api("GET", f"/users/{user}").json()
    assert "" not in model["servers"]  # not left pending or running


def test_idle_culler_service_stops_an_idle_workspace(stack, kubeconfig, tmp_path):
    """The culler runs as configured in production (a hub service with only its own role)
    and really stops a server nobody uses: the role has every scope it needs."""
    proxy = ConfigurableHttpProxy(tmp_path)
    hub = Hub(
        tmp_path, proxy, None, stack.namespace, PROFILES,
        extra_env={
            "KUBECONFIG": str(kubeconfig),
            **NO_LOGIN,
            "DEVPLANE_CULL_TIMEOUT": "4",
            "DEVPLANE_CULL_EVERY": "1",
        },
    )  # fmt: skip
    user = "erin"
    try:
        hub.start()
        assert hub.api("POST", f"/users/{user}").status_code == 201
        assert hub.api("POST", f"/users/{user}/server", json={}).status_code in (201, 202)
        hub.wait_ready(user)
        # Nothing reports activity (no terminal in use), so the culler stops it.
        hub.wait_stopped(user, timeout=60)
        # The hub logs a request when it has answered it, a moment after the server is
        # already seen stopped: wait for the line rather than expect it at once.
        culled = f"DELETE /hub/api/users/{user}/server (idle-culler@"
        wait_for("the idle culler's DELETE in the hub log", lambda: culled in hub.log(), 10)
        ws = stack.get("workspace", naming.workspace_name(user))
        assert ws["spec"]["started"] is False
    finally:
        hub.stop()
        proxy.stop()
