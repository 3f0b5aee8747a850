"""`make demo`'s settings and the values it installs the chart with: pure functions, no cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
from devplane_dev.demo import DEFAULT_NAMESPACE, DEFAULT_STATE, DemoSettings, SettingsError
from devplane_dev.installed import LLM_KEY_SECRET, MODELS, Installed, LlmEndpoint, build_values


class FakeProvider:
    client_id = "devplane-hub"
    issuer = "http://10.222.0.1:41234"


def test_defaults_install_the_stand_in_in_the_devplane_namespace() -> None:
    settings = DemoSettings.from_env({})
    assert settings.namespace == DEFAULT_NAMESPACE
    assert settings.state == DEFAULT_STATE
    assert settings.llm == LlmEndpoint(url=None, models=MODELS, api_key=None)


def test_a_real_endpoint_with_its_models_and_key() -> None:
    settings = DemoSettings.from_env(
        {
            "DEVPLANE_DEMO_LLM_URL": "http://gpu-box:8000/v1",
            "DEVPLANE_DEMO_LLM_MODEL": " qwen-coder , llama ",
            "DEVPLANE_DEMO_LLM_API_KEY": "k",
            "DEVPLANE_DEMO_NAMESPACE": "dp",
            "DEVPLANE_DEMO_STATE": "/tmp/dp-state",
        }
    )
    assert settings.llm.models == ("qwen-coder", "llama")
    assert settings.llm.target == ("gpu-box", 8000)
    assert settings.llm.path == "/v1"
    assert settings.llm.api_key == "k"
    assert (settings.namespace, settings.state) == ("dp", Path("/tmp/dp-state"))


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"DEVPLANE_DEMO_LLM_URL": "http://gpu:8000/v1"}, "needs DEVPLANE_DEMO_LLM_MODEL"),
        ({"DEVPLANE_DEMO_LLM_MODEL": "m"}, "applies to DEVPLANE_DEMO_LLM_URL only"),
        (
            {"DEVPLANE_DEMO_LLM_URL": "https://gpu:8443/v1", "DEVPLANE_DEMO_LLM_MODEL": "m"},
            "must be an http:// URL",
        ),
        ({"DEVPLANE_DEMO_LLM_URL": "gpu:8000", "DEVPLANE_DEMO_LLM_MODEL": "m"}, "http://"),
        ({"DEVPLANE_DEMO_PORT": "8000"}, "DEVPLANE_DEMO_PORT no longer apply"),
    ],
)
def test_wrong_settings_are_refused_saying_how_to_fix_them(env: dict, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        DemoSettings.from_env(env)


def test_values_offer_a_profile_per_model_and_name_the_key_secret() -> None:
    values = build_values("127.0.0.1:5000", "http://n:30080", FakeProvider(),  # type: ignore[arg-type]
                          "http://n:9/v1", ("a", "b"), llm_key=True)  # fmt: skip
    (provider,) = values["llm"]["providers"]
    assert provider["models"] == ["a", "b"] and values["llm"]["defaultModel"] == "a"
    assert provider["apiKeySecretRef"] == {"name": LLM_KEY_SECRET, "key": "api-key"}
    profiles = values["hub"]["profiles"]
    assert [p["slug"] for p in profiles] == ["standard", "chat"] and profiles[1]["model"] == "b"
    one = build_values("r", "http://n:30080", FakeProvider(), "http://n:9/v1", ("a",))  # type: ignore[arg-type]
    assert [p["slug"] for p in one["hub"]["profiles"]] == ["standard"]
    assert "apiKeySecretRef" not in one["llm"]["providers"][0]


def test_an_installation_is_carried_to_another_process(tmp_path: Path) -> None:
    installed = Installed("http://n:30080", "dp", "dp-workspaces", "devplane", Path("/bin"),
                          ("a", "b"), api_token="t0k")  # fmt: skip
    path = tmp_path / "installed.json"
    installed.save(path)
    assert path.stat().st_mode & 0o077 == 0  # the token is not for other users
    assert Installed.load(path) == installed
