"""JupyterHub launched the one way: ``jupyterhub -f <config>`` from the venv, until its API answers.

``run_jupyterhub`` is that launcher (``localhub`` uses it with its own config). ``Hub`` is
DevPlane's hub, ``hub_config/jupyterhub_config.py`` configured through environment variables
only, behind a configurable-http-proxy started apart from it (``proxy``), as the chart runs
it; the tests, the spawn benchmark and the demo all start it through ``Hub``. ``restart()``
keeps its database and the proxy. ``running_hub`` is one with a proxy of its own, for a test.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from .oidc import OidcProvider
from .paths import HUB_CONFIG
from .poll import wait_for
from .procs import ManagedProcess, StartError, base_env, free_port, http_ok
from .progress import ProgressStream
from .proxy import ConfigurableHttpProxy

# Tests: the culler runs as in production, with a timeout no test reaches; spawns may be slow
# on a busy machine. The demo keeps hub_config's own defaults.
TEST_TIMEOUTS = {
    "DEVPLANE_CULL_TIMEOUT": "86400",
    "DEVPLANE_START_TIMEOUT": "120",
    "DEVPLANE_HTTP_TIMEOUT": "30",
}

# For a hub driven by its API token only: the OIDC endpoints are given explicitly (no
# discovery, so no provider is needed) and never contacted.
NO_LOGIN = {
    "DEVPLANE_OIDC_AUTHORIZE_URL": "http://127.0.0.1:9/auth",
    "DEVPLANE_OIDC_TOKEN_URL": "http://127.0.0.1:9/token",
    "DEVPLANE_OIDC_USERINFO_URL": "http://127.0.0.1:9/me",
    "DEVPLANE_OIDC_CLIENT_ID": "unused",
}


def connect_modes() -> tuple[str, ...]:
    """The spawner's choices of ``hub_connect_via`` (its traitlet is their one definition).
    Imported when asked: it brings JupyterHub in."""
    from devplane_spawner.spawner import DevPlaneSpawner

    return tuple(DevPlaneSpawner.hub_connect_via.values or ())


def run_jupyterhub(
    config: Path,
    env: Mapping[str, str],
    workdir: Path,
    log_path: Path,
    url: str,
    timeout: float,
    launcher: Sequence[str] = (),
) -> ManagedProcess:
    """Start JupyterHub with ``config`` (under the argv prefix ``launcher``, if any); return
    once ``url``/hub/api/ answers 200."""
    debug = ["--debug"] if os.environ.get("DEVPLANE_TEST_HUB_DEBUG") else []
    process = ManagedProcess(
        [*launcher, sys.executable, "-m", "jupyterhub", "-f", str(config), *debug],
        log_path,
        env=dict(env),
        cwd=workdir,
        name="hub",
    )
    try:
        process.wait_until("its API to answer", http_ok(f"{url}/hub/api/"), timeout)
    except StartError:
        process.stop(grace=20)
        raise
    return process


class HubClient:
    """What tests and benchmarks ask a running hub, through its REST API with an
    admin-scoped token (``url`` and ``token`` are set by the subclass)."""

    url: str
    token: str

    def api(
        self, method: str, path: str, expect: tuple[int, ...] | None = None, **kw: Any
    ) -> requests.Response:
        """``/hub/api<path>``; with ``expect``, any other status fails the caller."""
        response = requests.request(
            method,
            f"{self.url}/hub/api{path}",
            headers={"Authorization": f"token {self.token}"},
            timeout=kw.pop("timeout", 60),
            **kw,
        )
        if expect is not None and response.status_code not in expect:
            raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
        return response

    def user_model(self, user: str) -> dict[str, Any]:
        return self.api("GET", f"/users/{user}", expect=(200,)).json()

    def server(self, user: str, name: str = "") -> dict[str, Any] | None:
        """The hub's model of ``user``'s server ``name``; None when it has none."""
        return (self.user_model(user).get("servers") or {}).get(name)

    def wait_ready(self, user: str, timeout: float = 120) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            server = self.server(user)
            return server if server and server.get("ready") else None

        return wait_for(f"{user}'s server to be ready", ready, timeout, interval=0.2)

    def wait_stopped(self, user: str, timeout: float = 120) -> None:
        wait_for(f"{user}'s server to stop", lambda: self.server(user) is None, timeout, 0.2)


class Hub(HubClient):
    """DevPlane's hub config behind ``proxy``; logins through ``oidc`` when given."""

    def __init__(
        self,
        workdir: Path,
        proxy: ConfigurableHttpProxy,
        oidc: OidcProvider | None,
        namespace: str,
        profiles: list[dict[str, Any]],
        extra_env: Mapping[str, str] | None = None,
        hub_port: int | None = None,
        *,
        token: str | None = None,
        timeouts: Mapping[str, str] = TEST_TIMEOUTS,
        env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
        host: str = "127.0.0.1",
        launcher: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.launcher = list(launcher)  # an argv prefix the hub runs under (proxy.py's)
        self.log_path = (log_dir or workdir) / "hub.log"
        self.proxy = proxy
        self.url = proxy.url
        self.hub_port = hub_port or free_port()
        self.bind_url = f"http://{host}:{self.hub_port}"
        self.token = token or secrets.token_hex(16)
        self.process: ManagedProcess | None = None
        self.env = {
            **(env or base_env()),
            "DEVPLANE_PUBLIC_URL": proxy.url,
            # Where the proxy listens, also when a test gives another public URL.
            "DEVPLANE_BIND_URL": proxy.url,
            "DEVPLANE_HUB_BIND_URL": self.bind_url,
            "DEVPLANE_PROXY_API_URL": proxy.api_url,
            "DEVPLANE_PROXY_AUTH_TOKEN": proxy.token,
            "DEVPLANE_HUB_DATA_DIR": str(workdir),
            "DEVPLANE_NAMESPACE": namespace,
            # kwok's pod IPs are local addresses; Service DNS names do not resolve here.
            "DEVPLANE_HUB_CONNECT_VIA": "pod-ip",
            "DEVPLANE_PROFILES": json.dumps(profiles),
            "DEVPLANE_AUTOMATION_TOKEN": self.token,
            "DEVPLANE_AUTH_STATE_KEY_FILE": str(workdir / "auth_state_key"),
            **timeouts,
            **(oidc.hub_env() if oidc is not None else {}),
            **(extra_env or {}),
        }

    def start(self, timeout: float = 60) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)  # the database, the cookie secret
        key = self.workdir / "auth_state_key"
        if not key.exists():
            # Like the chart's Secret: made once, kept with the database it encrypts.
            key.touch(mode=0o600)
            key.write_text(secrets.token_hex(32))
        self.process = run_jupyterhub(
            HUB_CONFIG, self.env, self.workdir, self.log_path, self.url, timeout, self.launcher
        )

    def stop(self) -> None:
        if self.process is not None:
            # SIGTERM: the hub stops its services; the grace covers a slow culler.
            self.process.stop(grace=20)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.process.log() if self.process else ""

    def start_in_background(
        self, user: str, options: dict[str, Any] | None
    ) -> Callable[[float], requests.Response]:
        """POST the start in a thread (the hub answers after at most its slow_spawn_timeout,
        10 s) and return once the spawn is pending or answered; call the result to get the
        hub's response."""
        result: dict[str, requests.Response] = {}

        def post() -> None:
            result["response"] = self.api(
                "POST", f"/users/{user}/server", json={"user_options": options}
            )

        thread = threading.Thread(target=post, daemon=True)
        thread.start()

        def pending_or_done() -> bool:
            if "response" in result:
                return True
            server = self.server(user)
            return bool(server and server.get("pending") == "spawn")

        wait_for(f"{user}'s spawn to be pending", pending_or_done, 30, interval=0.05)

        def response(timeout: float = 120) -> requests.Response:
            thread.join(timeout)
            assert "response" in result, f"the start of {user} got no answer within {timeout}s"
            return result["response"]

        return response

    def follow_progress(self, user: str, timeout: float = 120) -> ProgressStream:
        """The hub's spawn progress event-stream for ``user``'s default server, followed."""
        return ProgressStream(self.url, user, self.token, timeout)

    def start_and_follow(
        self, user: str, options: dict[str, Any] | None, timeout: float = 120
    ) -> tuple[requests.Response, list[dict[str, Any]]]:
        """Start ``user``'s server and follow the progress stream to its end.

        Only for a start whose stream says the same whenever it is opened: one that fails
        (the hub reports a failed spawn to a late subscriber too). A start that succeeds may
        be over before the stream opens; hold its pod's server (PodResponders.held) to see
        DevPlane's lines.
        """
        response = self.start_in_background(user, options)
        events = self.follow_progress(user, timeout).result(timeout)
        return response(timeout), events


@contextlib.contextmanager
def running_hub(
    workdir: Path,
    namespace: str = "unused",
    profiles: list[dict[str, Any]] | None = None,
    **env: str,
) -> Iterator[Hub]:
    """DevPlane's hub without login (the API token only) behind a proxy of its own,
    configured with ``env`` on top of NO_LOGIN, started; both stopped at the end, also when
    the hub refuses to start (StartError)."""
    proxy = ConfigurableHttpProxy(workdir)
    hub = Hub(workdir, proxy, None, namespace, profiles or [], extra_env={**NO_LOGIN, **env})
    try:
        hub.start()
        yield hub
    finally:
        hub.stop()
        proxy.stop()
