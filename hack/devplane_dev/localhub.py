"""A JupyterHub whose users' servers are DevPlane auth proxies run as local processes.

For the auth proxy's tests and the terminal benchmark: no cluster, no OIDC provider.

    hub = LocalHub(tmp_path, users={"alice": False, "admin": True},
                   upstream_template=f"unix:{tmp_path}/{{username}}/run/ttyd.sock")
    hub.start()
    alice = hub.login("alice")                 # requests.Session with the hub's cookies
    hub.start_server("alice")                  # via the REST API, waits until ready
    page = hub.open_server(alice, "alice")     # OAuth into the auth proxy, returns the page
    ...
    hub.stop()

The hub uses DummyAuthenticator with one shared password (``LocalHub.PASSWORD``), sqlite in
the work dir, configurable-http-proxy from node_modules on a random port, and the
``devplane_dev.local_spawner.AuthProxySpawner`` so a user's server is the DevPlane auth proxy.
``last_activity_interval = 0``: the hub does not derive activity from proxy traffic, so only
what the auth proxy reports counts (the same setting the real hub config must use).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from .auditlog import audit_events
from .hub import HubClient, run_jupyterhub
from .login import Form, login
from .paths import NODE_BIN
from .procs import ManagedProcess, base_env, free_port, listening_pid
from .proxy import routes
from .ttyd_client import TtydSession

_CONFIG = """
import sys
c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.JupyterHub.db_url = "sqlite:///{workdir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{workdir}/cookie_secret"
c.JupyterHub.pid_file = "{workdir}/jupyterhub.pid"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.last_activity_interval = 0
c.JupyterHub.admin_access = {admin_access}
c.ConfigurableHTTPProxy.command = ["{chp}"]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.auth_token = "{proxy_token}"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "{password}"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {admins!r}
c.JupyterHub.spawner_class = "devplane_dev.local_spawner.AuthProxySpawner"
c.Spawner.http_timeout = 30
c.Spawner.start_timeout = 60
c.Spawner.home_dir_template = "{workdir}/homes/{{username}}"
c.AuthProxySpawner.upstream_template = {upstream_template!r}
c.AuthProxySpawner.activity_file_template = {activity_file_template!r}
c.AuthProxySpawner.env_by_user = {env_by_user!r}
c.Spawner.environment = {spawner_environment!r}
c.JupyterHub.services = [{{"name": "devplane-tests", "api_token": "{service_token}"}}]
c.JupyterHub.load_roles = [
    {{
        "name": "devplane-tests",
        "scopes": ["admin:users", "admin:servers", "tokens", "read:users:activity", "read:servers"],
        "services": ["devplane-tests"],
    }}
]
"""


class LocalHub(HubClient):
    PASSWORD = "devplane-test-password"

    def __init__(
        self,
        workdir: Path,
        users: dict[str, bool],
        upstream_template: str,
        activity_file_template: str = "",
        admin_access: bool = False,
        env_by_user: dict[str, dict[str, str]] | None = None,
        spawner_environment: dict[str, str] | None = None,
    ) -> None:
        """``users`` maps user name -> is admin; templates expand {username}, {servername}."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.users = users
        self.port = free_port()
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self.token = secrets.token_hex(16)  # the "devplane-tests" service's, admin-scoped
        # configurable-http-proxy's REST API token (GET {proxy_api_url}/api/routes).
        self.proxy_token = secrets.token_hex(16)
        self.proxy_api_url = f"http://127.0.0.1:{self.proxy_api_port}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: ManagedProcess | None = None
        self.config_path = workdir / "jupyterhub_config.py"
        self.config_path.write_text(
            _CONFIG.format(
                port=self.port,
                hub_port=self.hub_port,
                proxy_api_port=self.proxy_api_port,
                proxy_token=self.proxy_token,
                workdir=workdir,
                admin_access=admin_access,
                chp=NODE_BIN / "configurable-http-proxy",
                password=self.PASSWORD,
                admins={name for name, admin in users.items() if admin},
                upstream_template=upstream_template,
                activity_file_template=activity_file_template,
                env_by_user=env_by_user or {},
                spawner_environment=spawner_environment or {},
                service_token=self.token,
            )
        )

    # ---------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 60) -> None:
        env = base_env(HOME=str(self.workdir))
        self.process = run_jupyterhub(
            self.config_path, env, self.workdir, self.workdir / "hub.log", self.url, timeout
        )
        for name in self.users:
            self.api("POST", f"/users/{name}", expect=(201, 409))

    def stop(self) -> None:
        if self.process is not None:
            # SIGTERM: the hub stops its spawners (cleanup_servers) and its proxy.
            self.process.stop(grace=20)
            self.process = None

    def log(self) -> str:
        """The hub's output this run, with its proxy's and its servers' (the auth proxies')."""
        return self.process.log() if self.process else ""

    def audit_events(self, event: str | None = None, **fields: Any) -> list[dict[str, Any]]:
        """The audit events the users' auth proxies wrote: their standard output is the
        hub's, so they are lines of its log (devplane_dev.auditlog)."""
        return audit_events(self.log(), event, **fields)

    def log_size(self) -> int:
        """Bytes in that log file now: how fast it grows, without reading it."""
        return self.process.log_path.stat().st_size if self.process else 0

    # ---------------------------------------------------------------- REST API

    def proxy_routes(self) -> dict[str, Any]:
        """configurable-http-proxy's routing table (route -> {"target", ...})."""
        return routes(self.proxy_api_url, self.proxy_token)

    def server_address(self, name: str) -> tuple[str, int]:
        """Where ``name``'s auth proxy listens: the target of its route in the hub's proxy."""
        target = urlsplit(self.proxy_routes()[f"/user/{name}"]["target"])
        return target.hostname or "127.0.0.1", target.port or 80

    def server_pid(self, name: str) -> int:
        """The pid of ``name``'s auth proxy: whatever listens at its address."""
        host, port = self.server_address(name)
        return listening_pid(port, host)

    def server_activity(self, name: str, server: str = "") -> str | None:
        """The hub's last_activity for a user's server (ISO string) or None."""
        return (self.server(name, server) or {}).get("last_activity")

    def start_server(self, name: str, timeout: float = 60) -> None:
        self.api("POST", f"/users/{name}/server", expect=(201, 202, 400))
        self.wait_ready(name, timeout)

    def stop_server(self, name: str, timeout: float = 30) -> None:
        self.api("DELETE", f"/users/{name}/server", expect=(202, 204))
        self.wait_stopped(name, timeout)

    # ---------------------------------------------------------------- browser-like use

    def login(self, name: str, password: str | None = None) -> requests.Session:
        """Log in through the hub's login form, as a browser would."""
        session, response = login(self.url, name, password or self.PASSWORD, start="/hub/login")
        if "jupyterhub-session-id" not in session.cookies and not any(
            c.name.startswith("jupyterhub-hub-login") for c in session.cookies
        ):
            raise AssertionError(f"login as {name} failed: {response.status_code}")
        return session

    def open_server(
        self, session: requests.Session, owner: str, path: str = "", confirm: bool = True
    ) -> requests.Response:
        """GET ``/user/<owner>/<path>`` following the OAuth dance like a browser.

        When the hub shows its "authorize access" page (someone else's server), the form is
        submitted if ``confirm``; otherwise that page is returned.
        """
        response = session.get(f"{self.url}/user/{owner}/{path}", timeout=30)
        if confirm and "/hub/api/oauth2/authorize" in response.url and response.status_code == 200:
            response = Form(response.text).submit(session, response)
        return response

    def cookie_header(self, session: requests.Session, path: str) -> str:
        """The Cookie header a browser would send to ``path`` (cookies scoped to it only)."""
        return "; ".join(
            f"{c.name}={c.value}" for c in session.cookies if path.startswith(c.path or "/")
        )

    async def open_terminal(self, session: requests.Session, owner: str) -> TtydSession:
        """Load ``owner``'s page (the OAuth dance), then open its terminal WebSocket with
        ``session``'s cookies, as the browser's page does.

        Use as ``async with await hub.open_terminal(...) as term:``.
        """
        await asyncio.to_thread(self.open_server, session, owner)
        cookie = self.cookie_header(session, f"/user/{owner}/ws")
        return await TtydSession.open(self.ws_url(owner), cookie=cookie, origin=self.origin)

    def ws_url(self, owner: str, path: str = "ws") -> str:
        return f"ws://127.0.0.1:{self.port}/user/{owner}/{path}"

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"


def iso_to_epoch(stamp: str | None) -> float:
    """Hub timestamps ("2026-01-01T00:00:00.123456Z") as epoch seconds; 0 for None."""
    if not stamp:
        return 0.0
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)
