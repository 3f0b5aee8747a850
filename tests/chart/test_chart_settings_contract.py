"""The chart speaks the operator's and the hub's language.

The operator reads DEVPLANE_* variables (operator/devplane_operator/settings.py) and refuses to
start on a bad one; the hub runs hub_config/jupyterhub_config.py, which reads its own. A renamed
variable on either side would silently fall back to a default in production, so these tests
feed what the chart renders to the real settings loader and to the real hub configuration
file, and compare what is set with what is read.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest
from chart_helpers import ROOT, VALUE_SETS, container_env, one
from devplane_dev.workspaces import workspace_manifest
from devplane_operator.builders import build_pod
from devplane_operator.model import parse_workspace
from devplane_operator.settings import SETTINGS, load_settings
from traitlets.config import Config

from devplane_spawner import hubsettings
from devplane_spawner.culling import PROFILE_TIMEOUTS_ENV
from devplane_spawner.profiles import choose_profile, parse_profiles

# Variables the chart sets that are not operator settings but standard ones it relies on.
OPERATOR_STANDARD_ENV = {
    "POD_NAME", "POD_NAMESPACE", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
}  # fmt: skip
HUB_STANDARD_ENV = {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"}
HUB_CONFIG = ROOT / "hub_config" / "jupyterhub_config.py"
AUTH_STATE_KEY = secrets.token_hex(32)
# Value sets that configure login; without it the hub config refuses to start (by design).
WITH_OIDC = ["airgapped", "ingress-tls"]
WORKSPACE_META = {"namespace": "devplane-workspaces", "uid": "uid-1", "generation": 1}
WORKSPACE_SPEC = {"hubSecretRef": {"name": "ws-alice-hub"}}


def _container(docs, suffix: str) -> dict:
    return one(docs, "Deployment", suffix)["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_operator_accepts_what_the_chart_passes(render, value_set: str) -> None:
    env = container_env(_container(render(value_set), "-operator"))
    known = {s.env for s in SETTINGS} | OPERATOR_STANDARD_ENV
    assert set(env) - known == set(), "the chart sets variables the operator does not read"
    plain = {k: v for k, v in env.items() if isinstance(v, str)}
    plain["POD_NAME"] = "devplane-operator-abc"
    plain["POD_NAMESPACE"] = "devplane"
    settings = load_settings([], plain)  # raises SettingsError naming the bad variable
    assert settings.namespaces == ("devplane-workspaces",)
    assert settings.hub_namespace == "devplane"
    assert settings.leader_election_namespace == "devplane"
    assert settings.leader_election_name == "devplane-operator"
    assert settings.hub_selector["app.kubernetes.io/component"] == "hub"
    assert settings.proxy_selector["app.kubernetes.io/component"] == "proxy"


def test_workspace_scheduling_reaches_every_workspace_pod(render) -> None:
    """workspaces.nodeSelector and .tolerations -> the operator's settings -> the pod it builds."""
    toleration = {"key": "dedicated", "operator": "Equal", "value": "dev", "effect": "NoSchedule"}
    docs = render(
        "airgapped",
        "--set-json", 'workspaces.nodeSelector={"dedicated": "dev", "zone": "a"}',
        "--set-json", f"workspaces.tolerations={json.dumps([toleration])}",
    )  # fmt: skip
    spec = _workspace_pod(docs)["spec"]
    assert spec["nodeSelector"] == {"dedicated": "dev", "zone": "a"}
    assert spec["tolerations"] == [toleration]
    # None by default: the pod goes wherever the scheduler puts it.
    spec = _workspace_pod(render("airgapped"))["spec"]
    assert "nodeSelector" not in spec and "tolerations" not in spec
    assert not {"affinity", "imagePullSecrets"} & set(spec)


