"""hub_config's settings: typed env vars, secrets from files, profiles, OIDC discovery."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from devplane_spawner import hubsecurity
from devplane_spawner import hubsettings as hs


def test_typed_values_and_errors_name_the_variable():
    env = {"A": "yes", "B": "off", "C": "maybe", "N": "12", "BAD": "1.5", "L": " x, y ,,"}
    assert hs.env_bool("A", False, env) is True
    assert hs.env_bool("B", True, env) is False
    assert hs.env_bool("MISSING", True, env) is True
    with pytest.raises(hs.HubSettingsError, match="C='maybe'"):
        hs.env_bool("C", False, env)
    assert hs.env_int("N", 0, env) == 12
    with pytest.raises(hs.HubSettingsError, match="BAD"):
        hs.env_int("BAD", 0, env)
    assert hs.env_list("L", env) == ["x", "y"]


def test_secret_from_file_wins(tmp_path):
    path = tmp_path / "secret"
    path.write_text("from-file\n")
    env = {"S": "inline", "S_FILE": str(path)}
    assert hs.secret_value("S", env) == "from-file"
    assert hs.secret_value("S", {"S": "inline"}) == "inline"
    with pytest.raises(hs.HubSettingsError, match="S_FILE"):
        hs.secret_value("S", {"S_FILE": str(tmp_path / "missing")})


def test_profiles_from_json_or_yaml_file(tmp_path):
    inline = [{"slug": "small"}]
    assert hs.load_profiles({"DEVPLANE_PROFILES": json.dumps(inline)}) == inline
    yaml_file = tmp_path / "profiles.yaml"
    yaml_file.write_text("profiles:\n  - slug: big\n    resources: {limits: {cpu: '4'}}\n")
    loaded = hs.load_profiles({"DEVPLANE_PROFILES_FILE": str(yaml_file)})
    assert loaded == [{"slug": "big", "resources": {"limits": {"cpu": "4"}}}]
    assert hs.load_profiles({}) == []
    with pytest.raises(hs.HubSettingsError, match="not both"):
        hs.load_profiles({"DEVPLANE_PROFILES": "[]", "DEVPLANE_PROFILES_FILE": str(yaml_file)})
    with pytest.raises(hs.HubSettingsError, match="list"):
        hs.load_profiles({"DEVPLANE_PROFILES": '{"slug": "x"}'})


@pytest.fixture
def issuer():
    """A discovery document served on a random port; the issuer is its own URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            base = f"http://127.0.0.1:{self.server.server_port}"
            body = json.dumps(
                {
                    "issuer": self.server.claimed_issuer or base,
                    "authorization_endpoint": f"{base}/auth",
                    "token_endpoint": f"{base}/token",
                    "userinfo_endpoint": f"{base}/me",
                }
            ).encode()
            ok = self.path == "/.well-known/openid-configuration"
            self.send_response(200 if ok else 404)
            self.end_headers()
            self.wfile.write(body if ok else b"")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    server.claimed_issuer = None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def test_discovery_fills_the_endpoints(issuer):
    base = f"http://127.0.0.1:{issuer.server_port}"
    found = hs.oidc_endpoints({"DEVPLANE_OIDC_ISSUER": base})
    assert found["authorize_url"] == f"{base}/auth"
    assert found["token_url"] == f"{base}/token"
    assert found["userdata_url"] == f"{base}/me"
    # An explicit endpoint wins over the discovered one.
    mixed = hs.oidc_endpoints(
        {"DEVPLANE_OIDC_ISSUER": base, "DEVPLANE_OIDC_TOKEN_URL": "https://idp/token"}
    )
    assert mixed["token_url"] == "https://idp/token" and mixed["userdata_url"] == f"{base}/me"


def test_discovery_refuses_an_issuer_mismatch(issuer):
    issuer.claimed_issuer = "https://someone-else"
    with pytest.raises(hs.HubSettingsError, match="names issuer"):
        hs.oidc_endpoints({"DEVPLANE_OIDC_ISSUER": f"http://127.0.0.1:{issuer.server_port}"})


def test_unreachable_issuer_fails_with_advice():
    env = {"DEVPLANE_OIDC_ISSUER": "http://127.0.0.1:9", "DEVPLANE_OIDC_DISCOVERY_TIMEOUT": "1"}
    with pytest.raises(hs.HubSettingsError, match="DEVPLANE_OIDC_AUTHORIZE_URL"):
        hs.oidc_endpoints(env)


def test_explicit_endpoints_need_no_issuer():
    env = {
        "DEVPLANE_OIDC_AUTHORIZE_URL": "https://idp/a",
        "DEVPLANE_OIDC_TOKEN_URL": "https://idp/t",
        "DEVPLANE_OIDC_USERINFO_URL": "https://idp/u",
    }
    assert hs.oidc_endpoints(env)["userdata_url"] == "https://idp/u"
    with pytest.raises(hs.HubSettingsError, match="DEVPLANE_OIDC_ISSUER"):
        hs.oidc_endpoints({})


