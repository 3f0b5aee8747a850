"""The proxy's settings, all read from the environment the pod (or a test) sets.

The `JUPYTERHUB_*` variables come from the hub-credentials Secret the spawner writes; the
`DEVPLANE_*` ones from the operator's pod spec (docs/contracts.md, "The workspace pod").
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from devplane_api.envparse import env_bool
from devplane_api.v1alpha1 import LLM_GATEWAY_PORT, PROXY_PORT

from .origin import Origin, parse_origin

# How long an identity the hub confirmed is trusted: the documented revocation latency.
IDENTITY_MAX_AGE = 30.0


def env_port(env: Mapping[str, str], name: str, default: int, zero_ok: bool = False) -> int:
    """A TCP port from ``env[name]`` (``default`` when unset); 0 only with ``zero_ok`` (off)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    low = 0 if zero_ok else 1
    if not raw.isdigit() or not low <= int(raw) <= 65535:
        raise ValueError(f"{name}={raw!r} must be a port number, {low}-65535")
    return int(raw)


def env_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """``env[name]`` as a positive number of seconds; unset or empty means ``default``."""
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise ValueError(f"{name}={value!r} is not a positive number of seconds")
    return seconds


def cookie_options(env: Mapping[str, str], secure: bool) -> dict[str, Any]:
    """``JUPYTERHUB_COOKIE_OPTIONS`` (a JSON object the hub sets, e.g. ``{"samesite": "Lax"}``),
    with ``secure`` added when the hub is on TLS."""
    raw = env.get("JUPYTERHUB_COOKIE_OPTIONS", "").strip()
    try:
        options = json.loads(raw) if raw else {}
    except ValueError as err:
        raise ValueError(f"JUPYTERHUB_COOKIE_OPTIONS={raw!r} is not JSON: {err}") from None
    if not isinstance(options, dict):
        raise ValueError(f"JUPYTERHUB_COOKIE_OPTIONS={raw!r} must be a JSON object")
    return {**options, "secure": True} if secure else options


@dataclass(frozen=True)
class Upstream:
    """Where ttyd listens: a unix socket path, or a TCP host and port."""

    unix_path: str | None = None
    host: str = "127.0.0.1"
    port: int = 7681
    # ttyd's --base-path, when it was started with one (e.g. shared with another proxy).
    base_path: str = ""

    @classmethod
    def parse(cls, spec: str) -> Upstream:
        """``unix:/run/devplane/ttyd.sock``, ``127.0.0.1:7681`` or ``http://127.0.0.1:7681/base``."""
        if spec.startswith("unix:"):
            path = spec[len("unix:") :]
            if not path.startswith("/"):
                raise ValueError(f"DEVPLANE_UPSTREAM unix socket path must be absolute: {spec!r}")
            return cls(unix_path=path)
        parts = urlsplit(spec if "://" in spec else f"http://{spec}")
        if parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
            # ttyd has no authentication of its own; it must never listen beyond loopback.
            raise ValueError(f"DEVPLANE_UPSTREAM must be a unix socket or loopback: {spec!r}")
        return cls(host=parts.hostname, port=parts.port or 7681, base_path=parts.path.rstrip("/"))


