"""Operator settings: DEVPLANE_* environment variables, overridden by command-line flags.

Everything is validated once, at start-up. A bad value stops the operator with a message that
names the setting (both its env var and its flag), says what is wrong and how to fix it —
an operator that starts with a typo in its egress allowlist would quietly build wrong
NetworkPolicies for every workspace. docs/operator.md lists every setting.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .quantity import QuantityError, parse_quantity

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_IMAGE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._:/@-]*$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?"  # optional DNS prefix
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


class SettingsError(ValueError):
    """A setting is wrong. ``str()`` names the setting, the problem and the fix."""

    def __init__(self, setting: Setting, problem: str, fix: str) -> None:
        self.setting = setting
        super().__init__(f"invalid setting {setting.env} (--{setting.flag}): {problem}. {fix}")


@dataclass(frozen=True)
class Setting:
    """One operator setting: where it comes from and how to read it."""

    attr: str
    env: str
    flag: str
    default: str
    help: str


@dataclass(frozen=True)
class EgressRule:
    """One admin-allowlisted egress destination: a CIDR and optional ports."""

    cidr: str
    ports: tuple[int, ...] = ()
    protocol: str = "TCP"


@dataclass(frozen=True)
class Settings:
    """Validated operator settings (see docs/operator.md for each)."""

    namespaces: tuple[str, ...]  # () means every namespace
    workspace_image: str = "devplane/workspace:0.1.0"
    authproxy_image: str = "devplane/hub:0.1.0"
    image_pull_policy: str = "IfNotPresent"
    workspace_resources: dict[str, dict[str, str]] = field(default_factory=dict)
    authproxy_resources: dict[str, dict[str, str]] = field(default_factory=dict)
    storage_class: str = ""
    storage_size: str = "10Gi"
    llm_providers: tuple[dict[str, Any], ...] = ()
    llm_default_model: str = ""
    egress_allowlist: tuple[EgressRule, ...] = ()
    ca_bundle_configmap: str = ""
    ca_bundle_key: str = "ca.crt"
    pip_index_url: str = ""
    pip_trusted_host: str = ""
    npm_registry: str = ""
    hub_namespace: str = ""  # "" = the workspace's own namespace
    hub_selector: dict[str, str] = field(default_factory=dict)
    proxy_selector: dict[str, str] = field(default_factory=dict)
    hub_api_port: int = 8081
    dns_namespace: str = "kube-system"
    dns_selector: dict[str, str] = field(default_factory=dict)
    resync_seconds: float = 300.0
    stuck_after_seconds: float = 120.0
    workers: int = 8
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 8080
    leader_election: bool = True
    leader_election_namespace: str = ""
    leader_election_name: str = "devplane-operator"
    lease_seconds: float = 15.0
    identity: str = ""
    log_level: str = "INFO"

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


SETTINGS: tuple[Setting, ...] = (
    Setting("namespaces", "DEVPLANE_NAMESPACES", "namespaces", "",
            "Comma-separated namespaces to watch, or * for all namespaces (required)."),
    Setting("workspace_image", "DEVPLANE_WORKSPACE_IMAGE", "workspace-image",
            "devplane/workspace:0.1.0", "Default workspace image (a Workspace may override it)."),
    Setting("authproxy_image", "DEVPLANE_AUTHPROXY_IMAGE", "authproxy-image",
            "devplane/hub:0.1.0", "Image of the auth proxy container (the hub image)."),
    Setting("image_pull_policy", "DEVPLANE_IMAGE_PULL_POLICY", "image-pull-policy",
            "IfNotPresent", "imagePullPolicy of both containers: Always, IfNotPresent or Never."),
    Setting("workspace_resources", "DEVPLANE_WORKSPACE_RESOURCES", "workspace-resources",
            '{"requests": {"cpu": "250m", "memory": "512Mi"}, '
            '"limits": {"cpu": "2", "memory": "4Gi"}}',
            "Default requests/limits of the workspace container, as JSON."),
    Setting("authproxy_resources", "DEVPLANE_AUTHPROXY_RESOURCES", "authproxy-resources",
            '{"requests": {"cpu": "20m", "memory": "96Mi"}, '
            '"limits": {"cpu": "500m", "memory": "256Mi"}}',
            "Requests/limits of the auth proxy container, as JSON."),
    Setting("storage_class", "DEVPLANE_STORAGE_CLASS", "storage-class", "",
            "StorageClass of new home volumes; empty means the cluster default."),
    Setting("storage_size", "DEVPLANE_STORAGE_SIZE", "storage-size", "10Gi",
            "Size of a new home volume when the Workspace does not say."),
    Setting("llm_providers", "DEVPLANE_LLM_PROVIDERS", "llm-providers", "[]",
            "JSON list of LLM providers ({name, baseURL, models, apiKeySecretRef?}) used when "
            "a Workspace has no spec.ai."),
    Setting("llm_default_model", "DEVPLANE_LLM_DEFAULT_MODEL", "llm-default-model", "",
            "Default model for DEVPLANE_LLM_PROVIDERS."),
    Setting("egress_allowlist", "DEVPLANE_EGRESS_ALLOWLIST", "egress-allowlist", "",
            "Extra egress destinations: comma-separated CIDR[:port[/TCP|UDP]], e.g. "
            "10.1.0.0/16:443,10.2.3.4/32:3128."),
    Setting("ca_bundle_configmap", "DEVPLANE_CA_BUNDLE_CONFIGMAP", "ca-bundle-configmap", "",
            "ConfigMap (in each workspace namespace) with a PEM CA bundle to trust."),
    Setting("ca_bundle_key", "DEVPLANE_CA_BUNDLE_KEY", "ca-bundle-key", "ca.crt",
            "Key of the CA bundle in that ConfigMap."),
    Setting("pip_index_url", "DEVPLANE_PIP_INDEX_URL", "pip-index-url", "",
            "PIP_INDEX_URL for workspaces (an internal package mirror)."),
    Setting("pip_trusted_host", "DEVPLANE_PIP_TRUSTED_HOST", "pip-trusted-host", "",
            "PIP_TRUSTED_HOST for workspaces."),
    Setting("npm_registry", "DEVPLANE_NPM_REGISTRY", "npm-registry", "",
            "npm_config_registry for workspaces (an internal npm mirror)."),
    Setting("hub_namespace", "DEVPLANE_HUB_NAMESPACE", "hub-namespace", "",
            "Namespace of the hub and proxy pods; empty means the workspace's namespace."),
    Setting("hub_selector", "DEVPLANE_HUB_SELECTOR", "hub-selector",
            "app.kubernetes.io/name=devplane,app.kubernetes.io/component=hub",
            "Labels (k=v,...) of the hub pods: they may reach the workspace and be reached."),
    Setting("proxy_selector", "DEVPLANE_PROXY_SELECTOR", "proxy-selector",
            "app.kubernetes.io/name=devplane,app.kubernetes.io/component=proxy",
            "Labels (k=v,...) of the configurable-http-proxy pods allowed to reach workspaces."),
    Setting("hub_api_port", "DEVPLANE_HUB_API_PORT", "hub-api-port", "8081",
            "Port of the hub API that workspaces may reach."),
    Setting("dns_namespace", "DEVPLANE_DNS_NAMESPACE", "dns-namespace", "kube-system",
            "Namespace of the cluster DNS pods."),
    Setting("dns_selector", "DEVPLANE_DNS_SELECTOR", "dns-selector", "k8s-app=kube-dns",
            "Labels (k=v,...) of the cluster DNS pods."),
    Setting("resync_seconds", "DEVPLANE_RESYNC_SECONDS", "resync-seconds", "300",
            "Seconds between full resyncs of every Workspace (>= 1)."),
    Setting("stuck_after_seconds", "DEVPLANE_STUCK_AFTER_SECONDS", "stuck-after-seconds", "120",
            "Seconds a home volume may stay unbound before it is reported as VolumePending."),
    Setting("workers", "DEVPLANE_WORKERS", "workers", "8",
            "Concurrent reconciles (1-256)."),
    Setting("metrics_host", "DEVPLANE_METRICS_HOST", "metrics-host", "0.0.0.0",
            "Address of the /metrics, /healthz and /readyz endpoint."),
    Setting("metrics_port", "DEVPLANE_METRICS_PORT", "metrics-port", "8080",
            "Port of the /metrics, /healthz and /readyz endpoint (0 disables it)."),
    Setting("leader_election", "DEVPLANE_LEADER_ELECTION", "leader-election", "true",
            "Lease-based leader election (true/false); keep it on when running 2+ replicas."),
    Setting("leader_election_namespace", "DEVPLANE_LEADER_ELECTION_NAMESPACE",
            "leader-election-namespace", "",
            "Namespace of the Lease; empty means POD_NAMESPACE, else the first watched one."),
    Setting("leader_election_name", "DEVPLANE_LEADER_ELECTION_NAME", "leader-election-name",
            "devplane-operator", "Name of the Lease."),
    Setting("lease_seconds", "DEVPLANE_LEASE_SECONDS", "lease-seconds", "15",
            "Lease duration; a dead leader is replaced after at most this long (>= 3)."),
    Setting("identity", "DEVPLANE_IDENTITY", "identity", "",
            "This replica's name in the Lease; empty means POD_NAME or the host name + pid."),
    Setting("log_level", "DEVPLANE_LOG_LEVEL", "log-level", "INFO",
            "DEBUG, INFO, WARNING or ERROR."),
)  # fmt: skip
_BY_ATTR = {s.attr: s for s in SETTINGS}


# ------------------------------------------------------------------ parsers (one per kind)


def _labels(setting: Setting, raw: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(value):
            raise SettingsError(
                setting, f"{part!r} is not a label key=value pair",
                "Write labels as key=value pairs separated by commas, e.g. app=hub,tier=web.",
            )  # fmt: skip
        result[key] = value
    return result


def _number(setting: Setting, raw: str, low: float, high: float, integer: bool) -> float:
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise SettingsError(setting, f"{raw!r} is not {kind}", f"Set it to {kind}.") from None
    if not low <= value <= high:
        raise SettingsError(
            setting, f"{value} is out of range", f"Use a value from {low:g} to {high:g}."
        )
    return value


def _image(setting: Setting, raw: str) -> str:
    if not _IMAGE.fullmatch(raw):
        raise SettingsError(
            setting, f"{raw!r} is not an image reference",
            "Use registry/repository:tag (no spaces), e.g. registry.example/devplane/ws:1.0.",
        )  # fmt: skip
    return raw


def _quantity(setting: Setting, raw: str, what: str) -> str:
    try:
        parse_quantity(raw)
    except QuantityError:
        raise SettingsError(
            setting, f"{what} {raw!r} is not a Kubernetes quantity",
            "Use a quantity such as 500m, 2, 512Mi or 10Gi.",
        ) from None  # fmt: skip
    return raw


def _resources(setting: Setting, raw: str) -> dict[str, dict[str, str]]:
    fix = 'Use JSON like {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {...}}.'
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise SettingsError(setting, f"not valid JSON ({err})", fix) from None
    if not isinstance(value, dict) or set(value) - {"requests", "limits"}:
        raise SettingsError(setting, "only 'requests' and 'limits' are allowed", fix)
    result: dict[str, dict[str, str]] = {}
    for part in ("requests", "limits"):
        entries = value.get(part) or {}
        if not isinstance(entries, dict):
            raise SettingsError(setting, f"{part} must be an object", fix)
        for resource, quantity in entries.items():
            if resource not in ("cpu", "memory", "ephemeral-storage"):
                raise SettingsError(setting, f"unknown resource {resource!r} in {part}", fix)
            _quantity(setting, str(quantity), f"{part}.{resource}")
        result[part] = {k: str(v) for k, v in entries.items()}
    limits = result.get("limits", {})
    if "cpu" not in limits or "memory" not in limits:
        raise SettingsError(
            setting, "limits.cpu and limits.memory are required",
            "Pods must have CPU and memory limits (DESIGN.md security model); add both.",
        )  # fmt: skip
    for resource, request in result.get("requests", {}).items():
        if resource in limits and parse_quantity(request) > parse_quantity(limits[resource]):
            raise SettingsError(
                setting, f"requests.{resource} {request} is above limits.{resource}",
                "Make every request at most its limit.",
            )  # fmt: skip
    return result


def validate_provider(provider: Any, where: str) -> str | None:
    """Problem with one LLM provider entry (same shape as spec.ai.providers[]), or None."""
    if not isinstance(provider, dict):
        return f"{where} must be an object"
    name = provider.get("name")
    if not isinstance(name, str) or not _DNS_LABEL.fullmatch(name):
        return f"{where}.name must be a lower-case DNS label"
    url = provider.get("baseURL")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{where}.baseURL must be an http:// or https:// URL with a host"
    models = provider.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        return f"{where}.models must be a non-empty list of model names"
    ref = provider.get("apiKeySecretRef")
    if ref is not None and not (isinstance(ref, dict) and ref.get("name") and ref.get("key")):
        return f"{where}.apiKeySecretRef must have a name and a key"
    return None


def _providers(setting: Setting, raw: str) -> tuple[dict[str, Any], ...]:
    fix = (
        'Use a JSON list like [{"name": "vllm", "baseURL": "http://vllm.llm.svc:8000/v1", '
        '"models": ["qwen"]}].'
    )
    try:
        value = json.loads(raw or "[]")
    except json.JSONDecodeError as err:
        raise SettingsError(setting, f"not valid JSON ({err})", fix) from None
    if not isinstance(value, list):
        raise SettingsError(setting, "must be a JSON list", fix)
    for index, provider in enumerate(value):
        problem = validate_provider(provider, f"[{index}]")
        if problem:
            raise SettingsError(setting, problem, fix)
    names = [p["name"] for p in value]
    if len(set(names)) != len(names):
        raise SettingsError(setting, "provider names are not unique", "Give each a unique name.")
    return tuple(value)


def _egress(setting: Setting, raw: str) -> tuple[EgressRule, ...]:
    rules = []
    for part in filter(None, (p.strip() for p in raw.split(","))):
        cidr, _, rest = part.partition(":")
        port_text, _, protocol = rest.partition("/")
        protocol = protocol.upper() or "TCP"
        fix = "Write each entry as CIDR[:port[/TCP|UDP]], e.g. 10.0.0.0/8:443 or 10.1.2.3/32."
        try:
            network = ipaddress.ip_network(cidr, strict=True)
        except ValueError as err:
            raise SettingsError(setting, f"{cidr!r} is not a CIDR ({err})", fix) from None
        ports: tuple[int, ...] = ()
        if port_text:
            if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
                raise SettingsError(setting, f"{port_text!r} in {part!r} is not a port", fix)
            ports = (int(port_text),)
        if protocol not in ("TCP", "UDP", "SCTP"):
            raise SettingsError(setting, f"protocol {protocol!r} in {part!r} is unknown", fix)
        rules.append(EgressRule(str(network), ports, protocol))
    return tuple(rules)


def _bool(setting: Setting, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise SettingsError(setting, f"{raw!r} is not a boolean", "Use true or false.")


def _choice(setting: Setting, raw: str, choices: Sequence[str]) -> str:
    if raw not in choices:
        raise SettingsError(setting, f"{raw!r} is not allowed", f"Use one of {', '.join(choices)}.")
    return raw


def _namespaces(setting: Setting, raw: str) -> tuple[str, ...]:
    raw = raw.strip()
    if not raw:
        raise SettingsError(
            setting, "no namespace to watch",
            "Set it to the workspace namespace(s), comma-separated, or * for all namespaces.",
        )  # fmt: skip
    if raw == "*":
        return ()
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    for name in names:
        if not _DNS_LABEL.fullmatch(name):
            raise SettingsError(
                setting, f"{name!r} is not a namespace name",
                "Namespaces are lower-case DNS labels, separated by commas (or * for all).",
            )  # fmt: skip
    return names


def _name(setting: Setting, raw: str, allow_empty: bool = True) -> str:
    if (raw or not allow_empty) and not _DNS_SUBDOMAIN.fullmatch(raw):
        raise SettingsError(
            setting, f"{raw!r} is not a valid object name",
            "Use a lower-case DNS name (letters, digits, '-' and '.').",
        )  # fmt: skip
    return raw


def _url(setting: Setting, raw: str) -> str:
    parts = urlsplit(raw)
    if raw and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise SettingsError(setting, f"{raw!r} is not an http(s) URL", "Use http(s)://host/path.")
    return raw


def _parsers() -> dict[str, Callable[[Setting, str], Any]]:
    return {
        "namespaces": _namespaces,
        "workspace_image": _image,
        "authproxy_image": _image,
        "image_pull_policy": lambda s, r: _choice(s, r, ("Always", "IfNotPresent", "Never")),
        "workspace_resources": _resources,
        "authproxy_resources": _resources,
        "storage_class": _name,
        "storage_size": lambda s, r: _quantity(s, r, "size"),
        "llm_providers": _providers,
        "llm_default_model": lambda s, r: r.strip(),
        "egress_allowlist": _egress,
        "ca_bundle_configmap": _name,
        "ca_bundle_key": lambda s, r: r or "ca.crt",
        "pip_index_url": _url,
        "pip_trusted_host": lambda s, r: r.strip(),
        "npm_registry": _url,
        "hub_namespace": _name,
        "hub_selector": _labels,
        "proxy_selector": _labels,
        "hub_api_port": lambda s, r: int(_number(s, r, 1, 65535, True)),
        "dns_namespace": lambda s, r: _name(s, r, allow_empty=False),
        "dns_selector": _labels,
        "resync_seconds": lambda s, r: _number(s, r, 1, 86400, False),
        "stuck_after_seconds": lambda s, r: _number(s, r, 1, 86400, False),
        "workers": lambda s, r: int(_number(s, r, 1, 256, True)),
        "metrics_host": lambda s, r: r.strip() or "0.0.0.0",
        "metrics_port": lambda s, r: int(_number(s, r, 0, 65535, True)),
        "leader_election": _bool,
        "leader_election_namespace": _name,
        "leader_election_name": lambda s, r: _name(s, r, allow_empty=False),
        "lease_seconds": lambda s, r: _number(s, r, 3, 3600, False),
        "identity": lambda s, r: r.strip(),
        "log_level": lambda s, r: _choice(s, r.upper(), ("DEBUG", "INFO", "WARNING", "ERROR")),
    }


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devplane-operator",
        description="DevPlane operator. Every flag can also be set by its DEVPLANE_* variable.",
    )
    for setting in SETTINGS:
        parser.add_argument(
            f"--{setting.flag}",
            dest=setting.attr,
            default=None,
            help=f"{setting.help} [env {setting.env}; default {setting.default!r}]",
        )
    return parser


def load_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, parse and cross-check every setting; raise SettingsError on the first bad one."""
    environ = os.environ if environ is None else environ
    args = argument_parser().parse_args(list(argv or []))
    parsers = _parsers()
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        flag_value = getattr(args, setting.attr)
        raw = flag_value if flag_value is not None else environ.get(setting.env, setting.default)
        values[setting.attr] = parsers[setting.attr](setting, raw)

    if values["llm_default_model"] and values["llm_providers"]:
        model = values["llm_default_model"]
        offered = {m for p in values["llm_providers"] for m in p["models"]}
        offered |= {f"{p['name']}/{m}" for p in values["llm_providers"] for m in p["models"]}
        if model not in offered:
            raise SettingsError(
                _BY_ATTR["llm_default_model"], f"{model!r} is not offered by any provider",
                "Use one of the models listed in DEVPLANE_LLM_PROVIDERS.",
            )  # fmt: skip
    if not values["identity"]:
        values["identity"] = environ.get("POD_NAME") or f"{os.uname().nodename}-{os.getpid()}"
    if not values["leader_election_namespace"]:
        values["leader_election_namespace"] = environ.get("POD_NAMESPACE") or (
            values["namespaces"][0] if values["namespaces"] else ""
        )
    if values["leader_election"] and not values["leader_election_namespace"]:
        raise SettingsError(
            _BY_ATTR["leader_election_namespace"], "no namespace for the leader-election Lease",
            "Set it (or POD_NAMESPACE) when watching all namespaces, or disable leader election.",
        )  # fmt: skip
    return Settings(**values)
