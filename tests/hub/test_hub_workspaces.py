"""Workspaces through the hub's REST API: the real hub, spawner, operator and control plane.

One stack per module (namespace, operator, proxy, hub, pod responders) keeps the suite fast;
each test uses its own user, so they do not depend on each other's order.
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from devplane_dev.auditlog import audit_events
from devplane_dev.hub import NO_LOGIN, Hub, running_hub
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

    def __init__(
        self, hub: Hub, namespace: str, kubectl, responders: PodResponders, kubeconfig: Path
    ) -> None:
        self.hub = hub
        self.namespace = namespace
        self.kubectl = kubectl
        self.responders = responders
        self.kubeconfig = kubeconfig

    @contextlib.contextmanager
    def another_hub(
        self,
        workdir: Path,
        profiles: list[dict] = PROFILES,
        poll_interval: float | None = None,
        **env: str,
    ) -> Iterator[Hub]:
        """A hub of its own (proxy, database) on this stack's namespace, operator and pod
        responders, configured with ``env``; ``poll_interval`` (s) for how often it polls."""
        extra = {"KUBECONFIG": str(self.kubeconfig)}
        if poll_interval is not None:
            config = workdir / "poll_interval.py"
            config.write_text(f"c.Spawner.poll_interval = {poll_interval}\n")
            extra["DEVPLANE_HUB_EXTRA_CONFIG"] = str(config)
        with running_hub(workdir, self.namespace, profiles, **extra, **env) as hub:
            yield hub

    def get(self, kind: str, name: str) -> dict | None:
        proc = self.kubectl("get", kind, name, "-n", self.namespace, "-o", "json", check=False)
        if proc.returncode != 0:
            assert "NotFound" in proc.stderr, proc.stderr
            return None
        return json.loads(proc.stdout)

    def hub_secret(self, user: str, server: str = "") -> dict[str, str]:
        """The hub-credentials Secret of ``user``'s server, decoded."""
        secret = self.get("secret", naming.child_name(naming.workspace_name(user, server), "hub"))
        return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}

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
        yield Stack(hub, namespace, kubectl, responders, kubeconfig)
    finally:
        hub.stop()
        proxy.stop()
        responders.stop()
        operator.stop()
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        print(f"hub, proxy and operator logs: {workdir}")


def start_ready(hub: Hub, user: str) -> None:
    """Create ``user`` and start their server with the default profile; return when ready."""
    assert hub.api("POST", f"/users/{user}").status_code == 201
    assert hub.api("POST", f"/users/{user}/server", json={}).status_code in (201, 202)
    hub.wait_ready(user)


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
    data = stack.hub_secret(user)
    assert data["JUPYTERHUB_USER"] == user and data["JUPYTERHUB_API_TOKEN"]
    # The auth proxy's cookies get the hub's options (SameSite; Secure when https) and know
    # the public URL.
    assert json.loads(data["JUPYTERHUB_COOKIE_OPTIONS"]) == {"samesite": "Lax"}
    assert data["JUPYTERHUB_PUBLIC_URL"] == f"{hub.url}/user/{user}/"
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
    # The hub's audit stream says who started and who stopped it (the automation token's
    # service), whatever order the lines came in.
    for action in ("server.start", "server.stop"):
        (event, *_) = wait_for(
            f"the {action} audit event",
            lambda action=action: audit_events(hub.log(), action, user=user, server=""),
            10,
        )
        assert event["component"] == "hub" and event["actor"] == "devplane-automation"
        assert event["status"] in (201, 202, 204) and event["remote"]
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


def test_idle_culler_service_stops_an_idle_workspace(stack, tmp_path):
    """The culler runs as configured in production (a hub service with only its own role)
    and really stops a server nobody uses: the role has every scope it needs."""
    culling = {"DEVPLANE_CULL_TIMEOUT": "4", "DEVPLANE_CULL_EVERY": "1"}
    with stack.another_hub(tmp_path, **culling) as hub:
        user = "erin"
        start_ready(hub, user)
        # Nothing reports activity (no terminal in use), so the culler stops it.
        hub.wait_stopped(user, timeout=60)
        # The hub logs a request when it has answered it, a moment after the server is
        # already seen stopped: wait for the line rather than expect it at once.
        culled = f"DELETE /hub/api/users/{user}/server (idle-culler@"
        wait_for("the idle culler's DELETE in the hub log", lambda: culled in hub.log(), 10)
        ws = stack.get("workspace", naming.workspace_name(user))
        assert ws["spec"]["started"] is False


