"""Profiles: configuration checks, choosing from user_options, the spawn form."""

from __future__ import annotations

import re

import pytest

from devplane_spawner.profiles import (
    ProfileError,
    choose_profile,
    options_from_form,
    parse_profile,
    parse_profiles,
    render_form,
    workspace_ai,
    workspace_extras,
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


# ------------------------------------------------------------------ KubeSpawner's format

# A Zero to JupyterHub singleuser.profileList, as an admin migrating would bring it.
KUBESPAWNER = [
    {
        "display_name": "Small (default)",
        "description": "1 CPU, 2 GiB",
        "default": True,
        "kubespawner_override": {"cpu_limit": 1, "cpu_guarantee": 0.25, "mem_limit": "2G"},
    },
    {
        "display_name": "Data science",
        "slug": "datasci",
        "kubespawner_override": {"mem_guarantee": "1G", "mem_limit": "8G"},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "py311": {
                        "display_name": "Python 3.11",
                        "kubespawner_override": {"image": "registry.local/ds:3.11"},
                    },
                    "py312": {
                        "display_name": "Python 3.12",
                        "default": True,
                        "kubespawner_override": {"image": "registry.local/ds:3.12"},
                    },
                },
            }
        },
    },
]


def test_kubespawner_profiles_become_devplane_profiles():
    small, ds312, ds311 = parse_profiles(KUBESPAWNER)  # the default choice first
    assert small.slug == "small-default" and small.default  # KubeSpawner's slug rule
    assert small.resources == {"limits": {"cpu": "1000m", "memory": "2Gi"},
                               "requests": {"cpu": "250m"}}  # fmt: skip
    # One profile per choice, the choice's override on top of the profile's.
    assert (ds311.slug, ds312.slug) == ("datasci-py311", "datasci-py312")
    assert ds312.display_name == "Data science: Python 3.12"
    assert ds312.image == "registry.local/ds:3.12"
    assert ds312.resources == {"requests": {"memory": "1Gi"}, "limits": {"memory": "8Gi"}}
    assert not ds311.default and not ds312.default  # the list's default is "small-default"


def test_kubespawner_user_options_pick_the_choice():
    profiles = parse_profiles(KUBESPAWNER)
    pick = lambda options: choose_profile(profiles, options).slug  # noqa: E731
    assert pick({"profile": "datasci", "image": "py311"}) == "datasci-py311"
    assert pick({"profile": "datasci"}) == "datasci-py312"  # the option's default choice
    assert pick({"profile": "datasci-py311"}) == "datasci-py311"  # DevPlane's own way
    assert pick({}) == "small-default"
    with pytest.raises(
        ProfileError, match=r"has no choice .*py310.*choices: image=py312; image=py311"
    ):
        pick({"profile": "datasci", "image": "py310"})
    with pytest.raises(ProfileError, match="has no option\\(s\\) gpu; its options: image"):
        pick({"profile": "datasci", "gpu": "a100"})


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ({"image_pull_policy": "Always"}, r"image_pull_policy \(set by the chart's workspaces\."),
        ({"lifecycle_hooks": {}}, "no DevPlane meaning: lifecycle_hooks"),
        ({"environment": {"A": {"valueFrom": {}}}}, "environment must map names to plain strings"),
        ({"privileged": True}, "workspaces never run privileged"),
        ({"mem_limit": "lots"}, "mem_limit='lots' is not a KubeSpawner byte size"),
        ({"cpu_limit": "2"}, "cpu_limit='2' is not a number of CPUs"),
    ],
)
def test_kubespawner_keys_without_a_devplane_meaning_are_refused_by_name(override, says):
    with pytest.raises(ProfileError, match=says):
        parse_profiles([{"display_name": "X", "kubespawner_override": override}])


def test_free_form_kubespawner_choices_are_refused():
    option = {"choices": {"a": {}}, "unlisted_choice": {"enabled": True}}
    with pytest.raises(ProfileError, match="unlisted_choice lets a user type any value"):
        parse_profiles([{"display_name": "X", "profile_options": {"image": option}}])


def test_kubespawner_placement_and_environment_become_the_workspaces():
    (gpu,) = parse_profiles([{
        "display_name": "GPU",
        "kubespawner_override": {
            "node_selector": {"pool": "gpu"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "environment": {"CUDA_VISIBLE_DEVICES": "0"},
        },
    }])  # fmt: skip
    extras = workspace_extras(gpu)
    assert extras["scheduling"] == {
        "nodeSelector": {"pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
    }
    assert extras["extraEnv"] == [{"name": "CUDA_VISIBLE_DEVICES", "value": "0"}]
    # A profile without any: None each, so a restart clears what an earlier profile set.
    (plain,) = parse_profiles([{"slug": "plain"}])
    assert workspace_extras(plain) == {"scheduling": None, "extraEnv": None, "extraVolumes": None}


def test_kubespawner_slugs_and_merges_and_default_choices_are_kubespawners():
    """Slugs as python-slugify makes them (KubeSpawner's), mapping overrides merged as
    KubeSpawner merges them, and with no profile marked default the first profile with its
    default choices."""
    raw = [
        {
            "display_name": "Größe L, 1,000 cores",
            "kubespawner_override": {"environment": {"A": "1"}, "node_selector": {"pool": "x"}},
            "profile_options": {
                "size": {
                    "choices": {
                        "s": {"kubespawner_override": {"environment": {"B": "2"}}},
                        "m": {
                            "default": True,
                            "kubespawner_override": {"node_selector": {"pool": None, "m": "1"}},
                        },
                    }
                }
            },
        }
    ]
    first, second = parse_profiles(raw)
    assert first.slug == "grosse-l-1000-cores-m"  # the default choice, first
    assert first.node_selector == {"m": "1"}  # None removes, as in KubeSpawner
    assert first.extra_env == {"A": "1"}
    assert second.slug == "grosse-l-1000-cores-s"
    assert second.extra_env == {"A": "1", "B": "2"}  # merged, not replaced
    assert second.node_selector == {"pool": "x"}
    assert choose_profile([first, second], {}) == first


@pytest.mark.parametrize(
    ("extras", "says"),
    [
        ({"extraEnv": {"HOME": "/"}}, "HOME is set by DevPlane itself"),
        ({"kubespawner_override": {"environment": {"GIT_CONFIG_COUNT": "1"}}},
         "GIT_CONFIG_COUNT is set by DevPlane itself"),
        ({"extraVolumes": [{"name": "h", "mountPath": "/home/dev", "emptyDir": {}}]},
         "is where the workspace keeps its own files"),
        ({"extraVolumes": [{"name": "h", "mountPath": "/d",
                            "persistentVolumeClaim": {"claimName": "home-bob"}}]},
         "a workspace's own object"),
    ],
)  # fmt: skip
def test_a_profiles_extras_are_checked_when_the_hub_starts(extras, says):
    """The same rules as the operator's (devplane_api.extras), said at start-up and not at a
    user's spawn."""
    with pytest.raises(ProfileError, match=re.escape(says)):
        parse_profiles([{"display_name": "X", **extras}])
