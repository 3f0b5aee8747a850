"""Real processes for the hub tests and the spawn benchmark.

* ``OidcProvider`` — hack/oidc/server.mjs (the npm ``oidc-provider``) on a random port;
* ``Proxy`` — configurable-http-proxy from node_modules, started on its own, as in the chart;
* ``Hub`` — ``jupyterhub -f hub_config/jupyterhub_config.py`` configured only by env vars,
  sqlite in a temp dir; ``restart()`` keeps its database and the proxy;
* the operator comes from ``devplane_operator.testing`` (its engineer's helper);
* ``PodResponders`` — stands in for the workspace pods' auth proxies (see its docstring);
* ``login()`` — a real OIDC login with ``requests``: the hub's login redirect, the provider's
  HTML form, the callback.

Everything binds to 127.0.0.1 on ports the kernel picks; every process is in its own process
group and stopped with it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import secrets
import sys
import threading
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from support.procs import ManagedProcess, free_port, wait_for  # noqa: E402
from support.progress import ProgressStream  # noqa: E402

NODE_BIN = ROOT / "node_modules" / ".bin"
HUB_CONFIG = ROOT / "hub_config" / "jupyterhub_config.py"

# Users of the test identity provider: (password, groups).
USERS = {
    "alice": ("alice-pw", ["devplane-users"]),
    "bob": ("bob-pw", ["devplane-users"]),
    "root": ("root-pw", ["devplane-users", "devplane-admins"]),
    "mallory": ("mallory-pw", ["contractors"]),
}


# Profiles the hub tests offer; broken-image names a registry the local cluster treats as
# unreachable (any host ending in .invalid), so its pod stays in ImagePullBackOff.
PROFILES = [
    {
        "slug": "small",
        "display_name": "Small",
        "description": "1 CPU, 2 GiB",
        "default": True,
        "resources": {"limits": {"cpu": "1", "memory": "2Gi"}},
    },
    {
        "slug": "large",
        "display_name": "Large",
        "description": "4 CPUs, 8 GiB",
        "resources": {"limits": {"cpu": "4", "memory": "8Gi"}},
    },
    {
        "slug": "broken-image",
        "display_name": "Broken image",
        "description": "An image no registry serves",
        "image": "registry.invalid/devplane/workspace:missing",
    },
]


def _base_env() -> dict[str, str]:
    keep = ("PATH", "LANG", "KUBECONFIG", "HOME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = f"{Path(sys.executable).parent}:{NODE_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    return env


class OidcProvider:
    """hack/oidc/server.mjs with the USERS above and one client (the hub)."""

    def __init__(self, workdir: Path, redirect_uri: str) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.client_id = "devplane-hub"
        self.client_secret = secrets.token_hex(16)
        self.config = workdir / "oidc.json"
        self.config.write_text(
            json.dumps(
                {
                    "host": "127.0.0.1",
                    "port": self.port,
                    # Required, so a login that succeeds proves the hub sends PKCE.
                    "requirePkce": True,
                    "clients": [
                        {
                            "client_id": self.client_id,
                            "client_secret": self.client_secret,
                            "redirect_uris": [redirect_uri],
                        }
                    ],
                    "users": [
                        {"username": u, "password": p, "email": f"{u}@example.org", "groups": g}
                        for u, (p, g) in USERS.items()
                    ],
                }
            )
        )
        self.process = ManagedProcess(
            ["node", str(ROOT / "hack" / "oidc" / "server.mjs"), str(self.config)],
            workdir / "oidc.log",
            env=_base_env(),
        )
        wait_for(self._ready, 30, "the OIDC provider to start")

    def _ready(self) -> bool:
        if not self.process.alive():
            raise RuntimeError(f"OIDC provider exited:\n{self.process.log()[-3000:]}")
        return f"ready {self.issuer}" in self.process.log()

    def stop(self) -> None:
        self.process.stop()


class Proxy:
    """configurable-http-proxy, started apart from the hub (should_start = False)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.api_port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        env = _base_env() | {"CONFIGPROXY_AUTH_TOKEN": self.token}
        self.process = ManagedProcess(
            [
                str(NODE_BIN / "configurable-http-proxy"),
                "--ip=127.0.0.1", f"--port={self.port}",
                "--api-ip=127.0.0.1", f"--api-port={self.api_port}",
                "--log-level=warn",
            ],
            workdir / "proxy.log",
            env=env,
        )  # fmt: skip

        def up() -> bool:
            if not self.process.alive():
                raise RuntimeError(f"proxy exited:\n{self.process.log()[-3000:]}")
            with contextlib.suppress(requests.RequestException):
                headers = {"Authorization": f"token {self.token}"}
                return requests.get(f"{self.api_url}/api/routes", headers=headers).ok
            return False

        wait_for(up, 30, "configurable-http-proxy to start")

    def stop(self) -> None:
        self.process.stop()


