"""Profiles: configuration checks, choosing from user_options, the spawn form."""

from __future__ import annotations

import pytest

from devplane_spawner.profiles import (
    ProfileError,
    choose_profile,
    options_from_form,
    parse_profiles,
    render_form,
)

RAW = [
    {
        "slug": "small",
        "display_name": "Small",
        "description": "1 CPU, 2 GiB",
        "resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1", "memory": "2Gi"}},
    },
    {
        "slug": "large",
        "display_name": "Large <GPU-less>",
        "default": True,
        "image": "registry.local/ws:2",
        "model": "vllm/qwen",
        "resources": {"limits": {"cpu": "4", "memory": "16Gi"}},
    },
]


def test_parse_keeps_every_field():
    small, large = parse_profiles(RAW)
    assert small.slug == "small" and small.resources["limits"]["memory"] == "2Gi"
    assert large.default and large.image == "registry.local/ws:2" and large.model == "vllm/qwen"


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ([{"slug": "Big!"}], "DNS label"),
        ([{"slug": "a"}, {"slug": "a"}], "duplicate"),
        ([{"slug": "a", "default": True}, {"slug": "b", "default": True}], "at most one"),
        ([{"slug": "a", "cpu": 2}], "unknown keys"),
        ([{"slug": "a", "resources": {"limits": {"gpu": "1"}}}], "not one of"),
        ([{"slug": "a", "resources": {"limits": {"cpu": "lots"}}}], "quantity"),
        ([{"slug": "a", "resources": {"max": {}}}], "requests and limits"),
    ],
)
def test_bad_configuration_is_refused_with_the_reason(raw, complaint):
    with pytest.raises(ProfileError, match=complaint):
        parse_profiles(raw)


def test_choice_by_slug_and_default():
    profiles = parse_profiles(RAW)
    assert choose_profile(profiles, {"profile": "small"}).slug == "small"
    assert choose_profile(profiles, {}).slug == "large"  # marked default
    assert choose_profile(profiles, None).slug == "large"
    assert choose_profile(parse_profiles(RAW[:1]), {}).slug == "small"  # first when no default
    assert choose_profile([], {}) is None


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"profile": "huge"}, "unknown profile 'huge'; choose one of: small, large"),
        ({"profile": 3}, "must be a string"),
        ({"profil": "small"}, "unknown user_options"),
        (["small"], "JSON object"),
    ],
)
def test_bad_choice_says_what_is_allowed(options, complaint):
    with pytest.raises(ProfileError) as info:
        choose_profile(parse_profiles(RAW), options)
    assert complaint in str(info.value)


def test_a_profile_option_without_profiles_is_refused():
    with pytest.raises(ProfileError, match="no profiles"):
        choose_profile([], {"profile": "small"})


def test_form_offers_every_profile_default_checked_and_escaped():
    html = render_form(parse_profiles(RAW))
    assert html.count('type="radio"') == 2
    assert 'value="large" checked' in html and 'value="small" checked' not in html
    assert "&lt;GPU-less&gt;" in html and "<GPU-less>" not in html
    assert render_form([]) == ""


def test_form_data_becomes_user_options():
    assert options_from_form({"profile": ["small"]}) == {"profile": "small"}
    assert options_from_form({}) == {}
