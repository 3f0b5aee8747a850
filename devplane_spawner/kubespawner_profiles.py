"""KubeSpawner's ``profile_list`` (Zero to JupyterHub's ``singleuser.profileList``), read as
DevPlane profiles, so an admin can bring the list they have.

What carries over (docs/admin-guide.md, "Migrating from Zero to JupyterHub"):

- ``slug`` (made from ``display_name`` when absent, as KubeSpawner makes it), ``display_name``,
  ``description``, ``default``;
- ``kubespawner_override`` keys with a DevPlane meaning: ``image``, ``cpu_limit``,
  ``cpu_guarantee``, ``mem_limit``, ``mem_guarantee``, ``node_selector``, ``tolerations``,
  ``environment`` (plain string values);
- ``profile_options`` with listed ``choices``: each choice becomes a profile of its own
  (``<profile>-<choice>``, its override on top of the profile's); several options give one
  profile per combination. A start may name the choice the KubeSpawner way too:
  ``{"profile": "<profile>", "<option>": "<choice>"}``.

Anything else is refused with an error that names it, and says where DevPlane sets it when
it is set elsewhere (``image_pull_policy``: the chart's ``workspaces.image.pullPolicy``, ...):
a key quietly dropped would be a profile that does not do what its admin thinks.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from slugify import slugify as _slugify

KUBESPAWNER_KEYS = frozenset({"kubespawner_override", "profile_options"})

# kubespawner_override keys DevPlane has a meaning for -> (resources part, resource name).
_RESOURCE_OVERRIDES = {
    "cpu_limit": ("limits", "cpu"),
    "cpu_guarantee": ("requests", "cpu"),
    "mem_limit": ("limits", "memory"),
    "mem_guarantee": ("requests", "memory"),
}
# kubespawner_override keys -> the DevPlane profile key they become.
_PLACEMENT_OVERRIDES = {
    "node_selector": "nodeSelector",
    "tolerations": "tolerations",
    "environment": "extraEnv",
}
# Keys KubeSpawner has that DevPlane sets elsewhere, for every workspace, and where.
_SET_ELSEWHERE = {
    "image_pull_policy": "the chart's workspaces.image.pullPolicy",
    "image_pull_secrets": "the chart's workspaces.imagePullSecrets",
    "storage_capacity": "the chart's workspaces.storage.size",
    "storage_class": "the chart's workspaces.storage.storageClassName",
    "uid": "the workspace image (uid 1000, fixed)",
    "gid": "the workspace image (gid 1000, fixed)",
    "fs_gid": "the operator (fsGroup 1000, fixed)",
    "privileged": "nowhere: workspaces never run privileged",
    "allow_privilege_escalation": "nowhere: workspaces never escalate privileges",
    "default_url": "nowhere: a workspace opens on its terminal",
}
# KubeSpawner's byte suffixes are powers of 1024 (its ByteSpecification).
_BYTES = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMGT])?$")


class KubeSpawnerProfileError(ValueError):
    """A KubeSpawner profile that cannot be translated; the text says what and why."""


def is_kubespawner_profile(raw: Mapping[str, Any]) -> bool:
    return bool(KUBESPAWNER_KEYS & set(raw)) or ("slug" not in raw and "display_name" in raw)


def slugify(text: str) -> str:
    """KubeSpawner's slug (python-slugify's, as KubeSpawner calls it: "Größe L" becomes
    grosse-l, "1,000 cores" 1000-cores), cut to the 63 characters of a DNS label."""
    return _slugify(text)[:63].strip("-")


def _merged(before: Any, value: Mapping[str, Any]) -> dict[str, Any]:
    """KubeSpawner merges a mapping override into the value it overrides, recursively; a key
    set to None is removed (its _apply_overrides)."""
    result = dict(before) if isinstance(before, Mapping) else {}
    for key, item in value.items():
        if item is None:
            result.pop(key, None)
        elif isinstance(item, Mapping):
            result[key] = _merged(result.get(key), item)
        else:
            result[key] = item
    return result


def _memory(key: str, value: Any, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    match = _BYTES.fullmatch(str(value).strip())
    if not match:
        raise KubeSpawnerProfileError(
            f"{where}: kubespawner_override.{key}={value!r} is not a KubeSpawner byte size "
            "such as 512M or 2G"
        )
    number, suffix = match.groups()
    return f"{number}{suffix}i" if suffix else number


def _cpu(key: str, value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise KubeSpawnerProfileError(
            f"{where}: kubespawner_override.{key}={value!r} is not a number of CPUs such as 0.5"
        )
    return f"{round(value * 1000)}m"


def _apply_override(profile: dict[str, Any], override: Any, where: str) -> None:
    """Fold one kubespawner_override into ``profile`` (DevPlane keys), in place."""
    if not isinstance(override, Mapping):
        raise KubeSpawnerProfileError(f"{where}: kubespawner_override must be a mapping")
    unknown = sorted(set(override) - {"image", *_RESOURCE_OVERRIDES, *_PLACEMENT_OVERRIDES})
    if unknown:
        hints = [f"{k} (set by {_SET_ELSEWHERE[k]})" for k in unknown if k in _SET_ELSEWHERE]
        others = [key for key in unknown if key not in _SET_ELSEWHERE]
        raise KubeSpawnerProfileError(
            f"{where}: kubespawner_override has keys DevPlane profiles cannot honour: "
            + "; ".join(
                [*(["no DevPlane meaning: " + ", ".join(others)] if others else []), *hints]
            )
            + ". A profile may override image, cpu_limit, cpu_guarantee, mem_limit, "
            "mem_guarantee, node_selector, tolerations and environment; remove the others"
        )
    if "image" in override:
        profile["image"] = str(override["image"])
    resources = profile.setdefault("resources", {})
    for key, (part, name) in _RESOURCE_OVERRIDES.items():
        if key in override:
            convert = _cpu if name == "cpu" else _memory
            resources.setdefault(part, {})[name] = convert(key, override[key], where)
    if not resources:
        del profile["resources"]
    for key, target in _PLACEMENT_OVERRIDES.items():
        if key not in override:
            continue
        value = override[key]
        if key == "environment" and (
            not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values())
        ):
            raise KubeSpawnerProfileError(
                f"{where}: kubespawner_override.environment must map names to plain strings "
                "(no callables or valueFrom: a workspace's environment is data)"
            )
        # As in KubeSpawner: a mapping is merged into what the profile set, a list replaces it.
        profile[target] = (
            _merged(profile.get(target), value) if isinstance(value, Mapping) else value
        )


def _choices(option_name: str, option: Any, where: str) -> list[tuple[str, Mapping[str, Any]]]:
    if not isinstance(option, Mapping):
        raise KubeSpawnerProfileError(f"{where}: profile_options.{option_name} must be a mapping")
    unlisted = option.get("unlisted_choice") or {}
    if isinstance(unlisted, Mapping) and unlisted.get("enabled"):
        raise KubeSpawnerProfileError(
            f"{where}: profile_options.{option_name}.unlisted_choice lets a user type any "
            "value, which a DevPlane profile cannot check; list the choices instead"
        )
    choices = option.get("choices")
    if not isinstance(choices, Mapping) or not choices:
        raise KubeSpawnerProfileError(
            f"{where}: profile_options.{option_name} needs listed choices"
        )
    for key, choice in choices.items():
        if not isinstance(choice, Mapping):
            raise KubeSpawnerProfileError(
                f"{where}: profile_options.{option_name}.choices.{key} must be a mapping"
            )
    return list(choices.items())


def translate(raw: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One KubeSpawner profile as DevPlane profile dicts (one per combination of choices).

    Each result carries ``kubespawner`` = (profile slug, {option: choice}, whether these are
    the options' default choices), which ``profiles.choose_profile`` uses to accept
    KubeSpawner-style user_options."""
    display = str(raw.get("display_name") or "")
    slug = str(raw.get("slug") or slugify(display))
    where = f"profile {slug or display!r}"
    if not slug:
        raise KubeSpawnerProfileError("a profile needs a slug or a display_name")
    base = {k: v for k, v in raw.items() if k not in KUBESPAWNER_KEYS}
    base["slug"] = slug
    if "kubespawner_override" in raw:
        _apply_override(base, raw["kubespawner_override"], where)
    options = raw.get("profile_options") or {}
    if not isinstance(options, Mapping):
        raise KubeSpawnerProfileError(f"{where}: profile_options must be a mapping")
    if not options:
        return [{**base, "kubespawner": (slug, {}, True)}]
    names = list(options)
    listed = {n: _choices(n, options[n], where) for n in names}
    # KubeSpawner's default choice of an option: the one marked default, else the first.
    defaults = {
        n: next((str(k) for k, c in listed[n] if c.get("default")), str(listed[n][0][0]))
        for n in names
    }
    result = []
    for combo in itertools.product(*(listed[n] for n in names)):
        profile = copy.deepcopy(base)
        picked = {name: str(key) for name, (key, _) in zip(names, combo, strict=True)}
        for name, (key, choice) in zip(names, combo, strict=True):
            if "kubespawner_override" in choice:
                _apply_override(profile, choice["kubespawner_override"], f"{where}, {name}={key}")
        labels = [str(choice.get("display_name") or key) for key, choice in combo]
        usual = picked == defaults
        profile["slug"] = slugify("-".join([slug, *picked.values()]))
        profile["display_name"] = f"{display or slug}: {', '.join(labels)}"
        profile["default"] = bool(raw.get("default", False)) and usual
        profile["kubespawner"] = (slug, picked, usual)
        result.append(profile)
    # The default choices first: a list with no profile marked default starts its first
    # profile, and KubeSpawner starts that with its default choices.
    result.sort(key=lambda p: not p["kubespawner"][2])
    return result


def expand(raw_list: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The whole list, KubeSpawner entries translated and DevPlane ones as they are."""
    out: list[dict[str, Any]] = []
    for raw in raw_list:
        if isinstance(raw, Mapping) and is_kubespawner_profile(raw):
            out.extend(translate(raw))
        else:
            out.append(raw)  # type: ignore[arg-type]  # checked by profiles.parse_profile
    return out
