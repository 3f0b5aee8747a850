"""The idle culler's per-profile timeouts: which limit applies to which server."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from devplane_spawner.culling import (
    PROFILE_TIMEOUTS_ENV,
    make_arbiter,
    profile_timeouts,
    read_timeouts,
)
from devplane_spawner.profiles import ProfileError, parse_profiles

PROFILES = parse_profiles(
    [
        {"slug": "small", "default": True, "idleTimeout": 600},
        {"slug": "never", "idleTimeout": 0},
        {"slug": "plain"},
    ]
)


def server(profile: str | None) -> dict:
    """A hub API server model, as the culler receives it."""
    return {"name": "", "user_options": {} if profile is None else {"profile": profile}}


def test_each_profile_that_sets_one_gets_its_timeout_and_the_default_names_the_unnamed():
    assert profile_timeouts(PROFILES) == {"small": 600, "never": 0, "": 600}
    assert profile_timeouts(parse_profiles([{"slug": "a"}])) == {}


@pytest.mark.parametrize(
    ("profile", "idle", "culled"),
    [
        ("small", 599, False),
        ("small", 600, True),
        (None, 600, True),  # no profile named: the default profile's
        ("never", 10**7, False),  # 0: never, however long
        ("plain", 3599, False),  # no idleTimeout: the culler's own (3600 here)
        ("plain", 3600, True),
        ("gone", 3600, True),  # a profile since removed: the culler's own
    ],
)
def test_the_arbiter_applies_the_servers_profile_timeout(profile, idle, culled):
    arbiter = make_arbiter(profile_timeouts(PROFILES))
    verdict = arbiter(inactive=timedelta(seconds=idle), inactive_limit=3600, server=server(profile))
    assert verdict is culled


def test_user_options_of_another_shape_count_as_the_default_profile():
    arbiter = make_arbiter({"": 0})
    odd = {"user_options": {"profile": ["small"]}}
    assert arbiter(inactive=timedelta(seconds=10), inactive_limit=5, server=odd) is False
    assert arbiter(inactive=timedelta(seconds=10), inactive_limit=5, server={}) is False


def test_timeouts_travel_through_the_environment_and_bad_ones_stop_the_culler():
    env = {PROFILE_TIMEOUTS_ENV: json.dumps(profile_timeouts(PROFILES))}
    assert read_timeouts(env) == {"small": 600, "never": 0, "": 600}
    for bad in ("{", '{"a": -1}', '{"a": "600"}', "[1]"):
        with pytest.raises(SystemExit, match=PROFILE_TIMEOUTS_ENV):
            read_timeouts({PROFILE_TIMEOUTS_ENV: bad})


@pytest.mark.parametrize("value", [-1, 1.5, "600", True])
def test_a_bad_idle_timeout_is_refused_at_configuration(value):
    with pytest.raises(ProfileError, match="idleTimeout must be a whole number of seconds"):
        parse_profiles([{"slug": "a", "idleTimeout": value}])


def test_a_kubespawner_style_start_gets_its_profiles_timeout():
    family = parse_profiles(
        [
            {"slug": "plain", "default": True},
            {
                "display_name": "Data science",
                "slug": "datasci",
                "idleTimeout": 0,
                "profile_options": {"image": {"choices": {"a": {}, "b": {"default": True}}}},
            },
        ]
    )
    arbiter = make_arbiter(profile_timeouts(family))
    started = {"user_options": {"profile": "datasci", "image": "a"}}  # KubeSpawner's words
    assert arbiter(inactive=timedelta(days=30), inactive_limit=60, server=started) is False
    chosen = server("datasci-b")
    assert arbiter(inactive=timedelta(days=30), inactive_limit=60, server=chosen) is False