@dataclass(frozen=True)
class ProxySettings:
    """Everything the proxy needs; ``from_env()`` documents the variable behind each field."""

    owner: str
    server_name: str
    prefix: str
    upstream: Upstream
    listen_ip: str = "0.0.0.0"
    listen_port: int = PROXY_PORT
    activity_url: str = ""
    api_token: str = field(default="", repr=False)
    activity_file: str = ""
    activity_interval: float = 60.0
    identity_max_age: float = IDENTITY_MAX_AGE
    allow_admin_access: bool = False
    cookie_options: Mapping[str, Any] = field(default_factory=dict)
    public_origin: Origin | None = None
    llm_gateway_config: str = ""
    llm_gateway_port: int = LLM_GATEWAY_PORT
    metrics_port: int = 0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ProxySettings:
        env = os.environ if environ is None else environ
        owner = env.get("JUPYTERHUB_USER", "")
        if not owner:
            raise ValueError("JUPYTERHUB_USER (the workspace owner) must be set")
        prefix = env.get("JUPYTERHUB_SERVICE_PREFIX") or f"/user/{owner}/"
        if not prefix.endswith("/"):
            prefix += "/"
        hub_admin_access = env_bool(env, "JUPYTERHUB_ADMIN_ACCESS", False)
        hub_host = env.get("JUPYTERHUB_PUBLIC_URL") or env.get("JUPYTERHUB_HOST", "")
        public_url = env.get("JUPYTERHUB_PUBLIC_URL", "")
        public_origin = parse_origin(public_url, path_allowed=True) if public_url else None
        if public_url and public_origin is None:
            raise ValueError(
                f"JUPYTERHUB_PUBLIC_URL={public_url!r} is not an http(s) URL with a host"
            )
        return cls(
            # The hub user who owns this workspace; the only user let through by default.
            owner=owner,
            # "" for the default server, else the named server (used in activity reports).
            server_name=env.get("JUPYTERHUB_SERVER_NAME", ""),
            # URL path the hub's proxy routes to us, e.g. /user/alice/.
            prefix=prefix,
            # ttyd: unix:/run/devplane/ttyd.sock (the pod) or 127.0.0.1:PORT (benchmarks).
            upstream=Upstream.parse(env.get("DEVPLANE_UPSTREAM", "unix:/run/devplane/ttyd.sock")),
            listen_ip=env.get("DEVPLANE_PROXY_IP", "0.0.0.0"),
            listen_port=int(env.get("DEVPLANE_PROXY_PORT", PROXY_PORT)),
            # Hub endpoint for activity reports, authenticated with the server's API token.
            activity_url=env.get("JUPYTERHUB_ACTIVITY_URL", ""),
            api_token=env.get("JUPYTERHUB_API_TOKEN", ""),
            # Written by the workspace container's watcher: epoch seconds of the latest tmux
            # pane output (so an agent working with no browser attached still counts).
            activity_file=env.get("DEVPLANE_ACTIVITY_FILE", ""),
            # At most one activity report per this many seconds (the culler works in minutes).
            activity_interval=env_seconds(env, "DEVPLANE_ACTIVITY_INTERVAL", 60.0),
            # An identity the hub confirmed is trusted this long: page loads and new terminals
            # use a cached check at most this old, and every open terminal is re-checked this
            # often and closed when the hub no longer confirms it (logout, revoked token).
            # One hub request per open terminal per interval; 30 s keeps revocation < 1 min.
            identity_max_age=env_seconds(env, "DEVPLANE_IDENTITY_MAX_AGE", IDENTITY_MAX_AGE),
            # Let users other than the owner in when the hub granted them access to this
            # server (admins with the hub's admin_access, or users it was shared with); the
            # pod's own setting wins over the hub's.
            allow_admin_access=env_bool(env, "DEVPLANE_ALLOW_ADMIN_ACCESS", hub_admin_access),
            # The hub's cookie options (SameSite), and the Secure flag when the hub is served
            # over TLS: the proxy's login cookie is as strict as the hub's own.
            cookie_options=cookie_options(
                env,
                hub_host.startswith("https:") or env_bool(env, "DEVPLANE_SECURE_COOKIES", False),
            ),
            # The server's public URL (the hub's public_url or the user's subdomain): when the
            # hub says it, a WebSocket's Origin must be exactly its scheme, host and port;
            # otherwise the origin the request itself came to (origin.request_origin).
            public_origin=public_origin,
            # The LLM gateway's configuration file (llm/config.py); empty: no gateway.
            llm_gateway_config=env.get("DEVPLANE_LLM_GATEWAY_CONFIG", ""),
            # Where the gateway listens, on 127.0.0.1 only: the pod's own containers.
            llm_gateway_port=env_port(env, "DEVPLANE_LLM_GATEWAY_PORT", LLM_GATEWAY_PORT),
            # Prometheus metrics on all addresses (the pod's NetworkPolicy says who may
            # scrape); 0: none.
            metrics_port=env_port(env, "DEVPLANE_METRICS_PORT", 0, zero_ok=True),
        )
