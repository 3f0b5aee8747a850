"""Stand-ins for the workspace pods' auth proxies, so the hub's readiness check is answered.

kwok runs nothing in its pods; the tests of the hub and the spawn benchmark only need the pod
to answer at its IP. (The end-to-end tests run the real auth proxy in real pods on the real node.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import threading
from collections.abc import Callable, Iterator

from devplane_api.v1alpha1 import PROXY_PORT


class PodResponders:
    """Answers the hub's readiness check at each workspace pod's IP, like the auth proxy would.

    kwok marks pods Running with an IP in 127.20.0.0/16 but runs nothing there, so JupyterHub's
    own check that the server answers (``GET <url><prefix>api``) would time out. This watches
    the namespace's pods and, for each one with an IP, serves HTTP on ``<podIP>:8888`` (any
    127.x address is loopback on Linux, bindable without set-up): 200 with the
    ``X-JupyterHub-Version`` header for every path, recording the paths it was asked for, so a
    test can tell that the hub (or the proxy) really reached the pod. The real auth proxy is
    exercised by the end-to-end tests on the real node; here we test the hub and spawner.
    """

    PORT = PROXY_PORT

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
