"""The hub's security settings, computed from its environment: URLs and cookies.

Kept out of hub_config/jupyterhub_config.py so each rule is a pure function with a test, and
so a setting that would weaken the hub is refused at start-up with the fix in the message
(docs/hub-config.md, "Security settings"; docs/architecture.md, "Threat model").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .hubsettings import HubSettingsError, env_str

DEFAULT_BIND_URL = "http://0.0.0.0:8000"


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return not host


def public_url(env: Mapping[str, str] | None = None) -> str:
    """DEVPLANE_PUBLIC_URL, the URL users open ("" when unknown), checked.

    JupyterHub takes the scheme of its cookies from it (Secure when https) instead of from a
    request's X-Forwarded-Proto, which whatever stands in front of the proxy may not set.
    """
    url = env_str("DEVPLANE_PUBLIC_URL", env=env)
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HubSettingsError(
            f"DEVPLANE_PUBLIC_URL={url!r} must be the http(s) URL users open, "
            "e.g. https://devplane.example.com/"
        )
    if _is_wildcard(parts.hostname):
        raise HubSettingsError(
            f"DEVPLANE_PUBLIC_URL={url!r} is a listening address, not the URL users open: "
            "set DEVPLANE_BIND_URL to it, and DEVPLANE_PUBLIC_URL to the URL in the browser"
        )
    return url


def bind_url(public: str, env: Mapping[str, str] | None = None) -> str:
    """Where the proxy listens: DEVPLANE_BIND_URL, else the public URL, else all addresses."""
    return env_str("DEVPLANE_BIND_URL", env=env) or public or DEFAULT_BIND_URL


def cookie_options(public: str) -> dict[str, Any]:
    """Options of every cookie the hub sets, and of the servers' (JUPYTERHUB_COOKIE_OPTIONS).

    SameSite=Lax: a cookie is not sent with another site's sub-requests or form posts, yet a
    top-level navigation back from the identity provider still carries the OAuth state
    (Strict would break that). Secure whenever the public URL is https.
    """
    options: dict[str, Any] = {"samesite": "Lax"}
    if urlsplit(public).scheme == "https":
        options["secure"] = True
    return options
