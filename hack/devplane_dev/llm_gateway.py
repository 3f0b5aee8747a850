"""The workspace's LLM gateway as its container runs it: the real auth proxy (``python -m
devplane_authproxy``) with a gateway configuration, on this machine's loopback, for the tests
and the benchmark that drive it."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from devplane_api.v1alpha1 import AUTHPROXY_MODULE

from .procs import ManagedProcess, base_env, free_port, port_open


def start_gateway(
    work: Path,
    config: Path,
    owner: str,
    keys: Mapping[str, str],
    metrics_port: int = 0,
    audit: Path | None = None,
) -> tuple[ManagedProcess, int]:
    """The auth proxy serving the gateway of ``owner``'s workspace with ``config`` and the
    providers' ``keys`` (variable -> key) in its environment; its gateway port. With
    ``audit``, its standard output (the audit stream) goes there, apart from its log."""
    port = free_port()
    env = base_env(
        JUPYTERHUB_USER=owner,
        # Nothing here calls the hub; the proxy only insists on having them.
        JUPYTERHUB_API_TOKEN="unused",
        JUPYTERHUB_API_URL="http://127.0.0.1:9/hub/api",
        DEVPLANE_PROXY_IP="127.0.0.1",
        DEVPLANE_PROXY_PORT=str(free_port()),
        DEVPLANE_LLM_GATEWAY_CONFIG=str(config),
        DEVPLANE_LLM_GATEWAY_PORT=str(port),
        **({"DEVPLANE_METRICS_PORT": str(metrics_port)} if metrics_port else {}),
        **keys,
    )
    argv = [sys.executable, "-m", AUTHPROXY_MODULE]
    if audit is not None:
        argv = [sys.executable, "-c",
                f"import sys, runpy; sys.stdout = open({str(audit)!r}, 'w', buffering=1); "
                f"runpy.run_module({AUTHPROXY_MODULE!r}, run_name='__main__')"]  # fmt: skip
    process = ManagedProcess(argv, work / "proxy.log", env=env, name="authproxy")
    try:
        process.wait_until("the gateway", lambda: port_open(port), 20)
    except BaseException:
        process.stop()
        raise
    return process, port
