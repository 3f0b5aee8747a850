"""What the gateway allows, from the JSON file the operator writes
(``DEVPLANE_LLM_GATEWAY_CONFIG``).

The file is a key of the workspace's ConfigMap, mounted in the auth proxy's container only. The
kubelet replaces it when the ConfigMap changes, and ``ConfigFile`` reads it again when its
modification time changes, so a new allow-list or limit reaches a running workspace within the
kubelet's sync period (about a minute), without restarting it. A file that does not parse keeps
the last good configuration in force, and says why in the log.

Shape (``version`` 1)::

    {"version": 1,
     "providers": [{"name": "vllm", "baseURL": "http://vllm.llm.svc:8000/v1",
                    "models": ["qwen-coder"], "apiKeyEnv": "DEVPLANE_LLM_API_KEY_VLLM"}],
     "limits": {"requestsPerMinute": 60, "tokensPerMinute": 200000}}

``apiKeyEnv`` names the variable of *this* container that holds the provider's key (from its
Secret); ``models`` is the allow-list; a limit that is absent or 0 is no limit.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("devplane.authproxy.llm")

VERSION = 1


class ConfigError(ValueError):
    """The gateway's configuration is wrong; the message says where."""


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str
    models: tuple[str, ...]
    api_key_env: str = ""

    def api_key(self) -> str:
        # A Secret made from a file usually ends in a newline, which no header may carry.
        return os.environ.get(self.api_key_env, "").strip() if self.api_key_env else ""


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int = 0
    tokens_per_minute: int = 0


@dataclass(frozen=True)
class GatewayConfig:
    providers: dict[str, Provider] = field(default_factory=dict)
    limits: Limits = Limits()

    @classmethod
    def parse(cls, data: Any) -> GatewayConfig:
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise ConfigError(f"the gateway configuration must be an object with version {VERSION}")
        raw = data.get("providers")
        if not isinstance(raw, list) or not raw:
            raise ConfigError("providers must be a non-empty list")
        providers: dict[str, Provider] = {}
        for i, entry in enumerate(raw):
            provider = _provider(entry, f"providers[{i}]")
            if provider.name in providers:
                raise ConfigError(f"providers[{i}].name {provider.name!r} appears twice")
            providers[provider.name] = provider
        return cls(providers, _limits(data.get("limits") or {}))


def _provider(entry: Any, where: str) -> Provider:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object")
    name, url, models = entry.get("name"), entry.get("baseURL"), entry.get("models")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name must be a non-empty string")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}.baseURL must be an http(s) URL with a host")
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise ConfigError(f"{where}.models must be a non-empty list of model names")
    key_env = entry.get("apiKeyEnv", "")
    if not isinstance(key_env, str):
        raise ConfigError(f"{where}.apiKeyEnv must be a variable name")
    return Provider(name, str(url).rstrip("/"), tuple(models), key_env)


def _limits(raw: Any) -> Limits:
    if not isinstance(raw, dict):
        raise ConfigError("limits must be an object")
    values = {}
    for key, attr in (("requestsPerMinute", "requests_per_minute"),
                      ("tokensPerMinute", "tokens_per_minute")):  # fmt: skip
        value = raw.get(key, 0)
        if type(value) is not int or value < 0:
            raise ConfigError(f"limits.{key} must be a whole number >= 0 (0: no limit)")
        values[attr] = value
    return Limits(**values)


class ConfigFile:
    """The configuration in ``path``, read again whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._config = GatewayConfig()
        self.current()  # a missing or broken file at start is reported at once

    def current(self) -> GatewayConfig:
        try:
            stat = self.path.stat()
        except OSError as err:
            if self._stamp is not None or not self._config.providers:
                log.error("LLM gateway configuration %s unreadable: %s", self.path, err)
            return self._config
        # The kubelet swaps a symlink; the inode and the time tell a new file apart.
        stamp = (stat.st_ino, stat.st_mtime_ns)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._config = GatewayConfig.parse(json.loads(self.path.read_text()))
                log.info("LLM gateway configuration loaded: providers %s, limits %s",
                         ", ".join(self._config.providers), self._config.limits)  # fmt: skip
            except (OSError, ValueError) as err:
                log.error("LLM gateway configuration %s refused, the previous one stays: %s",
                          self.path, err)  # fmt: skip
        return self._config