class Hub:
    """JupyterHub from the venv with DevPlane's config file, configured through env vars."""

    def __init__(
        self,
        workdir: Path,
        proxy: Proxy,
        oidc: OidcProvider | None,
        namespace: str,
        profiles: list[dict[str, Any]],
        extra_env: dict[str, str] | None = None,
        hub_port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.proxy = proxy
        self.url = proxy.url
        self.hub_port = hub_port or free_port()
        self.token = secrets.token_hex(16)
        self.process: ManagedProcess | None = None
        self._starts = 0
        env = _base_env() | {
            "DEVPLANE_PUBLIC_URL": proxy.url,
            "DEVPLANE_HUB_BIND_URL": f"http://127.0.0.1:{self.hub_port}",
            "DEVPLANE_PROXY_API_URL": proxy.api_url,
            "DEVPLANE_PROXY_AUTH_TOKEN": proxy.token,
            "DEVPLANE_HUB_DATA_DIR": str(workdir),
            "DEVPLANE_NAMESPACE": namespace,
            "DEVPLANE_HUB_CONNECT_VIA": "pod-ip",
            "DEVPLANE_PROFILES": json.dumps(profiles),
            "DEVPLANE_AUTOMATION_TOKEN": self.token,
            # The culler runs as in production, but with a timeout no test reaches.
            "DEVPLANE_CULL_TIMEOUT": "86400",
            "DEVPLANE_START_TIMEOUT": "120",
            "DEVPLANE_HTTP_TIMEOUT": "30",
        }
        if oidc is not None:
            env |= {
                "DEVPLANE_OIDC_ISSUER": oidc.issuer,
                "DEVPLANE_OIDC_CLIENT_ID": oidc.client_id,
                "DEVPLANE_OIDC_CLIENT_SECRET": oidc.client_secret,
                "DEVPLANE_OIDC_CALLBACK_URL": f"{proxy.url}/hub/oauth_callback",
                "DEVPLANE_OIDC_ALLOWED_GROUPS": "devplane-users",
                "DEVPLANE_OIDC_ADMIN_GROUPS": "devplane-admins",
            }
        self.env = env | (extra_env or {})

    def start(self, timeout: float = 60) -> None:
        self._starts += 1
        self.env["DEVPLANE_HUB_DATA_DIR"] = str(self.workdir)
        self.process = ManagedProcess(
            [sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)]
            + (["--debug"] if os.environ.get("DEVPLANE_TEST_HUB_DEBUG") else []),
            self.workdir / f"jupyterhub-{self._starts}.log",
            env=self.env,
            cwd=self.workdir,
        )

        def up() -> bool:
            if not self.process.alive():
                raise RuntimeError(f"jupyterhub exited:\n{self.process.log()[-5000:]}")
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200
            return False

        wait_for(up, timeout, "JupyterHub to answer through the proxy", interval=0.2)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=20)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.process.log() if self.process else ""

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}/hub/api{path}",
            headers={"Authorization": f"token {self.token}"},
            timeout=kw.pop("timeout", 60),
            **kw,
        )

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
            server = self.api("GET", f"/users/{user}").json().get("servers", {}).get("")
            return bool(server and server.get("pending") == "spawn")

        wait_for(pending_or_done, 30, f"{user}'s spawn to be pending", interval=0.05)

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

    def wait_ready(self, user: str, timeout: float = 120) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            model = self.api("GET", f"/users/{user}").json()
            server = model.get("servers", {}).get("")
            return model if server and server.get("ready") else None

        return wait_for(ready, timeout, f"{user}'s server to be ready", interval=0.2)

    def wait_stopped(self, user: str, timeout: float = 120) -> None:
        def stopped() -> bool:
            return "" not in self.api("GET", f"/users/{user}").json().get("servers", {})

        wait_for(stopped, timeout, f"{user}'s server to stop", interval=0.2)


