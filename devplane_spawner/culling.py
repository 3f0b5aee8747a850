"""The idle culler, per profile: jupyterhub-idle-culler, with each server judged by its profile's
idle timeout instead of the hub-wide one.

A profile's ``idleTimeout`` (seconds; 0 = never stop it for being idle) overrides the culler's
``--timeout`` for the servers started with it. The culler learns a server's profile from its
``user_options`` in the hub API's server model, which its role (``read:servers``) already
reads; the timeouts come from the same profile list the hub uses, passed in the environment by
hub_config/jupyterhub_config.py. ``--max-age`` still stops any server older than it: that is
an admin's hard cap, not idleness (docs/hub-config.md, "Idle culling").

    python -m devplane_spawner.culling --timeout=3600 --cull-every=300 --url=...
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from .profiles import Profile, default_profile, parse_profiles

PROFILE_TIMEOUTS_ENV = "DEVPLANE_CULL_PROFILE_TIMEOUTS"


def profile_timeouts(profiles: Sequence[Profile]) -> dict[str, int]:
    """slug -> idle timeout of each profile that sets one; "" for the default profile's, which
    applies to a server started without naming a profile."""
    timeouts = {p.slug: p.idle_timeout for p in profiles if p.idle_timeout is not None}
    for profile in profiles:
        # A start the KubeSpawner way names the profile by its own slug, the choice apart
        # ({"profile": "datasci", "image": "py312"}); a profile's timeout is the same for
        # every choice.
        if profile.kubespawner and profile.idle_timeout is not None:
            timeouts.setdefault(profile.kubespawner[0], profile.idle_timeout)
    default = default_profile(profiles)
    if default is not None and default.idle_timeout is not None:
        timeouts[""] = default.idle_timeout
    return timeouts


def timeouts_of(profile_list: Any) -> dict[str, int]:
    """``profile_timeouts`` of the spawner's configured ``profile_list``; {} for a callable one,
    whose profiles are known only per user (its idleTimeouts are not honoured: the culler
    applies its own timeout; docs/hub-config.md says so)."""
    if callable(profile_list):
        return {}
    return profile_timeouts(parse_profiles(profile_list))


def idle_limit(server: Mapping[str, Any], timeouts: Mapping[str, int], hub_wide: int) -> int:
    """The idle timeout that applies to ``server`` (a hub API server model); 0 = never."""
    options = server.get("user_options") or {}
    slug = options.get("profile") if isinstance(options, Mapping) else None
    return timeouts.get(slug if isinstance(slug, str) else "", hub_wide)


def make_arbiter(timeouts: Mapping[str, int]) -> Callable[..., bool]:
    """jupyterhub-idle-culler's ``cull_arbiter_hook``: True when ``server`` has been idle for
    longer than its profile allows."""

    def arbiter(*, inactive: timedelta, inactive_limit: int, server: Any, **_: Any) -> bool:
        limit = idle_limit(server, timeouts, inactive_limit)
        return limit > 0 and inactive.total_seconds() >= limit

    return arbiter


def read_timeouts(env: Mapping[str, str] | None = None) -> dict[str, int]:
    raw = (os.environ if env is None else env).get(PROFILE_TIMEOUTS_ENV) or "{}"
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise SystemExit(f"{PROFILE_TIMEOUTS_ENV} is not valid JSON: {e}") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and type(v) is int and v >= 0 for k, v in value.items()
    ):
        raise SystemExit(f"{PROFILE_TIMEOUTS_ENV} must map profile slugs to seconds >= 0")
    return value


def main(argv: list[str] | None = None) -> None:
    from jupyterhub_idle_culler import IdleCuller

    IdleCuller.launch_instance(argv, cull_arbiter_hook=make_arbiter(read_timeouts()))


if __name__ == "__main__":
    main()