def test_workspace_extras_reach_every_workspace_pod(render) -> None:
    """workspaces.affinity, .imagePullSecrets, .extraEnv, .extraVolumes -> the operator's
    settings -> the pod it builds (docs/workspace-api.md, "Extras")."""
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "pool", "operator": "In", "values": ["dev"]}]}]}}}  # fmt: skip
    volume = {"name": "datasets", "mountPath": "/home/dev/datasets", "readOnly": True,
              "persistentVolumeClaim": {"claimName": "team-datasets"}}  # fmt: skip
    docs = render(
        "airgapped",
        "--set-json", f"workspaces.affinity={json.dumps(affinity)}",
        "--set-json", 'workspaces.imagePullSecrets=["mirror-pull"]',
        "--set-json", 'workspaces.extraEnv={"TZ": "Europe/Berlin"}',
        "--set-json", f"workspaces.extraVolumes={json.dumps([volume])}",
    )  # fmt: skip
    spec = _workspace_pod(docs)["spec"]
    assert spec["affinity"] == affinity
    assert spec["imagePullSecrets"] == [{"name": "mirror-pull"}]
    workspace = next(c for c in spec["containers"] if c["name"] == "workspace")
    assert {"name": "TZ", "value": "Europe/Berlin"} in workspace["env"]
    assert {"name": "extra-datasets", "mountPath": "/home/dev/datasets", "readOnly": True} in (
        workspace["volumeMounts"]
    )
    assert {"name": "extra-datasets",
            "persistentVolumeClaim": {"claimName": "team-datasets"}} in spec["volumes"]  # fmt: skip


def _workspace_pod(docs) -> dict:
    """The pod the operator, configured as the chart configures it, builds for alice."""
    env = container_env(_container(docs, "-operator"))
    settings = load_settings([], {**env, "POD_NAME": "op", "POD_NAMESPACE": "devplane"})
    body = workspace_manifest("alice", "", WORKSPACE_META, **WORKSPACE_SPEC)
    return build_pod(parse_workspace(body, settings), settings)