def test_idle_culler_gives_each_profile_its_own_idle_timeout(stack, tmp_path):
    """A profile's idleTimeout overrides the culler's: 0 never culls, a long one outlasts the
    hub-wide timeout, and a server of a profile without one is culled at the hub-wide one."""
    culling = {"DEVPLANE_CULL_TIMEOUT": "3", "DEVPLANE_CULL_EVERY": "1"}
    profiles = [
        {"slug": "small", "default": True},  # no idleTimeout: the culler's 3 s
        {"slug": "never", "idleTimeout": 0},
        {"slug": "long", "idleTimeout": 3600},
    ]
    with stack.another_hub(tmp_path, profiles=profiles, **culling) as hub:
        for user, profile in (("ivan", "never"), ("judy", "long"), ("karl", "small")):
            assert hub.api("POST", f"/users/{user}").status_code == 201
            started = hub.api("POST", f"/users/{user}/server", json={"profile": profile})
            assert started.status_code in (201, 202), started.text
        for user in ("ivan", "judy", "karl"):
            hub.wait_ready(user)
        # karl's is culled at the hub-wide timeout; ivan's and judy's were started first, so
        # they have been idle longer, and a culler that ignored their profiles would have
        # stopped them already.
        hub.wait_stopped("karl", timeout=60)
        wait_for(
            "the culler's DELETE of karl's server in the hub log",
            lambda: "DELETE /hub/api/users/karl/server (idle-culler@" in hub.log(),
            10,
        )
        time.sleep(3)  # three more culling rounds (every 1 s), each past the 3 s timeout
        for user in ("ivan", "judy"):
            model = hub.api("GET", f"/users/{user}").json()
            assert model["servers"][""]["ready"], (user, model)
            assert f"/users/{user}/server (idle-culler@" not in hub.log()


def test_a_profiles_extras_reach_its_workspace_pod(stack, tmp_path):
    """hub.profiles[].extraEnv and .extraVolumes: the spawner writes them into the Workspace,
    the operator into the pod; a start with another profile takes them away again."""
    profiles = [
        {"slug": "plain", "default": True},
        {"slug": "data", "extraEnv": {"DATASET": "/home/dev/scratch"},
         "extraVolumes": [{"name": "scratch", "mountPath": "/home/dev/scratch",
                           "emptyDir": {"sizeLimit": "1Gi"}}]},
    ]  # fmt: skip
    with stack.another_hub(tmp_path, profiles=profiles) as hub:
        user = "lena"
        assert hub.api("POST", f"/users/{user}").status_code == 201
        started = hub.api("POST", f"/users/{user}/server", json={"profile": "data"})
        assert started.status_code in (201, 202), started.text
        hub.wait_ready(user)
        ws = stack.get("workspace", naming.workspace_name(user))
        assert ws["spec"]["extraEnv"] == [{"name": "DATASET", "value": "/home/dev/scratch"}]
        pod = stack.get("pod", naming.child_name(naming.workspace_name(user)))
        container = next(c for c in pod["spec"]["containers"] if c["name"] == "workspace")
        assert {"name": "DATASET", "value": "/home/dev/scratch"} in container["env"]
        assert any(m["mountPath"] == "/home/dev/scratch" for m in container["volumeMounts"])

        assert hub.api("DELETE", f"/users/{user}/server").status_code in (202, 204)
        hub.wait_stopped(user)
        started = hub.api("POST", f"/users/{user}/server", json={"profile": "plain"})
        assert started.status_code in (201, 202), started.text
        hub.wait_ready(user)
        ws = stack.get("workspace", naming.workspace_name(user))
        assert "extraEnv" not in ws["spec"] and "extraVolumes" not in ws["spec"]


def token_works(hub: Hub, token: str) -> bool:
    """Whether the hub still accepts ``token`` (a server's API token) at all."""
    reply = requests.get(
        f"{hub.url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30
    )
    assert reply.status_code in (200, 401, 403), reply.text
    return reply.status_code == 200


def test_a_servers_token_dies_with_it_whichever_hub_instance_stops_it(stack):
    """The hub that starts a server makes its API token; after a restart, another instance
    stops it. The token must still be revoked (it sits in the workspace's Secret)."""
    hub, user = stack.hub, "grace"
    stack.create_user(user)
    assert stack.start(user, {"profile": "small"}).status_code in (201, 202)
    hub.wait_ready(user)
    token = stack.hub_secret(user)["JUPYTERHUB_API_TOKEN"]
    assert token_works(hub, token)

    hub.restart()  # the instance that made the token, and knew it, is gone
    assert token_works(hub, token)  # the server still runs: its proxy still needs it
    assert hub.api("DELETE", f"/users/{user}/server").status_code in (202, 204)
    hub.wait_stopped(user)
    assert not token_works(hub, token)