def test_the_public_url_is_the_one_users_open():
    env = {"DEVPLANE_PUBLIC_URL": "https://devplane.example.com/"}
    assert hubsecurity.public_url(env) == "https://devplane.example.com/"
    assert hubsecurity.public_url({}) == ""
    # Where the proxy listens defaults to it (the demo), or is given apart (behind an Ingress).
    assert hubsecurity.bind_url("http://127.0.0.1:8000", {}) == "http://127.0.0.1:8000"
    assert hubsecurity.bind_url("", {}) == "http://0.0.0.0:8000"
    listen = {"DEVPLANE_BIND_URL": "http://0.0.0.0:8000/x/"}
    assert hubsecurity.bind_url("https://d.example.com/x/", listen) == "http://0.0.0.0:8000/x/"
    # A listening address is not a public URL: it would turn Secure cookies off.
    for wildcard in ("http://0.0.0.0:8000", "http://[::]:8000/"):
        with pytest.raises(hs.HubSettingsError, match="DEVPLANE_BIND_URL"):
            hubsecurity.public_url({"DEVPLANE_PUBLIC_URL": wildcard})
    with pytest.raises(hs.HubSettingsError, match="http"):
        hubsecurity.public_url({"DEVPLANE_PUBLIC_URL": "devplane.example.com"})


def test_services_in_the_hubs_pod_call_it_on_loopback():
    local = hubsecurity.in_pod_hub_api_url
    assert local("http://0.0.0.0:8081", "http://0.0.0.0:8000") == "http://127.0.0.1:8081/hub/api"
    assert local("http://:9000", "http://0.0.0.0:8000/devplane/") == (
        "http://127.0.0.1:9000/devplane/hub/api"
    )


def test_cookies_are_same_site_and_secure_over_https():
    assert hubsecurity.cookie_options("https://d.example.com/") == {
        "samesite": "Lax",
        "secure": True,
    }
    assert hubsecurity.cookie_options("http://127.0.0.1:8000/") == {"samesite": "Lax"}
    assert hubsecurity.cookie_options("") == {"samesite": "Lax"}


def test_admin_access_needs_per_user_subdomains_over_https():
    on = {"DEVPLANE_SUBDOMAIN_HOST": "https://devplane.example.com"}
    public = "https://devplane.example.com/"
    assert hubsecurity.subdomain_host(True, public, on) == "https://devplane.example.com"
    assert hubsecurity.subdomain_host(True, "", on) == "https://devplane.example.com"
    with pytest.raises(hs.HubSettingsError, match="DEVPLANE_SUBDOMAIN_HOST=https://<host>"):
        hubsecurity.subdomain_host(True, public, {})
    with pytest.raises(hs.HubSettingsError, match="must be https"):
        hubsecurity.subdomain_host(True, "", {"DEVPLANE_SUBDOMAIN_HOST": "http://devplane.test"})
    with pytest.raises(hs.HubSettingsError, match="without a path"):
        hubsecurity.subdomain_host(False, "", {"DEVPLANE_SUBDOMAIN_HOST": "https://d.example/h"})
    with pytest.raises(hs.HubSettingsError, match="host of DEVPLANE_PUBLIC_URL"):
        hubsecurity.subdomain_host(True, "https://other.example.com/", on)
    # Without admin access, subdomains are optional.
    assert hubsecurity.subdomain_host(False, public, {}) == ""


def test_auth_state_needs_a_32_byte_key(tmp_path):
    hex_key, b64_key = "ab" * 32, "q" * 43 + "="
    assert hubsecurity.auth_state_keys({"DEVPLANE_AUTH_STATE_KEY": hex_key}) == [hex_key]
    # Rotation: the new key first; the old one still decrypts.
    both = {"DEVPLANE_AUTH_STATE_KEY": f"{hex_key}; {b64_key}"}
    assert hubsecurity.auth_state_keys(both) == [hex_key, b64_key]
    path = tmp_path / "key"
    path.write_text(hex_key + "\n")
    assert hubsecurity.auth_state_keys({"DEVPLANE_AUTH_STATE_KEY_FILE": str(path)}) == [hex_key]
    with pytest.raises(hs.HubSettingsError, match="openssl rand -hex 32"):
        hubsecurity.auth_state_keys({})
    with pytest.raises(hs.HubSettingsError, match="key 2 is not 32 bytes"):
        hubsecurity.auth_state_keys({"DEVPLANE_AUTH_STATE_KEY": f"{hex_key};tooshort"})


def test_hub_config_is_traitlets_settings_as_data(tmp_path):
    path = tmp_path / "hub_config.json"
    path.write_text(json.dumps({"DevPlaneSpawner": {"start_timeout": 600}, "JupyterHub": {}}))
    config = hs.traitlets_config(str(path))
    assert config.DevPlaneSpawner.start_timeout == 600
    for bad, says in [
        ("[1]", "must hold a mapping of class names"),
        ('{"not a class": {}}', "'not a class' must be a configurable class name"),
        ('{"JupyterHub": 1}', "'JupyterHub' must be a configurable class name"),
        ("{", "cannot be read"),
    ]:
        path.write_text(bad)
        with pytest.raises(hs.HubSettingsError, match=says):
            hs.traitlets_config(str(path))