class RecordingEnviron(dict):
    """os.environ stand-in that remembers every name the configuration looks up."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key) -> bool:
        self.read.add(key)
        return super().__contains__(key)


def _hub_env(docs, tmp_path: Path) -> dict[str, str]:
    """The hub container's environment, with its mounted files stood in by temporary ones:
    Secrets by a recognisable value, the ConfigMap's extra_config.py and hub_config.json by
    their rendered text."""
    env = {k: v for k, v in container_env(_container(docs, "-hub")).items() if isinstance(v, str)}
    for name, value in list(env.items()):
        if name.endswith("_FILE") and value.startswith("/etc/devplane/secrets/"):
            stand_in = tmp_path / name
            # A key must be one to be accepted; any other secret is recognisable text.
            text = AUTH_STATE_KEY if name == "DEVPLANE_AUTH_STATE_KEY_FILE" else f"value-of-{name}"
            stand_in.write_text(f"{text}\n")
            env[name] = str(stand_in)
    config_map = one(docs, "ConfigMap", "-hub")["data"]
    for variable, key in (
        ("DEVPLANE_HUB_EXTRA_CONFIG", "extra_config.py"),
        ("DEVPLANE_HUB_CONFIG_FILE", "hub_config.json"),
    ):
        if variable in env:
            assert env[variable] == f"/etc/jupyterhub/{key}"
            stand_in = tmp_path / key
            stand_in.write_text(config_map[key])
            env[variable] = str(stand_in)
    return env


def _load_hub_config(env: dict[str, str], monkeypatch) -> tuple[Config, RecordingEnviron]:
    recorder = RecordingEnviron(env)
    monkeypatch.setattr(os, "environ", recorder)
    # Discovery would fetch the issuer's document at start-up; answer it locally.
    monkeypatch.setattr(
        hubsettings,
        "discover_oidc",
        lambda issuer, **_: {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/auth",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
        },
    )
    config = Config()

    def run(path: str) -> None:
        """Run a config file the way JupyterHub does (get_config, load_subconfig, one `c`)."""
        code = compile(Path(path).read_text(), path, "exec")
        exec(code, {"get_config": lambda: config, "c": config, "load_subconfig": run})

    run(str(HUB_CONFIG))
    return config, recorder


@pytest.mark.parametrize("value_set", WITH_OIDC)
def test_hub_config_runs_with_what_the_chart_sets(render, value_set, tmp_path, monkeypatch):
    env = _hub_env(render(value_set), tmp_path)
    c, recorder = _load_hub_config(env, monkeypatch)

    # (Empty ones may go unread: explicit OIDC endpoints make the issuer irrelevant.)
    unread = {k for k, v in env.items() if v} - recorder.read - HUB_STANDARD_ENV
    assert unread == set(), "the chart sets variables the hub configuration never reads"

    # What the chart means is what the hub does.
    assert c.DevPlaneSpawner.namespace == "devplane-workspaces"
    assert c.JupyterHub.hub_connect_url == "http://devplane-hub.devplane.svc:8081"
    # Workspaces reach the hub API through the proxy, never the hub's own port (finding 6).
    assert c.DevPlaneSpawner.hub_connect_url == "http://devplane-proxy-public.devplane.svc:80"
    assert c.ConfigurableHTTPProxy.api_url == "http://devplane-proxy-api.devplane.svc:8001"
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.ConfigurableHTTPProxy.auth_token == "value-of-DEVPLANE_PROXY_AUTH_TOKEN_FILE"
    assert c.GenericOAuthenticator.client_id == "devplane"
    assert c.GenericOAuthenticator.client_secret == "value-of-DEVPLANE_OIDC_CLIENT_SECRET_FILE"
    assert c.JupyterHub.cleanup_servers is False
    # Auth state, encrypted with the key from the chart's Secret (a file), re-checked often.
    assert c.Authenticator.enable_auth_state is True
    assert c.CryptKeeper["keys"] == [AUTH_STATE_KEY]  # (.keys is the dict method)
    assert c.Authenticator.auth_refresh_age == 30 and c.Authenticator.auth_refresh_strict
    # A login lasts a day, a terminal's OAuth token a working day (JupyterHub: 14 days each).
    assert c.JupyterHub.cookie_max_age_days == 1
    assert c.JupyterHub.oauth_token_expires_in == 8 * 3600
    assert c.JupyterHub.named_server_limit_per_user == 3  # a bound per user by default
    assert c.DevPlaneSpawner.image.endswith(":0.1.0")
    # The idle culler: a hub service whose role allows exactly what culling needs.
    (culler,) = [s for s in c.JupyterHub.services if s["name"] == "idle-culler"]
    assert "--timeout=3600" in culler["command"]
    # ... calling the hub on loopback in its own pod, not through the hub's Service.
    base = "/devplane/" if value_set == "ingress-tls" else "/"
    assert f"--url=http://127.0.0.1:8081{base}hub/api" in culler["command"]
    (role,) = [r for r in c.JupyterHub.load_roles if r["name"] == "idle-culler"]
    assert sorted(role["scopes"]) == sorted(
        ["list:users", "read:users:activity", "read:servers", "delete:servers"]
    )
    # Cookies are Secure because the public URL is https (a TLS Ingress, or hub.publicURL),
    # not because a request said X-Forwarded-Proto; SameSite=Lax always.
    assert c.JupyterHub.tornado_settings["cookie_options"] == {"samesite": "Lax", "secure": True}
    if value_set == "ingress-tls":
        assert c.JupyterHub.bind_url == "http://0.0.0.0:8000/devplane/"
        assert c.JupyterHub.public_url == "https://devplane.example.internal/devplane/"
        assert c.GenericOAuthenticator.token_url == "https://sso.example.internal/token"
    else:
        assert c.GenericOAuthenticator.token_url.startswith("https://sso.example.internal/")
        assert c.GenericOAuthenticator.http_request_kwargs == {
            "ca_certs": "/etc/devplane/ca/ca.crt"
        }
        assert c.JupyterHub.public_url == "https://devplane.example.internal/"
        assert c.DevPlaneSpawner.ai_providers[0]["name"] == "vllm"
        assert c.DevPlaneSpawner.default_model == "qwen2.5-coder-32b"
        # hub.automationToken and hub.extraConfig reach the hub.
        (automation,) = [s for s in c.JupyterHub.services if s["name"] == "devplane-automation"]
        assert automation["api_token"] == "value-of-DEVPLANE_AUTOMATION_TOKEN_FILE"
        assert c.DevPlaneSpawner.resources["limits"] == {"cpu": "4", "memory": "8Gi"}


def test_a_zero_to_jupyterhub_values_file_means_the_same_here(render, tmp_path, monkeypatch):
    """chart/ci/z2jh-migration-values.yaml (the admin guide's migration example): KubeSpawner's
    profile list, hub.config and a map of extraConfig snippets, as the hub reads them."""
    env = _hub_env(render("z2jh-migration"), tmp_path)
    c, _ = _load_hub_config(env, monkeypatch)
    small, py312, py311 = parse_profiles(c.DevPlaneSpawner.profile_list)  # default first
    assert (small.slug, small.default) == ("small-1-cpu-2-gb", True)
    assert small.resources == {
        "limits": {"cpu": "1000m", "memory": "2Gi"},
        "requests": {"cpu": "250m", "memory": "512Mi"},
    }
    assert (py311.slug, py312.slug) == ("datasci-py311", "datasci-py312")
    assert py312.resources == {"limits": {"memory": "8Gi"}}
    assert choose_profile([small, py312, py311], {"profile": "datasci"}) == py312
    # hub.config, then the snippets in the order of their names.
    assert c.JupyterHub.shutdown_on_logout is True
    assert c.DevPlaneSpawner.start_timeout == 600
    assert c.DevPlaneSpawner.extra_labels == {"cost-center": "data-platform"}
    assert c.DevPlaneSpawner.http_timeout == 90
    # The culler knows the (absent) per-profile timeouts of the final list.
    (culler,) = [s for s in c.JupyterHub.services if s["name"] == "idle-culler"]
    assert json.loads(culler["environment"][PROFILE_TIMEOUTS_ENV]) == {}


def test_the_admin_guide_shows_the_migration_example_that_is_installed() -> None:
    guide = (ROOT / "docs" / "admin-guide.md").read_text()
    example = (ROOT / "chart" / "ci" / "z2jh-migration-values.yaml").read_text()
    assert f"```yaml\n{example}```" in guide


def test_hub_config_takes_admin_access_as_the_chart_sets_it(render, tmp_path, monkeypatch):
    """hub.adminAccess comes with per-user subdomains; the hub config accepts that pair and
    turns on the __Host- cookies that a user's subdomain cannot set."""
    login = (
        "--set",
        "hub.oidc.clientId=x",
        "--set",
        "hub.oidc.issuer=https://sso.example.internal",
        "--set",
        "networkPolicy.oidc.cidrs={10.50.0.10/32}",
    )
    c, _ = _load_hub_config(_hub_env(render("named-servers", *login), tmp_path), monkeypatch)
    assert c.JupyterHub.admin_access is True
    assert c.JupyterHub.subdomain_host == "https://devplane.example.internal"
    assert c.JupyterHub.cookie_host_prefix_enabled is True


def test_hub_without_login_refuses_to_start_naming_the_setting(render, tmp_path, monkeypatch):
    """The defaults carry no OIDC client: the hub must stop with a message, not run open."""
    env = _hub_env(render("defaults"), tmp_path)
    with pytest.raises(hubsettings.HubSettingsError, match="DEVPLANE_OIDC"):
        _load_hub_config(env, monkeypatch)


def test_culler_can_be_turned_off(render, tmp_path, monkeypatch) -> None:
    docs = render("airgapped", "--set", "culler.enabled=false")
    c, _ = _load_hub_config(_hub_env(docs, tmp_path), monkeypatch)
    assert not [s for s in c.JupyterHub.services if s["name"] == "idle-culler"]


def test_hub_config_leaves_unset_spawner_settings_to_the_spawner(monkeypatch) -> None:
    """What the environment does not set keeps the traitlet default in spawner.py (one place)."""
    login = {
        "DEVPLANE_OIDC_ISSUER": "https://sso.example.internal",
        "DEVPLANE_OIDC_CLIENT_ID": "x",
        "DEVPLANE_AUTH_STATE_KEY": AUTH_STATE_KEY,
    }
    c, _ = _load_hub_config(login, monkeypatch)
    assert set(c.DevPlaneSpawner) == {"profile_list", "ai_providers"}
    c, _ = _load_hub_config({**login, "DEVPLANE_START_TIMEOUT": "120"}, monkeypatch)
    assert c.DevPlaneSpawner.start_timeout == 120


def test_named_servers_are_limited_per_user_even_without_the_chart(monkeypatch) -> None:
    """The demo and any deployment that leaves DEVPLANE_NAMED_SERVER_LIMIT unset get the
    same bound as the chart's default; 0 lifts it explicitly (issue 13, finding 7)."""
    login = {
        "DEVPLANE_OIDC_ISSUER": "https://sso.example.internal",
        "DEVPLANE_OIDC_CLIENT_ID": "x",
        "DEVPLANE_AUTH_STATE_KEY": AUTH_STATE_KEY,
    }
    c, _ = _load_hub_config(login, monkeypatch)
    assert c.JupyterHub.named_server_limit_per_user == 3
    c, _ = _load_hub_config({**login, "DEVPLANE_NAMED_SERVER_LIMIT": "0"}, monkeypatch)
    assert c.JupyterHub.named_server_limit_per_user == 0
