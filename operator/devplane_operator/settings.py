"""Operator settings: DEVPLANE_* environment variables, overridden by command-line flags.

Each setting is declared once, as a field of ``Settings``: its type, its default (as the text
an env var would hold), its help and its parser. The env var (``DEVPLANE_<NAME>``), the flag
(``--<name>``), ``devplane-operator --help`` and the table in docs/operator.md are derived from
that declaration (``python -m devplane_operator.settings docs/operator.md`` rewrites the table).

Everything is validated once, at start-up. A bad value stops the operator with a message that
names the setting (both its env var and its flag), says what is wrong and how to fix it —
an operator that starts with a typo in its egress allowlist would quietly build wrong
NetworkPolicies for every workspace.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from devplane_api import naming
from devplane_api.envparse import ACCEPTED, parse_bool
from devplane_api.extras import ExtrasError, check_env, check_pull_secret, check_volume

from .extras import Extras
from .providers import DNS_LABEL, validate_provider
from .quantity import QuantityError, parse_quantity

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_IMAGE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._:/@-]*$")
# A registry host (with an optional port) and optional path, without tag or digest.
_REGISTRY = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]*(:[0-9]+)?(/[a-zA-Z0-9._-]+)*$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?"  # optional DNS prefix
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

T = TypeVar("T")


@dataclass(frozen=True)
class Setting:
    """One operator setting as its ``Settings`` field declares it."""

    attr: str
    default: str  # the text an env var would hold
    help: str  # Markdown; the CLI shows it without the backticks
    parse: Callable[[Setting, str], Any]

    @property
    def env(self) -> str:
        return f"DEVPLANE_{self.attr.upper()}"

    @property
    def flag(self) -> str:
        return self.attr.replace("_", "-")

    @property
    def description(self) -> str:
        """The help, plus the range a number must be in (said once, by its parser)."""
        if isinstance(self.parse, _Number):
            return f"{self.help} {self.parse.range.capitalize()}."
        return self.help


class SettingsError(ValueError):
    """A setting is wrong. ``str()`` names the setting, the problem and the fix."""

    def __init__(self, setting: Setting, problem: str, fix: str) -> None:
        self.setting = setting
        super().__init__(f"invalid setting {setting.env} (--{setting.flag}): {problem}. {fix}")


def _setting(parse: Callable[[Setting, str], T], help: str, default: str = "") -> T:
    """Declare a ``Settings`` field; the parser's result type must be the field's type."""
    return cast(T, field(metadata={"default": default, "help": help, "parse": parse}))


@dataclass(frozen=True)
class EgressRule:
    """One admin-allowlisted egress destination: a CIDR and optional ports."""

    cidr: str
    ports: tuple[int, ...] = ()
    protocol: str = "TCP"


# ------------------------------------------------------------------ parsers (one per kind)


def _text(setting: Setting, raw: str) -> str:
    return raw.strip()


def _text_or_default(setting: Setting, raw: str) -> str:
    return raw.strip() or setting.default


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


@dataclass(frozen=True)
class _Number:
    """A number from ``low`` to ``high``; --help and the docs show the range."""

    low: float
    high: float

    def __call__(self, setting: Setting, raw: str) -> float:
        return self._checked(setting, raw, float, "a number")

    def _checked(self, setting: Setting, raw: str, kind: type[float], what: str) -> float:
        try:
            value = kind(raw)
        except ValueError:
            raise SettingsError(setting, f"{raw!r} is not {what}", f"Set it to {what}.") from None
        if not self.low <= value <= self.high:
            raise SettingsError(setting, f"{value} is out of range", f"Use a value {self.range}.")
        return value

    @property
    def range(self) -> str:
        return f"from {self.low:g} to {self.high:g}"


class _Whole(_Number):
    def __call__(self, setting: Setting, raw: str) -> int:
        return int(self._checked(setting, raw, int, "a whole number"))


def _matching(setting: Setting, raw: str, pattern: re.Pattern[str], what: str, fix: str) -> str:
    if not pattern.fullmatch(raw):
        raise SettingsError(setting, f"{raw!r} is not {what}", fix)
    return raw


def _image(setting: Setting, raw: str) -> str:
    return _matching(
        setting, raw, _IMAGE, "an image reference",
        "Use registry/repository:tag (no spaces), e.g. registry.example/devplane/ws:1.0.",
    )  # fmt: skip


def image_allowed(image: str, registries: Sequence[str]) -> bool:
    """True when ``image`` lies under one of ``registries`` (prefixes such as
    ``registry.example/devplane``): it starts with the prefix and a ``/``, so
    ``registry.example/devplane-tools/x`` and ``registry.example:5000/x`` are not under
    ``registry.example/devplane`` and ``registry.example``."""
    return any(image.startswith(f"{prefix}/") for prefix in registries)


def _registries(setting: Setting, raw: str) -> tuple[str, ...]:
    fix = "List registry prefixes, comma-separated, e.g. registry.example/devplane,reg.example."
    prefixes = tuple(p.strip().rstrip("/") for p in raw.split(",") if p.strip())
    for prefix in prefixes:
        _matching(setting, prefix, _REGISTRY, "a registry prefix", fix)
    return prefixes


def _api_key_secret(setting: Setting, name: str) -> str:
    """An API-key Secret's name: never one of a workspace's own (its hub Secret among them)."""
    if name.startswith(naming.CHILD_PREFIX):
        raise SettingsError(
            setting, f"the API-key Secret {name!r} starts with {naming.CHILD_PREFIX!r}",
            f"Names starting with {naming.CHILD_PREFIX} belong to workspaces' own objects, "
            "their hub Secrets among them; keep API keys in Secrets named otherwise.",
        )  # fmt: skip
    return name


def _secret_names(setting: Setting, raw: str) -> tuple[str, ...]:
    names = (n.strip() for n in raw.split(",") if n.strip())
    return tuple(_api_key_secret(setting, _required_name(setting, n)) for n in names)


def _quantity(setting: Setting, raw: str, what: str) -> str:
    try:
        parse_quantity(raw)
    except QuantityError:
        raise SettingsError(
            setting, f"{what} {raw!r} is not a Kubernetes quantity",
            "Use a quantity such as 500m, 2, 512Mi or 10Gi.",
        ) from None  # fmt: skip
    return raw


def _size(setting: Setting, raw: str) -> str:
    return _quantity(setting, raw, "size")


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
            "Pods must have CPU and memory limits (docs/contracts.md, the workspace pod); "
            "add both.",
        )  # fmt: skip
    for resource, request in result.get("requests", {}).items():
        if resource in limits and parse_quantity(request) > parse_quantity(limits[resource]):
            raise SettingsError(
                setting, f"requests.{resource} {request} is above limits.{resource}",
                "Make every request at most its limit.",
            )  # fmt: skip
    return result


def _json(setting: Setting, raw: str, kind: type, fix: str) -> Any:
    """``raw`` parsed as JSON of ``kind`` (list or dict; empty: an empty one), or the
    SettingsError that says what is wrong and ``fix``."""
    try:
        value = json.loads(raw) if raw.strip() else kind()
    except json.JSONDecodeError as err:
        raise SettingsError(setting, f"not valid JSON ({err})", fix) from None
    if not isinstance(value, kind):
        raise SettingsError(setting, f"must be a JSON {'list' if kind is list else 'object'}", fix)
    return value


def _json_list(
    setting: Setting, raw: str, fix: str, problem: Callable[[Any, str], str | None]
) -> tuple[Any, ...]:
    """``raw`` as a JSON list whose every item ``problem(item, "[index]")`` finds no fault with."""
    value = _json(setting, raw, list, fix)
    for index, item in enumerate(value):
        found = problem(item, f"[{index}]")
        if found:
            raise SettingsError(setting, found, fix)
    return tuple(value)


def _llm_limits(setting: Setting, raw: str) -> dict[str, int]:
    fix = 'Use a JSON object like {"requestsPerMinute": 60, "tokensPerMinute": 200000}.'
    value = _json(setting, raw, dict, fix)
    unknown = sorted(set(value) - {"requestsPerMinute", "tokensPerMinute"})
    if unknown:
        raise SettingsError(setting, f"unknown key(s) {', '.join(unknown)}", fix)
    for key, number in value.items():
        if type(number) is not int or number < 0:
            raise SettingsError(setting, f"{key} must be a whole number >= 0", fix)
    return value


def _providers(setting: Setting, raw: str) -> tuple[dict[str, Any], ...]:
    fix = (
        'Use a JSON list like [{"name": "vllm", "baseURL": "http://vllm.llm.svc:8000/v1", '
        '"models": ["qwen"]}].'
    )
    value = _json_list(setting, raw, fix, validate_provider)
    names = [p["name"] for p in value]
    if len(set(names)) != len(names):
        raise SettingsError(setting, "provider names are not unique", "Give each a unique name.")
    return value


_TOLERATION_FIELDS = {"key", "operator", "value", "effect", "tolerationSeconds"}
_TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


_PEER_FIELDS = frozenset({"podSelector", "namespaceSelector", "ipBlock"})


def _peers(setting: Setting, raw: str) -> tuple[dict[str, Any], ...]:
    fix = (
        'Use a JSON list of NetworkPolicy peers, e.g. [{"namespaceSelector": {"matchLabels": '
        '{"kubernetes.io/metadata.name": "monitoring"}}}].'
    )

    def problem(peer: Any, where: str) -> str | None:
        if not isinstance(peer, dict) or not peer or set(peer) - _PEER_FIELDS:
            return f"{where} is not a peer of podSelector, namespaceSelector, ipBlock"
        return None

    return _json_list(setting, raw, fix, problem)


_AFFINITY_KINDS = frozenset({"nodeAffinity", "podAffinity", "podAntiAffinity"})


def _affinity(setting: Setting, raw: str) -> dict[str, Any]:
    fix = 'Use a Kubernetes affinity as JSON, e.g. {"nodeAffinity": {...}}.'
    value = _json(setting, raw, dict, fix)
    unknown = sorted(set(value) - _AFFINITY_KINDS)
    if unknown or not all(isinstance(v, dict) for v in value.values()):
        raise SettingsError(
            setting, f"has {unknown or 'a value that is not an object'}; an affinity has "
            "nodeAffinity, podAffinity, podAntiAffinity", fix,
        )  # fmt: skip
    return value


def _pull_secrets(setting: Setting, raw: str) -> tuple[str, ...]:
    names = tuple(filter(None, (n.strip() for n in raw.split(","))))
    for name in names:
        try:
            check_pull_secret(name, "")
        except ExtrasError as err:
            raise SettingsError(setting, str(err).lstrip(": "), "List Secret names, a,b.") from None
    return names


def _extra_env(setting: Setting, raw: str) -> dict[str, str]:
    fix = 'Use a JSON object of names to string values, e.g. {"TZ": "Europe/Berlin"}.'
    value = _json(setting, raw, dict, fix)
    for name, text in value.items():
        try:
            check_env(name, text, "")
        except ExtrasError as err:
            raise SettingsError(setting, str(err).lstrip(": "), fix) from None
    return value


def _extra_volumes(setting: Setting, raw: str) -> tuple[dict[str, Any], ...]:
    fix = (
        'Use a JSON list of {"name", "mountPath", "readOnly", and one of "configMap": {"name"}, '
        '"persistentVolumeClaim": {"claimName"}, "emptyDir": {}}.'
    )

    def problem(volume: Any, where: str) -> str | None:
        try:
            check_volume(volume, where)
        except ExtrasError as err:
            return str(err)
        return None

    return _json_list(setting, raw, fix, problem)


_GIT_URL_SCHEMES = ("http", "https", "ssh", "git")


def _git_mirrors(setting: Setting, raw: str) -> tuple[dict[str, str], ...]:
    fix = (
        'Use a JSON list of {"url": <mirror>, "insteadOf": <original prefix>}, e.g. '
        '[{"url": "https://git-mirror.example.internal/github/", "insteadOf": '
        '"https://github.com/"}]: git then fetches from the mirror whatever URL starts with '
        "insteadOf."
    )

    def problem(rule: Any, where: str) -> str | None:
        if not isinstance(rule, dict) or set(rule) != {"url", "insteadOf"}:
            return f"{where} must have exactly the keys url and insteadOf"
        if not all(isinstance(rule[k], str) and rule[k].strip() for k in rule):
            return f"{where}: url and insteadOf must be non-empty strings"
        parts = urlsplit(rule["url"])
        if parts.scheme not in _GIT_URL_SCHEMES or not parts.hostname:
            return f"{where}.url {rule['url']!r} is not a {'/'.join(_GIT_URL_SCHEMES)} URL"
        return None

    return _json_list(setting, raw, fix, problem)


def _tolerations(setting: Setting, raw: str) -> tuple[dict[str, Any], ...]:
    fix = (
        'Use a JSON list of Kubernetes tolerations, e.g. [{"key": "dedicated", "operator": '
        '"Equal", "value": "dev", "effect": "NoSchedule"}].'
    )
    value = _json(setting, raw, list, fix)
    for index, toleration in enumerate(value):
        where = f"[{index}]"
        if not isinstance(toleration, dict):
            raise SettingsError(setting, f"{where} is not an object", fix)
        unknown = sorted(set(toleration) - _TOLERATION_FIELDS)
        if unknown:
            raise SettingsError(setting, f"{where} has unknown fields {unknown}", fix)
        operator = toleration.get("operator", "Equal")
        if operator not in ("Equal", "Exists"):
            raise SettingsError(
                setting, f"{where}.operator {operator!r} is not Equal or Exists", fix
            )
        if operator == "Exists" and toleration.get("value"):
            raise SettingsError(setting, f"{where}: operator Exists takes no value", fix)
        if operator == "Equal" and not toleration.get("key"):
            raise SettingsError(setting, f"{where}: operator Equal needs a key", fix)
        effect = toleration.get("effect", "")
        if effect and effect not in _TOLERATION_EFFECTS:
            raise SettingsError(
                setting, f"{where}.effect {effect!r} is unknown",
                f"Use one of {', '.join(_TOLERATION_EFFECTS)}, or leave it out for all.",
            )  # fmt: skip
        seconds = toleration.get("tolerationSeconds")
        if seconds is not None and (effect != "NoExecute" or not isinstance(seconds, int)):
            raise SettingsError(
                setting, f"{where}.tolerationSeconds needs effect NoExecute and a whole number",
                fix,
            )  # fmt: skip
        for name in ("key", "value"):
            if not isinstance(toleration.get(name, ""), str):
                raise SettingsError(setting, f"{where}.{name} must be a string", fix)
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
    try:
        return parse_bool(raw, name=setting.env)
    except ValueError:
        raise SettingsError(setting, f"{raw!r} is not a boolean", f"Use {ACCEPTED}.") from None


def _choice(*choices: str, upper: bool = False) -> Callable[[Setting, str], str]:
    def parse(setting: Setting, raw: str) -> str:
        value = raw.upper() if upper else raw
        if value not in choices:
            raise SettingsError(
                setting, f"{value!r} is not allowed", f"Use one of {', '.join(choices)}."
            )
        return value

    return parse


def _namespaces(setting: Setting, raw: str) -> tuple[str, ...]:
    raw = raw.strip()
    if not raw:
        raise SettingsError(
            setting, "no namespace to watch",
            "Set it to the workspace namespace(s), comma-separated, or * for all namespaces.",
        )  # fmt: skip
    if raw == "*":
        return ()
    fix = "Namespaces are lower-case DNS labels, separated by commas (or * for all)."
    names = (n.strip() for n in raw.split(",") if n.strip())
    return tuple(_matching(setting, n, DNS_LABEL, "a namespace name", fix) for n in names)


def _required_name(setting: Setting, raw: str) -> str:
    return _matching(
        setting, raw, _DNS_SUBDOMAIN, "a valid object name",
        "Use a lower-case DNS name (letters, digits, '-' and '.').",
    )  # fmt: skip


def _name(setting: Setting, raw: str) -> str:
    """An object name, or empty (each such setting says what empty means)."""
    return _required_name(setting, raw) if raw else raw


def _url(setting: Setting, raw: str) -> str:
    parts = urlsplit(raw)
    if raw and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise SettingsError(setting, f"{raw!r} is not an http(s) URL", "Use http(s)://host/path.")
    return raw


# ------------------------------------------------------------------ the settings

_HUB = "app.kubernetes.io/name=devplane,app.kubernetes.io/component=hub"
_PROXY = "app.kubernetes.io/name=devplane,app.kubernetes.io/component=proxy"
_WORKSPACE_RESOURCES = (
    '{"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "4Gi"}}'
)
_AUTHPROXY_RESOURCES = (
    '{"requests": {"cpu": "20m", "memory": "96Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}'
)


@dataclass(frozen=True)
class Settings:
    """Validated operator settings; each field is the one declaration of its setting."""

    # --- what to watch and what the workspace pod runs
    namespaces: tuple[str, ...] = _setting(
        _namespaces, "Namespaces to watch, comma-separated, or `*` for all namespaces (required)."
    )
    workspace_image: str = _setting(
        _image,
        "Default workspace image (a Workspace may override it).",
        default="devplane/workspace:0.1.0",
    )
    allowed_image_registries: tuple[str, ...] = _setting(
        _registries,
        "Where workspace images may come from: registry prefixes, comma-separated, e.g. "
        "`registry.example/devplane,registry.example/team`. An image is allowed when it starts "
        "with a prefix followed by `/`; a Workspace whose `spec.image` is elsewhere is refused. "
        "Empty means the path of `DEVPLANE_WORKSPACE_IMAGE` (everything before its last `/`).",
    )
    authproxy_image: str = _setting(
        _image, "Image of the auth proxy container (the hub image).", default="devplane/hub:0.1.0"
    )
    image_pull_policy: str = _setting(
        _choice("Always", "IfNotPresent", "Never"),
        "`imagePullPolicy` of both containers: `Always`, `IfNotPresent` or `Never`.",
        default="IfNotPresent",
    )
    workspace_resources: dict[str, dict[str, str]] = _setting(
        _resources,
        "Default requests and limits of the workspace container, as JSON; CPU and memory "
        "limits are required.",
        default=_WORKSPACE_RESOURCES,
    )
    authproxy_resources: dict[str, dict[str, str]] = _setting(
        _resources,
        "Requests and limits of the auth proxy container, as JSON (same rules).",
        default=_AUTHPROXY_RESOURCES,
    )
    workspace_node_selector: dict[str, str] = _setting(
        _labels,
        "`nodeSelector` of workspace pods (`k=v,...`): the nodes they may run on. Empty: any.",
    )
    workspace_tolerations: tuple[dict[str, Any], ...] = _setting(
        _tolerations,
        "`tolerations` of workspace pods, as a JSON list of Kubernetes tolerations, e.g. "
        '`[{"key": "dedicated", "operator": "Equal", "value": "dev", "effect": "NoSchedule"}]`: '
        "taints of nodes kept for workspaces.",
        default="[]",
    )
    workspace_affinity: dict[str, Any] = _setting(
        _affinity,
        "`affinity` of workspace pods, as JSON (a Kubernetes affinity); a Workspace's "
        "`spec.scheduling.affinity` replaces it.",
        default="{}",
    )
    workspace_image_pull_secrets: tuple[str, ...] = _setting(
        _pull_secrets,
        "`imagePullSecrets` of workspace pods, comma-separated Secret names in the workspace "
        "namespace: for a registry that wants credentials. A Workspace's own are added.",
    )
    workspace_extra_env: dict[str, str] = _setting(
        _extra_env,
        "Extra environment variables of every workspace's container, as a JSON object of "
        "names to values; a Workspace's `spec.extraEnv` wins on the same name. Names DevPlane "
        "sets itself are refused.",
        default="{}",
    )
    workspace_extra_volumes: tuple[dict[str, Any], ...] = _setting(
        _extra_volumes,
        "Extra volumes mounted in every workspace's container, as a JSON list of "
        '`{"name", "mountPath", "readOnly", <source>}` with one source of `configMap`, '
        "`persistentVolumeClaim` (e.g. a shared read-only dataset) or `emptyDir`; a "
        "Workspace's `spec.extraVolumes` wins on the same name.",
        default="[]",
    )
    # --- home volumes
    storage_class: str = _setting(
        _name, "StorageClass of new home volumes; empty means the cluster default."
    )
    storage_size: str = _setting(
        _size, "Size of a new home volume when the Workspace does not say.", default="10Gi"
    )
    # --- AI, egress and mirrors: what a workspace may reach
    llm_providers: tuple[dict[str, Any], ...] = _setting(
        _providers,
        "JSON list of LLM providers, the same shape as `spec.ai.providers` (`name`, "
        "`baseURL`, `models`, optional `apiKeySecretRef`), used when a Workspace has no "
        "`spec.ai`.",
        default="[]",
    )
    llm_limits: dict[str, int] = _setting(
        _llm_limits,
        "Default per-user limits of every workspace's LLM gateway, as JSON: "
        '`{"requestsPerMinute": 60, "tokensPerMinute": 200000}` (0 or absent: no limit). A '
        "Workspace's `spec.ai.limits` overrides each. Counted per workspace pod; a change "
        "reaches running workspaces within about a minute, without restarting them.",
        default="{}",
    )
    llm_default_model: str = _setting(
        _text, "Default model of those providers (one of them must offer it)."
    )
    api_key_secrets: tuple[str, ...] = _setting(
        _secret_names,
        "Secrets a Workspace's `spec.ai.providers[].apiKeySecretRef` may name (in its own "
        "namespace), comma-separated, besides those `DEVPLANE_LLM_PROVIDERS` names; any other "
        "is refused: a Workspace must not borrow a key an admin did not mean for it. Names "
        "starting with `ws-` are not accepted (they are workspaces' own objects).",
    )
    metrics_scrapers: tuple[dict[str, Any], ...] = _setting(
        _peers,
        "Who may scrape the workspaces' metrics (the LLM gateway's token counters, port "
        "9102 of the auth proxy), as a JSON list of NetworkPolicy peers, e.g. your "
        "Prometheus's namespace. Empty: no metrics port (they stay readable on the pod's "
        "loopback, through `kubectl port-forward`).",
        default="[]",
    )
    egress_allowlist: tuple[EgressRule, ...] = _setting(
        _egress,
        "Extra egress destinations (package mirror, git server, external LLM), "
        "comma-separated `CIDR[:port[/TCP|UDP|SCTP]]`, e.g. `10.1.0.0/16:443,10.2.3.4/32:3128`.",
    )
    ca_bundle_configmap: str = _setting(
        _name,
        "ConfigMap (in each workspace namespace) with a PEM CA bundle to trust besides the "
        "image's own CAs: mounted at `/etc/devplane/ca/ca.crt`, added to the system bundle "
        "by the workspace's entrypoint (`/run/devplane/ca-certificates.crt`), which "
        "`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`, `GIT_SSL_CAINFO` and "
        "`PIP_CERT` name; `NODE_EXTRA_CA_CERTS` names the site's file (Node adds it to its own).",
    )
    ca_bundle_key: str = _setting(
        _text_or_default, "Key of the CA bundle in that ConfigMap.", default="ca.crt"
    )
    pip_index_url: str = _setting(
        _url, "`PIP_INDEX_URL` of workspaces (an internal package mirror)."
    )
    pip_trusted_host: str = _setting(_text, "`PIP_TRUSTED_HOST` of workspaces.")
    npm_registry: str = _setting(
        _url,
        "`npm_config_registry` of workspaces (an internal npm mirror). Set, npm is online "
        "(`npm_config_offline=false`); empty, npm stays offline.",
    )
    git_mirrors: tuple[dict[str, str], ...] = _setting(
        _git_mirrors,
        'Git mirrors of workspaces, as a JSON list of `{"url": <mirror>, "insteadOf": '
        "<prefix>}`: git fetches any URL starting with the prefix from the mirror instead "
        "(git's `url.<url>.insteadOf`, given to every git in the pod through "
        "`GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_<n>`/`GIT_CONFIG_VALUE_<n>`).",
        default="[]",
    )
    # --- who may reach a workspace (its NetworkPolicy)
    hub_namespace: str = _setting(
        _name, "Namespace of the hub and proxy pods; empty means the workspace's own."
    )
    hub_selector: dict[str, str] = _setting(
        _labels,
        "Labels (`k=v,...`) of the hub pods: they may reach workspaces (and serve them the hub "
        "API unless `DEVPLANE_HUB_API_SELECTOR` says otherwise).",
        default=_HUB,
    )
    proxy_selector: dict[str, str] = _setting(
        _labels,
        "Labels (`k=v,...`) of the configurable-http-proxy pods allowed to reach workspaces.",
        default=_PROXY,
    )
    hub_api_selector: dict[str, str] = _setting(
        _labels,
        "Labels (`k=v,...`) of the pods that serve the hub API to workspaces, in the hub's "
        "namespace: the hub's, or the proxy's when workspaces reach the hub through it (the "
        "chart does, so they never reach the hub's own port). Empty means `DEVPLANE_HUB_SELECTOR`.",
    )
    hub_api_port: int = _setting(
        _Whole(1, 65535),
        "Port of those pods that workspaces may reach for the hub API.",
        default="8081",
    )
    dns_namespace: str = _setting(
        _required_name, "Namespace of the cluster DNS pods.", default="kube-system"
    )
    dns_selector: dict[str, str] = _setting(
        _labels, "Labels (`k=v,...`) of the cluster DNS pods.", default="k8s-app=kube-dns"
    )
    # --- the control loop
    resync_seconds: float = _setting(
        _Number(1, 86400), "Seconds between resyncs of every Workspace.", default="300"
    )
    stuck_after_seconds: float = _setting(
        _Number(1, 86400),
        "Seconds a home volume may stay unbound before it is reported as `VolumePending`.",
        default="120",
    )
    status_hold_seconds: float = _setting(
        _Number(0, 60),
        "Seconds a status change that is only progress (Pending -> Starting, the volume "
        "bound) may wait to be folded into the next write; Ready, Failed, Stopped and stuck "
        "causes are written at once. `0` writes every change at once.",
        default="1",
    )
    workers: int = _setting(_Whole(1, 256), "Concurrent reconciles.", default="8")
    # --- metrics and health
    metrics_host: str = _setting(
        _text_or_default,
        "Address of the `/metrics`, `/healthz` and `/readyz` endpoint.",
        default="0.0.0.0",
    )
    metrics_port: int = _setting(
        _Whole(0, 65535), "Port of that endpoint; `0` disables it.", default="8080"
    )
    # --- leader election
    leader_election: bool = _setting(
        _bool,
        "Lease-based leader election; keep it on when running 2 or more replicas.",
        default="true",
    )
    leader_election_namespace: str = _setting(
        _name,
        "Namespace of the Lease; empty means `$POD_NAMESPACE`, else the first watched "
        "namespace (so it is required with `*`).",
    )
    leader_election_name: str = _setting(
        _required_name, "Name of the Lease.", default="devplane-operator"
    )
    lease_seconds: float = _setting(
        _Number(3, 3600), "Lease duration: a dead leader is replaced within it.", default="15"
    )
    identity: str = _setting(
        _text,
        "This replica's name in the Lease and in Events; empty means `$POD_NAME`, else the "
        "host name and pid.",
    )
    # --- logging
    log_level: str = _setting(
        _choice("DEBUG", "INFO", "WARNING", "ERROR", upper=True),
        "`DEBUG`, `INFO`, `WARNING` or `ERROR`.",
        default="INFO",
    )

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces

    @property
    def allowed_api_key_secrets(self) -> frozenset[str]:
        """The API-key Secrets a Workspace may name: the listed ones and the default providers'."""
        return frozenset(self.api_key_secrets) | _provider_secrets(self.llm_providers)

    def allows_image(self, image: str) -> bool:
        return image_allowed(image, self.allowed_image_registries)

    @property
    def workspace_extras(self) -> Extras:
        """What every workspace pod gets besides its own spec's (extras.py merges them)."""
        return Extras(
            node_selector=self.workspace_node_selector,
            tolerations=self.workspace_tolerations,
            affinity=self.workspace_affinity,
            image_pull_secrets=self.workspace_image_pull_secrets,
            env=self.workspace_extra_env,
            volumes=self.workspace_extra_volumes,
        )


