"""configurable-http-proxy from node_modules, started apart from the hub, as the chart does."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from .paths import NODE_BIN
from .procs import ManagedProcess, StartError, base_env, free_port


def routes(api_url: str, token: str) -> dict[str, Any]:
    """A configurable-http-proxy's routing table (route -> {"target", ...})."""
    response = requests.get(
        f"{api_url}/api/routes", headers={"Authorization": f"token {token}"}, timeout=10
    )
    response.raise_for_status()
    return response.json()


class ConfigurableHttpProxy:
    """The public entry point (``url``) and the REST API the hub programs routes through."""

    def __init__(
        self,
        log_dir: Path,
        *,
        port: int | None = None,
        api_port: int | None = None,
        host: str = "127.0.0.1",
        token: str | None = None,
        default_target: str | None = None,
        log_level: str = "warn",
        env: Mapping[str, str] | None = None,
        timeout: float = 30,
        launcher: Sequence[str] = (),
    ) -> None:
        """``launcher``: an argv prefix it runs under (realnode.cluster_network)."""
        self.port = port or free_port()
        self.api_port = api_port or free_port()
        self.token = token or secrets.token_hex(16)
        self.url = f"http://{host}:{self.port}"
        self.api_url = f"http://{host}:{self.api_port}"
        argv = [
            *launcher,
            str(NODE_BIN / "configurable-http-proxy"),
            f"--ip={host}", f"--port={self.port}",
            f"--api-ip={host}", f"--api-port={self.api_port}",
            f"--log-level={log_level}",
        ]  # fmt: skip
        if default_target:
            # Until the hub adds its own route, and for the hub's error pages.
            argv += [
                f"--default-target={default_target}",
                f"--error-target={default_target}/hub/error",
            ]
        self.process = ManagedProcess(
            argv,
            log_dir / "proxy.log",
            env={**(env or base_env()), "CONFIGPROXY_AUTH_TOKEN": self.token},
            name="proxy",
        )
        try:
            self.process.wait_until("its REST API", lambda: self.routes() is not None, timeout)
        except StartError:
            self.process.stop()
            raise

    def routes(self) -> dict[str, Any]:
        return routes(self.api_url, self.token)

    def stop(self) -> None:
        self.process.stop()
