"""The hub's security settings, computed from its environment: URLs, cookies, admin access
and auth state.

Kept out of hub_config/jupyterhub_config.py so each rule is a pure function with a test, and
so a setting that would weaken the hub is refused at start-up with the fix in the message
(docs/hub-config.md, "Security settings"; docs/architecture.md, "Threat model").
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .hubsettings import HubSettingsError, env_str, secret_value

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


def in_pod_hub_api_url(hub_bind_url: str, bind_url: str) -> str:
    """The hub API on loopback, for a service the hub runs in its own pod (the idle culler).

    Not the hub's Service: that leads nowhere until the hub's pod is Ready, which is after the
    hub starts its services (the culler died on its first call on a real node), and it would
    send the hub's own traffic out and back through the network policies."""
    port = urlsplit(hub_bind_url).port or 8081
    base = urlsplit(bind_url).path or "/"
    return f"http://127.0.0.1:{port}{base.rstrip('/')}/hub/api"


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


def subdomain_host(admin_access: bool, public: str, env: Mapping[str, str] | None = None) -> str:
    """DEVPLANE_SUBDOMAIN_HOST (each user's server on ``<user>.<host>``), checked; "" if unset.

    Required with admin access: a workspace page is whatever its owner makes it, and an admin
    who opens it on the hub's own origin hands the page the admin's session (a user's
    ``Set-Cookie`` replaced an admin's hub cookie in a review). On a host of its own the page
    is another origin, and the hub's ``__Host-`` cookies (hub_config sets them with an https
    subdomain host) cannot be set from a subdomain either, hence https too.
    """
    url = env_str("DEVPLANE_SUBDOMAIN_HOST", env=env)
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
            raise HubSettingsError(
                f"DEVPLANE_SUBDOMAIN_HOST={url!r} must be a scheme and host without a path, "
                "e.g. https://devplane.example.com (users get <user>.devplane.example.com)"
            )
        # JupyterHub builds the users' hosts from the public URL's host when there is one.
        if public and urlsplit(public).hostname != parts.hostname:
            raise HubSettingsError(
                f"DEVPLANE_SUBDOMAIN_HOST={url!r} must have the host of DEVPLANE_PUBLIC_URL="
                f"{public!r}: users' servers are served on <user>.<that host>"
            )
    if not admin_access:
        return url
    if not url:
        raise HubSettingsError(
            "DEVPLANE_ADMIN_ACCESS=true needs per-user subdomains: an admin who opens a "
            "user's terminal would otherwise run that user's page on the hub's own origin. "
            "Set DEVPLANE_SUBDOMAIN_HOST=https://<host> (wildcard DNS and certificate for "
            "*.<host>), or set DEVPLANE_ADMIN_ACCESS=false"
        )
    if not url.startswith("https://"):
        raise HubSettingsError(
            f"DEVPLANE_SUBDOMAIN_HOST={url!r} must be https with DEVPLANE_ADMIN_ACCESS=true: "
            "only Secure __Host- cookies keep a user's page on <user>.<host> from setting "
            "cookies for the hub"
        )
    return url


def _key_bytes(key: str) -> int:
    """Length in bytes of a hex- or base64-encoded key; 0 if it is neither."""
    try:
        if len(key) == 64:
            return len(bytes.fromhex(key))
        return len(base64.b64decode(key, validate=True))
    except ValueError:  # binascii.Error is one
        return 0


def auth_state_keys(env: Mapping[str, str] | None = None) -> list[str]:
    """DEVPLANE_AUTH_STATE_KEY (or _FILE): the keys that encrypt auth state, newest first.

    Auth state holds each user's identity-provider tokens, which let the hub re-check the user
    with the provider every auth_refresh_age; it is stored encrypted, and there is no auth state
    without a key. ";" separates keys for rotation: the first encrypts, all decrypt.
    """
    raw = secret_value("DEVPLANE_AUTH_STATE_KEY", env=env)
    keys = [key.strip() for key in raw.split(";") if key.strip()]
    if not keys:
        raise HubSettingsError(
            "DEVPLANE_AUTH_STATE_KEY (or DEVPLANE_AUTH_STATE_KEY_FILE) is required: it "
            "encrypts the identity-provider tokens the hub re-checks users with. Generate one "
            "with `openssl rand -hex 32` and keep it (the chart keeps it in a Secret)"
        )
    for number, key in enumerate(keys, 1):
        if _key_bytes(key) != 32:
            raise HubSettingsError(
                f"DEVPLANE_AUTH_STATE_KEY: key {number} is not 32 bytes, hex- or "
                "base64-encoded (`openssl rand -hex 32` makes one)"
            )
    return keys