def _provider_secrets(providers: Sequence[dict[str, Any]]) -> frozenset[str]:
    return frozenset(p["apiKeySecretRef"]["name"] for p in providers if p.get("apiKeySecretRef"))


SETTINGS: tuple[Setting, ...] = tuple(Setting(f.name, **f.metadata) for f in fields(Settings))
_BY_ATTR = {s.attr: s for s in SETTINGS}


# ------------------------------------------------------------------ what is derived from them


def _flag_help(setting: Setting) -> str:
    text = f"{setting.description} [env {setting.env}; default {setting.default!r}]"
    return text.replace("`", "").replace("%", "%%")  # argparse formats % itself


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
            help=_flag_help(setting),
        )
    return parser


def load_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read, parse and cross-check every setting; raise SettingsError on the first bad one."""
    environ = os.environ if environ is None else environ
    args = argument_parser().parse_args(list(argv or []))
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        flag_value = getattr(args, setting.attr)
        raw = flag_value if flag_value is not None else environ.get(setting.env, setting.default)
        values[setting.attr] = setting.parse(setting, raw)

    if values["llm_default_model"] and values["llm_providers"]:
        model = values["llm_default_model"]
        offered = {m for p in values["llm_providers"] for m in p["models"]}
        offered |= {f"{p['name']}/{m}" for p in values["llm_providers"] for m in p["models"]}
        if model not in offered:
            raise SettingsError(
                _BY_ATTR["llm_default_model"], f"{model!r} is not offered by any provider",
                "Use one of the models listed in DEVPLANE_LLM_PROVIDERS.",
            )  # fmt: skip
    _check_references(values)
    values["hub_api_selector"] = values["hub_api_selector"] or values["hub_selector"]
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


def _check_references(values: dict[str, Any]) -> None:
    """Cross-checks of what Workspaces may reference (docs/operator.md, "What a Workspace may
    reference"): the default image must be allowed (an empty list of registries means its
    path), and the default providers' API-key Secrets must not be named like a workspace's own
    objects."""
    registries = _BY_ATTR["allowed_image_registries"]
    image = values["workspace_image"]
    if not values["allowed_image_registries"]:
        path = image.rpartition("/")[0]
        if not path:
            raise SettingsError(
                registries, f"it is empty and DEVPLANE_WORKSPACE_IMAGE {image!r} has no path to "
                "derive it from",
                "Set it to where workspace images come from, e.g. registry.example/devplane.",
            )  # fmt: skip
        values["allowed_image_registries"] = (path,)
    if not image_allowed(image, values["allowed_image_registries"]):
        raise SettingsError(
            registries, f"the default workspace image {image!r} is not under any of "
            f"{', '.join(values['allowed_image_registries'])}",
            "Add its registry, or set DEVPLANE_WORKSPACE_IMAGE to an image from one of them.",
        )  # fmt: skip
    for name in _provider_secrets(values["llm_providers"]):
        _api_key_secret(_BY_ATTR["llm_providers"], name)


DOCS_TABLE_START = (
    "<!-- settings table: `python -m devplane_operator.settings docs/operator.md` -->"
)
DOCS_TABLE_END = "<!-- end of settings table -->"


def docs_table() -> str:
    """The Markdown table of every setting, as docs/operator.md shows it."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| env var | flag | default | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else '`""`'
        rows.append(f"| `{s.env}` | `--{s.flag}` | {cell(default)} | {cell(s.description)} |")
    return "\n".join(rows)


def with_docs_table(document: str) -> str:
    """``document`` with the text between the table's two markers replaced by docs_table()."""
    head, start, rest = document.partition(DOCS_TABLE_START)
    _, end, tail = rest.partition(DOCS_TABLE_END)
    if not (start and end):
        raise ValueError(f"the document lacks the lines {DOCS_TABLE_START} and {DOCS_TABLE_END}")
    return f"{head}{start}\n{docs_table()}\n{end}{tail}"


if __name__ == "__main__":  # rewrite the table in the given Markdown file, or print it
    if len(sys.argv) > 1:
        path = Path(sys.argv[1])
        path.write_text(with_docs_table(path.read_text()))
    else:
        print(docs_table())