class _Form(HTMLParser):
    """The first form of a page: its action and named inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.inputs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action") or ""
        elif tag == "input" and a.get("name"):
            self.inputs.append(a["name"] or "")


def login(hub_url: str, username: str, password: str) -> tuple[requests.Session, requests.Response]:
    """Log in like a browser: hub -> provider's form -> submit -> hub callback.

    Returns the session (with the hub's cookies) and the last response of the redirect chain.
    """
    session = requests.Session()
    page = session.get(f"{hub_url}/hub/oauth_login", timeout=30)
    page.raise_for_status()
    form = _Form()
    form.feed(page.text)
    if form.action is None or not {"username", "password"} <= set(form.inputs):
        raise AssertionError(f"no login form at {page.url}:\n{page.text[:2000]}")
    result = session.post(
        urljoin(page.url, form.action),
        data={"username": username, "password": password},
        timeout=60,
    )
    return session, result


class PodResponders:
    """Answers the hub's readiness check at each workspace pod's IP, like the auth proxy would.

    kwok marks pods Running with an IP in 127.20.0.0/16 but runs nothing there, so JupyterHub's
    own check that the server answers (``GET <url><prefix>api``) would time out. This watches
    the namespace's pods and, for each one with an IP, serves HTTP on ``<podIP>:8888`` (any
    127.x address is loopback on Linux, bindable without set-up): 200 with the
    ``X-JupyterHub-Version`` header for every path, recording the paths it was asked for, so a
    test can tell that the hub (or the proxy) really reached the pod. The real auth proxy is
    exercised by the end-to-end tests with the local runner; here we test the hub and spawner.
    """

    PORT = 8888

    def __init__(self, kubeconfig: str, namespace: str) -> None:
        # Cleared by held(): new pods' servers wait, as an auth proxy still starting would.
        # Only touched in the responders' loop (see _in_loop).
        self._open = asyncio.Event()
        self._open.set()
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.hits: dict[str, list[str]] = {}  # pod IP -> request paths
        self.errors: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._servers: dict[str, asyncio.AbstractServer | None] = {}
        self._tasks: set[asyncio.Future] = set()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._task: asyncio.Future | None = None
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = asyncio.ensure_future(self._watch(), loop=self._loop)
        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(self._task)
        for server in self._servers.values():
            if server is not None:
                server.close()
        self._loop.close()

    async def _serve(self, ip: str) -> None:
        if ip in self._servers:
            return
        self._servers[ip] = None  # type: ignore[assignment]  # claimed; listening soon
        await self._open.wait()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while True:
                    request = await reader.readuntil(b"\r\n\r\n")
                    path = request.split(b" ", 2)[1].decode()
                    self.hits.setdefault(ip, []).append(path)
                    body = json.dumps({"responder": ip}).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nX-JupyterHub-Version: 6.1.1\r\n"
                        b"X-DevPlane-Test-Responder: " + ip.encode() + b"\r\n"
                        b"Content-Type: application/json\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                    )
                    await writer.drain()
            writer.close()

        try:
            self._servers[ip] = await asyncio.start_server(handle, ip, self.PORT)
        except OSError as e:
            self.errors.append(f"cannot listen on {ip}:{self.PORT}: {e}")

    async def _watch(self) -> None:
        from kubernetes_asyncio import client, config, watch

        configuration = client.Configuration()
        await config.load_kube_config(self.kubeconfig, client_configuration=configuration)
        async with client.ApiClient(configuration) as api:
            core = client.CoreV1Api(api)
            while True:
                try:
                    async with watch.Watch() as w:
                        stream = w.stream(
                            core.list_namespaced_pod, self.namespace, timeout_seconds=120
                        )
                        async for event in stream:
                            pod = event["object"]
                            ip = getattr(pod.status, "pod_ip", None) if pod.status else None
                            if event["type"] != "DELETED" and ip:
                                self._tasks.add(asyncio.ensure_future(self._serve(ip)))
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # a dropped watch on a busy API server: watch again
                    self.errors.append(f"pod watch: {e!r}")
                    await asyncio.sleep(0.5)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """While the block runs, a pod at an address not served before gets no answer yet, so
        the hub keeps its spawn pending (its check that the server answers, for up to its
        http_timeout): a test can follow the spawn's progress while it certainly is pending."""
        self._in_loop(self._open.clear)
        try:
            yield
        finally:
            self._in_loop(self._open.set)

    def _in_loop(self, action: Callable[[], None]) -> None:
        """Run ``action`` in the responders' loop; return once it has run."""
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            action()
            done.set_result(None)

        self._loop.call_soon_threadsafe(run)
        done.result(timeout=10)

    def stop(self) -> None:
        if self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)
