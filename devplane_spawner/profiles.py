"""Profiles: the workspace sizes, images and models a user may choose from.

A profile list is admin configuration (``DevPlaneSpawner.profile_list``); a choice arrives as
user input, from the spawn form or from ``user_options`` in a REST start request. Everything
here is pure so it can be tested without a hub: ``parse_profiles`` checks the configuration
once, ``choose_profile`` turns untrusted ``user_options`` into a profile or raises
``ProfileError`` whose message says what is allowed (the spawner turns it into an HTTP 400).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from devplane_api.extras import ExtrasError, check_env, check_volume

from . import kubespawner_profiles

_SLUG = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Kubernetes quantities: "500m", "2", "1.5", "4Gi", "512M" (no exponent forms: nobody needs them
# in a profile, and refusing them keeps the error message simple).
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_RESOURCE_KEYS = {"requests", "limits"}
_RESOURCE_NAMES = {"cpu", "memory", "ephemeral-storage"}
_PROFILE_KEYS = {
    "slug", "display_name", "description", "default", "image", "resources", "model", "models",
    "llmLimits", "idleTimeout", "nodeSelector", "tolerations", "affinity", "extraEnv",
    "extraVolumes",
}  # fmt: skip
# Set by kubespawner_profiles.translate on the profiles it makes, never by an admin.
_ORIGIN_KEY = "kubespawner"
_LIMIT_KEYS = ("requestsPerMinute", "tokensPerMinute")
# user_options keys a client may send; anything else is refused rather than ignored, so a typo
# ("profil") is an error and not a silent default.
USER_OPTION_KEYS = {"profile"}


class ProfileError(ValueError):
    """A profile choice or profile configuration that cannot be used; the text is user-facing."""


@dataclass(frozen=True)
class Profile:
    """One entry of the profile list, validated."""

    slug: str
    display_name: str
    description: str = ""
    default: bool = False
    image: str = ""  # "" = the spawner's `image`
    resources: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    model: str = ""  # "" = the spawner's `default_model`
    # The LLM allow-list: of the providers' models, only these ("" = all of them).
    models: tuple[str, ...] = ()
    # The LLM gateway's limits for this profile's workspaces (empty: the operator's).
    llm_limits: Mapping[str, int] = field(default_factory=dict)
    # Seconds of inactivity before the idle culler stops this profile's workspaces; 0: never;
    # None: the culler's own timeout (culling.py).
    idle_timeout: int | None = None
    # Where its pods run and what they get besides (Workspace spec.scheduling, .extraEnv,
    # .extraVolumes; the CRD and the operator check them in full): {} / () = none.
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    affinity: Mapping[str, Any] = field(default_factory=dict)
    extra_env: Mapping[str, str] = field(default_factory=dict)
    extra_volumes: tuple[Mapping[str, Any], ...] = ()
    # Made from a KubeSpawner profile (kubespawner_profiles.py): (its slug, {option: choice},
    # whether those are the default choices); None for a DevPlane profile.
    kubespawner: tuple[str, Mapping[str, str], bool] | None = None


def _check_resources(slug: str, resources: Any) -> dict[str, dict[str, str]]:
    if not isinstance(resources, Mapping):
        raise ProfileError(f"profile {slug!r}: resources must be a mapping of requests/limits")
    unknown = set(resources) - _RESOURCE_KEYS
    if unknown:
        raise ProfileError(
            f"profile {slug!r}: resources may only have requests and limits, not {sorted(unknown)}"
        )
    checked: dict[str, dict[str, str]] = {}
    for kind, amounts in resources.items():
        if not isinstance(amounts, Mapping):
            raise ProfileError(f"profile {slug!r}: resources.{kind} must be a mapping")
        checked[kind] = {}
        for name, value in amounts.items():
            if name not in _RESOURCE_NAMES:
                raise ProfileError(
                    f"profile {slug!r}: resources.{kind}.{name} is not one of "
                    f"{sorted(_RESOURCE_NAMES)}"
                )
            text = str(value)
            if not _QUANTITY.fullmatch(text):
                raise ProfileError(
                    f"profile {slug!r}: resources.{kind}.{name}={text!r} is not a Kubernetes "
                    "quantity such as 500m, 2, 512Mi or 4Gi"
                )
            checked[kind][name] = text
    return checked


def _check_models(slug: str, models: Any) -> tuple[str, ...]:
    if (
        not isinstance(models, list)
        or not models
        or not all(isinstance(m, str) and m for m in models)
    ):
        raise ProfileError(f"profile {slug!r}: models must be a non-empty list of model names")
    return tuple(models)


def _check_limits(slug: str, limits: Any) -> dict[str, int]:
    if not isinstance(limits, Mapping) or set(limits) - set(_LIMIT_KEYS):
        raise ProfileError(f"profile {slug!r}: llmLimits may hold {' and '.join(_LIMIT_KEYS)}")
    for key, value in limits.items():
        if type(value) is not int or value < 0:
            raise ProfileError(f"profile {slug!r}: llmLimits.{key} must be a whole number >= 0")
    return dict(limits)


def _check_idle_timeout(slug: str, value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ProfileError(
            f"profile {slug!r}: idleTimeout must be a whole number of seconds >= 0 "
            "(0: never stopped for being idle)"
        )
    return value


def _check_mapping(slug: str, key: str, value: Any, of: type) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, of) for k, v in value.items()
    ):
        raise ProfileError(
            f"profile {slug!r}: {key} must be a mapping of names to {of.__name__} values"
        )
    return dict(value)


def _check_list(slug: str, key: str, value: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ProfileError(f"profile {slug!r}: {key} must be a list of objects")
    return tuple(dict(v) for v in value)


def _check_extra_env(slug: str, value: Any) -> dict[str, str]:
    env = _check_mapping(slug, "extraEnv", value, str)
    for name, text in env.items():
        try:
            check_env(name, text, f"profile {slug!r}: extraEnv")
        except ExtrasError as err:
            raise ProfileError(str(err)) from None
    return env


def _check_extra_volumes(slug: str, value: Any) -> tuple[dict[str, Any], ...]:
    volumes = _check_list(slug, "extraVolumes", value)
    for index, volume in enumerate(volumes):
        try:
            check_volume(volume, f"profile {slug!r}: extraVolumes[{index}]")
        except ExtrasError as err:
            raise ProfileError(str(err)) from None
    return volumes


def parse_profile(raw: Mapping[str, Any]) -> Profile:
    """Validate one configured profile (a dict from the hub configuration)."""
    if not isinstance(raw, Mapping):
        raise ProfileError(f"a profile must be a mapping, not {type(raw).__name__}")
    slug = str(raw.get("slug") or "")
    if not _SLUG.fullmatch(slug):
        raise ProfileError(
            f"profile slug {slug!r} must be lower-case letters, digits and '-' (a DNS label)"
        )
    unknown = set(raw) - _PROFILE_KEYS - {_ORIGIN_KEY}
    if unknown:
        raise ProfileError(
            f"profile {slug!r} has unknown keys {sorted(unknown)}; allowed: {sorted(_PROFILE_KEYS)}"
        )
    return Profile(
        slug=slug,
        display_name=str(raw.get("display_name") or slug),
        description=str(raw.get("description") or ""),
        default=bool(raw.get("default", False)),
        image=str(raw.get("image") or ""),
        resources=_check_resources(slug, raw.get("resources") or {}),
        model=str(raw.get("model") or ""),
        models=_check_models(slug, raw["models"]) if "models" in raw else (),
        llm_limits=_check_limits(slug, raw.get("llmLimits") or {}),
        idle_timeout=(
            _check_idle_timeout(slug, raw["idleTimeout"]) if "idleTimeout" in raw else None
        ),
        node_selector=_check_mapping(slug, "nodeSelector", raw.get("nodeSelector") or {}, str),
        tolerations=_check_list(slug, "tolerations", raw.get("tolerations") or []),
        affinity=_check_mapping(slug, "affinity", raw.get("affinity") or {}, Mapping),
        extra_env=_check_extra_env(slug, raw.get("extraEnv") or {}),
        extra_volumes=_check_extra_volumes(slug, raw.get("extraVolumes") or []),
        kubespawner=raw.get(_ORIGIN_KEY),
    )


def parse_profiles(raw_list: Sequence[Mapping[str, Any]]) -> list[Profile]:
    """Validate the whole list: unique slugs, at most one default. Entries in KubeSpawner's
    format (kubespawner_profiles.py) are translated first."""
    if not isinstance(raw_list, Sequence) or isinstance(raw_list, str):
        raise ProfileError("the profile list must be a list of profiles")
    try:
        expanded = kubespawner_profiles.expand(raw_list)
    except kubespawner_profiles.KubeSpawnerProfileError as e:
        raise ProfileError(str(e)) from None
    profiles = [parse_profile(raw) for raw in expanded]
    slugs = [p.slug for p in profiles]
    duplicates = sorted({s for s in slugs if slugs.count(s) > 1})
    if duplicates:
        raise ProfileError(f"duplicate profile slugs: {', '.join(duplicates)}")
    if sum(p.default for p in profiles) > 1:
        raise ProfileError("at most one profile may be marked default")
    return profiles


def default_profile(profiles: Sequence[Profile]) -> Profile | None:
    """The profile used when the user names none: the one marked default, else the first."""
    for profile in profiles:
        if profile.default:
            return profile
    return profiles[0] if profiles else None


def choose_profile(profiles: Sequence[Profile], user_options: Any) -> Profile | None:
    """The profile ``user_options`` asks for; ``None`` only when no profiles are configured.

    A profile made from a KubeSpawner profile with options may also be asked for the
    KubeSpawner way: ``{"profile": "<its slug>", "<option>": "<choice>", ...}`` (options left
    out take their default choice). Raises ProfileError (message lists what is allowed) for
    anything it cannot honour.
    """
    options = user_options if user_options is not None else {}
    if not isinstance(options, Mapping):
        raise ProfileError('user_options must be a JSON object such as {"profile": "small"}')
    wanted = options.get("profile")
    if wanted is not None and not isinstance(wanted, str):
        raise ProfileError("'profile' must be a string naming one of the profiles")
    # The profiles made from one KubeSpawner profile's options, when ``wanted`` names it.
    family = [
        p for p in profiles if p.kubespawner and p.kubespawner[1] and p.kubespawner[0] == wanted
    ]
    unknown = set(options) - USER_OPTION_KEYS
    if family:
        return _choose_option(family, wanted or "", {k: options[k] for k in unknown})
    if unknown:
        raise ProfileError(
            f"unknown user_options {sorted(unknown)}; the only option is 'profile'"
            + (f", one of: {', '.join(p.slug for p in profiles)}" if profiles else "")
        )
    if wanted is None or wanted == "":
        return default_profile(profiles)
    if not profiles:
        raise ProfileError("this hub offers no profiles; start without a 'profile' option")
    for profile in profiles:
        if profile.slug == wanted:
            return profile
    allowed = ", ".join(p.slug for p in profiles)
    raise ProfileError(f"unknown profile {wanted!r}; choose one of: {allowed}")


def _choose_option(family: Sequence[Profile], slug: str, chosen: Mapping[str, Any]) -> Profile:
    """Of the profiles made from KubeSpawner profile ``slug``'s options, the one ``chosen``
    (option -> choice) names; options not named take their default choice."""
    names = set(family[0].kubespawner[1]) if family[0].kubespawner else set()
    unknown = sorted(set(chosen) - names)
    if unknown:
        raise ProfileError(
            f"profile {slug!r} has no option(s) {', '.join(unknown)}; its options: "
            + ", ".join(sorted(names))
        )
    usual = next(p for p in family if p.kubespawner and p.kubespawner[2])
    wanted = {**(usual.kubespawner[1] if usual.kubespawner else {}), **chosen}
    for profile in family:
        if profile.kubespawner and dict(profile.kubespawner[1]) == wanted:
            return profile
    offered = "; ".join(
        ", ".join(f"{k}={v}" for k, v in p.kubespawner[1].items()) for p in family if p.kubespawner
    )
    raise ProfileError(f"profile {slug!r} has no choice {wanted}; its choices: {offered}")


def options_from_form(form_data: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Turn the spawn form's fields (each a list of strings) into user_options."""
    values = form_data.get("profile") or []
    return {"profile": values[0]} if values else {}


