"""Reading hub_config/jupyterhub_config.py's settings: typed env vars and OIDC discovery.

Kept out of the config file so it can be unit-tested and so every setting is parsed the same
way (a typo'd boolean is an error at start-up, not a silently disabled feature).
docs/hub-config.md lists every variable.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from traitlets.config import Config

from devplane_api import envparse


class HubSettingsError(ValueError):
    """A hub setting is wrong; the message names the variable and the fix."""


def env_str(name: str, default: str = "", env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get(name, default).strip()


def env_bool(name: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    """Unset or empty means ``default``; anything else must be a boolean word."""
    try:
        return envparse.env_bool(os.environ if env is None else env, name, default)
    except ValueError as e:
        raise HubSettingsError(str(e)) from None


_Number = TypeVar("_Number", int, float)


def _env_number(
    name: str,
    default: _Number,
    parse: Callable[[str], _Number],
    what: str,
    env: Mapping[str, str] | None,
) -> _Number:
    env = os.environ if env is None else env
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise HubSettingsError(f"{name}={raw!r}: must be {what}") from None


def env_int(name: str, default: int, env: Mapping[str, str] | None = None) -> int:
    return _env_number(name, default, int, "a whole number", env)


def env_float(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    return _env_number(name, default, float, "a number", env)


def env_list(name: str, env: Mapping[str, str] | None = None) -> list[str]:
    """Comma-separated values, blanks dropped: ``"a, b,"`` -> ``["a", "b"]``."""
    return [part.strip() for part in env_str(name, env=env).split(",") if part.strip()]


def secret_value(name: str, env: Mapping[str, str] | None = None) -> str:
    """``NAME`` itself, or the content of the file named by ``NAME_FILE`` (a mounted Secret)."""
    env = os.environ if env is None else env
    path = env_str(f"{name}_FILE", env=env)
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as e:
            raise HubSettingsError(f"{name}_FILE={path!r} cannot be read: {e}") from None
    return env_str(name, env=env)


def load_profiles(env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Profiles from DEVPLANE_PROFILES (JSON) or DEVPLANE_PROFILES_FILE (YAML or JSON)."""
    inline = env_str("DEVPLANE_PROFILES", env=env)
    path = env_str("DEVPLANE_PROFILES_FILE", env=env)
    if inline and path:
        raise HubSettingsError("set DEVPLANE_PROFILES or DEVPLANE_PROFILES_FILE, not both")
    try:
        if inline:
            data = json.loads(inline)
            source = "DEVPLANE_PROFILES"
        elif path:
            data = yaml.safe_load(Path(path).read_text())
            source = f"DEVPLANE_PROFILES_FILE={path}"
        else:
            return []
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise HubSettingsError(f"profiles cannot be read: {e}") from None
    if isinstance(data, Mapping) and "profiles" in data:
        data = data["profiles"]  # a file may wrap the list as {"profiles": [...]}
    if not isinstance(data, list):
        raise HubSettingsError(f"{source} must be a list of profiles")
    return data


def load_json(name: str, default: Any, env: Mapping[str, str] | None = None) -> Any:
    raw = env_str(name, env=env)
    if not raw:
        return default
    try:
        return json.loads(raw)
    except ValueError as e:
        raise HubSettingsError(f"{name} is not valid JSON: {e}") from None


def discover_oidc(
    issuer: str, ca_file: str = "", verify: bool = True, timeout: float = 60
) -> dict[str, Any]:
    """The issuer's /.well-known/openid-configuration, fetched once at hub start-up.

    Retries until ``timeout`` because the identity provider may be starting at the same time
    as the hub (the demo, a fresh cluster); after that the hub refuses to start with the reason.
    """
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    context = ssl.create_default_context(cafile=ca_file or None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10, context=context) as response:
                document = json.load(response)
            break
        except (OSError, ValueError) as e:
            if time.monotonic() > deadline:
                raise HubSettingsError(
                    f"OIDC discovery at {url} failed for {timeout:.0f}s: {e}. Check "
                    "DEVPLANE_OIDC_ISSUER, or set the endpoints explicitly "
                    "(DEVPLANE_OIDC_AUTHORIZE_URL, _TOKEN_URL, _USERINFO_URL)"
                ) from None
            time.sleep(1)
    if document.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise HubSettingsError(
            f"the discovery document at {url} names issuer {document.get('issuer')!r}, "
            f"not {issuer!r}; set DEVPLANE_OIDC_ISSUER to exactly the issuer it reports"
        )
    return document


def oidc_endpoints(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """authorize/token/userinfo URLs: explicit variables win, else discovery on the issuer."""
    explicit = {
        "authorize_url": env_str("DEVPLANE_OIDC_AUTHORIZE_URL", env=env),
        "token_url": env_str("DEVPLANE_OIDC_TOKEN_URL", env=env),
        "userdata_url": env_str("DEVPLANE_OIDC_USERINFO_URL", env=env),
        "logout_redirect_url": env_str("DEVPLANE_OIDC_LOGOUT_URL", env=env),
    }
    required = ("authorize_url", "token_url", "userdata_url")
    if all(explicit[k] for k in required):
        return explicit
    issuer = env_str("DEVPLANE_OIDC_ISSUER", env=env)
    if not issuer:
        raise HubSettingsError(
            "set DEVPLANE_OIDC_ISSUER (discovery) or all of DEVPLANE_OIDC_AUTHORIZE_URL, "
            "DEVPLANE_OIDC_TOKEN_URL and DEVPLANE_OIDC_USERINFO_URL"
        )
    document = discover_oidc(
        issuer,
        ca_file=env_str("DEVPLANE_OIDC_CA_FILE", env=env),
        verify=env_bool("DEVPLANE_OIDC_TLS_VERIFY", True, env=env),
        timeout=env_int("DEVPLANE_OIDC_DISCOVERY_TIMEOUT", 60, env=env),
    )
    found = {
        "authorize_url": document.get("authorization_endpoint", ""),
        "token_url": document.get("token_endpoint", ""),
        "userdata_url": document.get("userinfo_endpoint", ""),
        "logout_redirect_url": "",
    }
    missing = [k for k in required if not (explicit[k] or found[k])]
    if missing:
        raise HubSettingsError(f"the issuer's discovery document lacks {', '.join(missing)}")
    return {k: explicit[k] or found[k] for k in explicit}


_CLASS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def traitlets_config(path: str) -> Config:
    """The chart's ``hub.config`` (a JSON file): ``{"<Class>": {"<trait>": value}}``, as
    Zero to JupyterHub's hub.config, merged into the hub's configuration before extraConfig."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise HubSettingsError(f"DEVPLANE_HUB_CONFIG_FILE={path} cannot be read: {e}") from None
    if not isinstance(data, dict):
        raise HubSettingsError(
            f"DEVPLANE_HUB_CONFIG_FILE={path} must hold a mapping of class names to settings, "
            'e.g. {"DevPlaneSpawner": {"start_timeout": 600}}'
        )
    for name, traits in data.items():
        if not _CLASS_NAME.fullmatch(name) or not isinstance(traits, dict):
            raise HubSettingsError(
                f"hub.config: {name!r} must be a configurable class name (e.g. JupyterHub, "
                "DevPlaneSpawner) whose value is a mapping of its settings"
            )
    return Config(data)
