"""Profiles: configuration checks, choosing from user_options, the spawn form."""

from __future__ import annotations

import pytest

from devplane_spawner.profiles import (
    ProfileError,
    choose_profile,
    options_from_form,
    parse_profile,
    parse_profiles,
    render_form,
    workspace_ai,
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


PROVIDERS = [
    {"name": "vllm", "baseURL": "http://vllm.llm.svc:8000/v1", "models": ["coder", "chat"]},
    {"name": "big", "baseURL": "http://big.llm.svc:8000/v1", "models": ["huge"]},
]


def test_a_profiles_models_are_its_llm_allow_list_and_its_limits_reach_the_workspace():
    profile = parse_profile(
        {"slug": "chat", "models": ["chat"], "llmLimits": {"tokensPerMinute": 5000}}
    )
    ai = workspace_ai(PROVIDERS, profile, "coder")
    # Only the allowed model, of the one provider that offers it; the spawner's default is
    # not allowed here, so the gateway's first allowed model is the default.
    assert ai == {
        "providers": [{**PROVIDERS[0], "models": ["chat"]}],
        "limits": {"tokensPerMinute": 5000},
    }
    assert workspace_ai(PROVIDERS, None, "coder") == {
        "providers": PROVIDERS,
        "defaultModel": "coder",
    }
    assert workspace_ai([], profile, "coder") is None


def test_an_allow_list_that_leaves_nothing_or_a_disallowed_default_is_refused():
    nothing = parse_profile({"slug": "none", "models": ["gpt-x"]})
    with pytest.raises(ProfileError, match="no configured provider offers"):
        workspace_ai(PROVIDERS, nothing, "")
    wrong = parse_profile({"slug": "w", "models": ["chat"], "model": "coder"})
    with pytest.raises(ProfileError, match="'coder' is not allowed"):
        workspace_ai(PROVIDERS, wrong, "")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"slug": "a", "models": []}, "models must be a non-empty list"),
        ({"slug": "a", "llmLimits": {"rpm": 1}}, "llmLimits may hold"),
        ({"slug": "a", "llmLimits": {"tokensPerMinute": -1}}, "whole number >= 0"),
    ],
)
def test_bad_llm_settings_of_a_profile_are_refused(raw, says):
    with pytest.raises(ProfileError, match=says):
        parse_profile(raw)