def render_form(profiles: Sequence[Profile], selected: str = "") -> str:
    """HTML for the spawn page: one radio button per profile, the default pre-selected."""
    if not profiles:
        return ""
    chosen = selected or (default_profile(profiles) or profiles[0]).slug
    rows = []
    for profile in profiles:
        slug = html.escape(profile.slug, quote=True)
        checked = " checked" if profile.slug == chosen else ""
        rows.append(
            '<div class="radio">'
            f'<label for="profile-{slug}">'
            f'<input type="radio" name="profile" id="profile-{slug}" value="{slug}"{checked}>'
            f" <strong>{html.escape(profile.display_name)}</strong>"
            f" {html.escape(profile.description)}</label></div>"
        )
    return "<fieldset><legend>Workspace profile</legend>" + "".join(rows) + "</fieldset>"


def workspace_ai(
    providers: Sequence[Mapping[str, Any]], profile: Profile | None, default_model: str
) -> dict[str, Any] | None:
    """The Workspace's ``spec.ai`` for ``profile``: the providers with only the models the
    profile allows (its LLM allow-list, which the workspace's gateway enforces), its default
    model, and its limits. None without providers. ProfileError when the profile allows none
    of the providers' models, or names a default it does not allow."""
    if not providers:
        return None
    chosen = [dict(p) for p in providers]
    if profile and profile.models:
        allowed = set(profile.models)
        chosen = [{**p, "models": [m for m in p["models"] if m in allowed]} for p in chosen]
        chosen = [p for p in chosen if p["models"]]
        if not chosen:
            raise ProfileError(
                f"profile {profile.slug!r} allows the models {', '.join(profile.models)}, which "
                "no configured provider offers; ask an admin to fix the profile"
            )
    offered = {m for p in chosen for m in p["models"]} | {
        f"{p['name']}/{m}" for p in chosen for m in p["models"]
    }
    model = (profile.model if profile and profile.model else "") or default_model
    if model and model not in offered:
        if profile and profile.model:
            raise ProfileError(f"profile {profile.slug!r}: its model {model!r} is not allowed")
        model = ""  # the spawner's default is not among this profile's: the first allowed
    ai: dict[str, Any] = {"providers": chosen}
    if model:
        ai["defaultModel"] = model
    if profile and profile.llm_limits:
        ai["limits"] = dict(profile.llm_limits)
    return ai


def workspace_extras(profile: Profile | None) -> dict[str, Any]:
    """The Workspace spec's scheduling, extraEnv and extraVolumes for ``profile``; None for
    each it does not set (a merge patch then removes what an earlier start's profile set)."""
    if profile is None:
        return {"scheduling": None, "extraEnv": None, "extraVolumes": None}
    scheduling = {
        key: value
        for key, value in (
            ("nodeSelector", dict(profile.node_selector)),
            ("tolerations", [dict(t) for t in profile.tolerations]),
            ("affinity", dict(profile.affinity)),
        )
        if value
    }
    return {
        "scheduling": scheduling or None,
        "extraEnv": [{"name": k, "value": v} for k, v in profile.extra_env.items()] or None,
        "extraVolumes": [dict(v) for v in profile.extra_volumes] or None,
    }