def test_a_servers_token_expires_unless_a_running_hub_renews_it(stack, tmp_path):
    """Server tokens get an expiry that the hub renews while the server runs; a token no hub
    renewed is dead, and the hub that comes back stops the workspace it belonged to."""
    lifetime = 6
    short = {"DEVPLANE_SERVER_TOKEN_LIFETIME": str(lifetime)}
    with stack.another_hub(tmp_path, poll_interval=1, **short) as hub:
        user = "heidi"
        start_ready(hub, user)
        token = stack.hub_secret(user)["JUPYTERHUB_API_TOKEN"]
        # Renewed while its hub runs: valid for several lifetimes.
        until = time.monotonic() + 3 * lifetime
        while time.monotonic() < until:
            assert token_works(hub, token)
            time.sleep(0.5)

        hub.stop()
        # What is under test is time passing with nobody renewing the token.
        time.sleep(lifetime + 1)
        hub.start()
        hub.wait_stopped(user, timeout=60)
        assert not token_works(hub, token)
        ws = stack.get("workspace", naming.workspace_name(user))
        assert ws["spec"]["started"] is False  # stopped, not just forgotten by the hub


def test_with_admin_access_each_users_server_has_a_host_of_its_own(stack, tmp_path):
    """Admin access on (which needs per-user subdomains): the user's server is routed and
    reached on <user>.<host>, never on the hub's origin, and its auth proxy is told to let
    admins in and to use __Host- cookies."""
    admin_access = {
        "DEVPLANE_ADMIN_ACCESS": "true",
        "DEVPLANE_SUBDOMAIN_HOST": "https://devplane.example.test",
        # Behind a TLS Ingress for *.devplane.example.test; the proxy itself is plain http.
        "DEVPLANE_PUBLIC_URL": "https://devplane.example.test/",
    }
    with stack.another_hub(tmp_path, **admin_access) as hub:
        user = "ivan"
        start_ready(hub, user)
        env = stack.hub_secret(user)
        assert env["JUPYTERHUB_ADMIN_ACCESS"] == "1"
        assert env["JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED"] == "1"
        assert env["JUPYTERHUB_PUBLIC_URL"] == f"https://{user}.devplane.example.test/user/{user}/"
        # The proxy routes the server by host: on the hub's host the path is the hub's.
        routes = hub.proxy.routes()
        ws = stack.get("workspace", naming.workspace_name(user))
        (route,) = [r for r, v in routes.items() if ws["status"]["podIP"] in v["target"]]
        assert route.rstrip("/") == f"/{user}.devplane.example.test/user/{user}", routes


def test_in_pod_ip_mode_a_server_whose_auth_proxy_is_not_ready_is_stopped(stack, tmp_path):
    """pod-ip routing (kept for tests on simulated pods) sends visitors, admins too, straight
    to the pod's IP, where the user's processes could listen on the proxy's port once the
    proxy died. So the
    hub must stop routing there as soon as the operator reports the pod not ready. The test
    plays the kubelet: the image's `.test` registry is one kwok never plays."""
    played = {"slug": "played", "default": True, "image": "registry.test/devplane/ws:played"}
    user = "judy"
    pod = naming.child_name(naming.workspace_name(user))
    pod_ip = f"127.99.{uuid.uuid4().int % 250 + 1}.{uuid.uuid4().int % 250 + 1}"

    def kubelet_reports(ready: bool) -> None:
        containers = [
            {"name": name, "image": "x", "imageID": "", "restartCount": 0, "ready": ready,
             "state": {"running": {}} if ready else {"terminated": {"exitCode": 137}}}
            for name in ("workspace", "authproxy")
        ]  # fmt: skip
        status = {
            "phase": "Running", "podIP": pod_ip, "podIPs": [{"ip": pod_ip}],
            "conditions": [{"type": "PodScheduled", "status": "True"},
                           {"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": containers,
        }  # fmt: skip
        stack.kubectl("patch", "pod", pod, "-n", stack.namespace, "--subresource=status",
                      "--type=merge", "-p", json.dumps({"status": status}))  # fmt: skip

    def routed() -> bool:
        return any(pod_ip in r["target"] for r in hub.proxy.routes().values())

    with stack.another_hub(tmp_path, profiles=[played], poll_interval=1) as hub:
        assert hub.api("POST", f"/users/{user}").status_code == 201
        assert hub.api("POST", f"/users/{user}/server", json={}).status_code in (201, 202)
        wait_for("the pod to be scheduled", lambda: (stack.get("pod", pod) or {}).get(
            "spec", {}).get("nodeName"))  # fmt: skip
        kubelet_reports(ready=True)
        hub.wait_ready(user)
        assert routed()

        kubelet_reports(ready=False)  # the auth proxy died (its port is free to take)
        hub.wait_stopped(user, timeout=30)
        assert not routed()
        ws = stack.get("workspace", naming.workspace_name(user))
        assert ws["spec"]["started"] is False
