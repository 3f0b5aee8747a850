"""DevPlane's JupyterHub configuration, driven entirely by environment variables.

The Helm chart, the local demo and the tests all run this same file; docs/hub-config.md lists
every variable with its default and a Keycloak and a Dex example. Anything not covered can be
added with DEVPLANE_HUB_EXTRA_CONFIG (a Python file loaded last, with the same ``c``).
"""

import json
import sys
from pathlib import Path

from devplane_spawner import culling, hubaudit, hubsecurity
from devplane_spawner.authenticator import DevPlaneOAuthenticator
from devplane_spawner.hubsettings import (
    HubSettingsError,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    load_json,
    load_profiles,
    oidc_endpoints,
    secret_value,
    traitlets_config,
)

c = get_config()

# ------------------------------------------------------------------ network and storage
# The public side is served by configurable-http-proxy, started separately (its own pod in the
# chart, its own process in the demo) so a hub restart never drops users' connections.
public_url = hubsecurity.public_url()
c.JupyterHub.bind_url = hubsecurity.bind_url(public_url)
if public_url:
    # Redirects and the Secure flag follow it, not a request's X-Forwarded-Proto.
    c.JupyterHub.public_url = public_url
# The hub's cookies, and the servers' through JUPYTERHUB_COOKIE_OPTIONS.
c.JupyterHub.tornado_settings = {
    "cookie_options": hubsecurity.cookie_options(public_url),
    # JupyterHub's request log, plus the audit events (login, logout, server start and stop
    # with who asked) as JSON lines on standard output: docs/audit.md.
    "log_function": hubaudit.log_request,
}
c.JupyterHub.hub_bind_url = env_str("DEVPLANE_HUB_BIND_URL", "http://0.0.0.0:8081")
if env_str("DEVPLANE_HUB_CONNECT_URL"):
    # How the proxy (and, unless the next says otherwise, workspaces) reach the hub.
    c.JupyterHub.hub_connect_url = env_str("DEVPLANE_HUB_CONNECT_URL")
if env_str("DEVPLANE_WORKSPACE_HUB_URL"):
    # How workspaces' auth proxies reach the hub API (their JUPYTERHUB_API_URL): the chart
    # sends them through the proxy, so no workspace pod may reach the hub's own port.
    c.DevPlaneSpawner.hub_connect_url = env_str("DEVPLANE_WORKSPACE_HUB_URL")
c.ConfigurableHTTPProxy.should_start = env_bool("DEVPLANE_PROXY_SHOULD_START", False)
c.ConfigurableHTTPProxy.api_url = env_str("DEVPLANE_PROXY_API_URL", "http://127.0.0.1:8001")
proxy_token = secret_value("DEVPLANE_PROXY_AUTH_TOKEN")
if proxy_token:
    c.ConfigurableHTTPProxy.auth_token = proxy_token  # else CONFIGPROXY_AUTH_TOKEN is used
if env_str("DEVPLANE_PROXY_COMMAND"):
    c.ConfigurableHTTPProxy.command = [env_str("DEVPLANE_PROXY_COMMAND")]

data_dir = Path(env_str("DEVPLANE_HUB_DATA_DIR", "/srv/jupyterhub"))
# The database: SQLite in the data directory by default; an external PostgreSQL when
# DEVPLANE_HUB_DB_URL (or _FILE: it holds a password) says so (docs/hub-config.md, "Database").
c.JupyterHub.db_url = secret_value("DEVPLANE_HUB_DB_URL") or (
    f"sqlite:///{data_dir}/jupyterhub.sqlite"
)
# With an external database the data directory may not persist; the cookie secret must, or
# every hub restart would log everybody out (the chart keeps it in its Secret).
c.JupyterHub.cookie_secret_file = env_str("DEVPLANE_COOKIE_SECRET_FILE") or str(
    data_dir / "jupyterhub_cookie_secret"
)
c.JupyterHub.pid_file = str(data_dir / "jupyterhub.pid")

# A hub restart (upgrade, crash, rescheduling) must never stop anybody's workspace.
c.JupyterHub.cleanup_servers = False
# Activity comes only from what each workspace's auth proxy reports (real terminal use), not
# from proxy traffic, which an open but abandoned browser tab would keep alive.
c.JupyterHub.last_activity_interval = 0
c.JupyterHub.allow_named_servers = env_bool("DEVPLANE_NAMED_SERVERS", False)
# A bound per user (with the workspace namespace's LimitRange); 0 lifts it.
c.JupyterHub.named_server_limit_per_user = env_int("DEVPLANE_NAMED_SERVER_LIMIT", 3)
# Admins may open users' terminals only with each user's server on a host of its own
# (hubsecurity.subdomain_host refuses anything less).
c.JupyterHub.admin_access = env_bool("DEVPLANE_ADMIN_ACCESS", False)
subdomain_host = hubsecurity.subdomain_host(c.JupyterHub.admin_access, public_url)
if subdomain_host:
    c.JupyterHub.subdomain_host = subdomain_host
    # __Host- cookies cannot be set from a subdomain (a user's server); they must be Secure.
    c.JupyterHub.cookie_host_prefix_enabled = subdomain_host.startswith("https://")

# ------------------------------------------------------------------ login: OIDC
# GenericOAuthenticator that also re-checks the allowed groups on every refresh (below).
c.JupyterHub.authenticator_class = DevPlaneOAuthenticator
endpoints = oidc_endpoints()
c.GenericOAuthenticator.authorize_url = endpoints["authorize_url"]
c.GenericOAuthenticator.token_url = endpoints["token_url"]
c.GenericOAuthenticator.userdata_url = endpoints["userdata_url"]
if endpoints["logout_redirect_url"]:
    c.GenericOAuthenticator.logout_redirect_url = endpoints["logout_redirect_url"]
c.GenericOAuthenticator.client_id = env_str("DEVPLANE_OIDC_CLIENT_ID")
c.GenericOAuthenticator.client_secret = secret_value("DEVPLANE_OIDC_CLIENT_SECRET")
if not c.GenericOAuthenticator.client_id:
    raise HubSettingsError("DEVPLANE_OIDC_CLIENT_ID is required")
c.GenericOAuthenticator.oauth_callback_url = env_str("DEVPLANE_OIDC_CALLBACK_URL")
# Said once at start-up: a provider refuses a login whose callback it does not list for the
# client, in its own words ("redirect_uri ..."); this is the URL to compare (troubleshooting.md).
print(
    f"devplane: OIDC login with client {c.GenericOAuthenticator.client_id!r}; callback URL "
    f"{c.GenericOAuthenticator.oauth_callback_url or '<the hub URL>/hub/oauth_callback'}: the "
    "identity provider must list exactly this redirect URI for the client",
    file=sys.stderr,
)
c.GenericOAuthenticator.scope = env_list("DEVPLANE_OIDC_SCOPES") or [
    "openid",
    "email",
    "profile",
    "groups",
]
c.GenericOAuthenticator.username_claim = env_str(
    "DEVPLANE_OIDC_USERNAME_CLAIM", "preferred_username"
)
c.GenericOAuthenticator.enable_pkce = env_bool("DEVPLANE_OIDC_PKCE", True)
c.GenericOAuthenticator.login_service = env_str("DEVPLANE_OIDC_LOGIN_SERVICE", "company login")
c.GenericOAuthenticator.validate_server_cert = env_bool("DEVPLANE_OIDC_TLS_VERIFY", True)
if env_str("DEVPLANE_OIDC_CA_FILE"):
    c.GenericOAuthenticator.http_request_kwargs = {"ca_certs": env_str("DEVPLANE_OIDC_CA_FILE")}
# Groups from a claim (userinfo) become JupyterHub groups; membership decides who may log in
# and who is an admin, re-evaluated at every login and every refresh (revocation, below).
c.GenericOAuthenticator.manage_groups = True
c.GenericOAuthenticator.auth_state_groups_key = "oauth_user." + env_str(
    "DEVPLANE_OIDC_GROUPS_CLAIM", "groups"
)
c.GenericOAuthenticator.allowed_groups = set(env_list("DEVPLANE_OIDC_ALLOWED_GROUPS"))
c.GenericOAuthenticator.admin_groups = set(env_list("DEVPLANE_OIDC_ADMIN_GROUPS"))
c.GenericOAuthenticator.allow_all = env_bool("DEVPLANE_OIDC_ALLOW_ALL", False)
c.Authenticator.admin_users = set(env_list("DEVPLANE_ADMIN_USERS"))
# Refresh the identity before each start so a removed group member cannot spawn.
c.Authenticator.refresh_pre_spawn = env_bool("DEVPLANE_OIDC_REFRESH_PRE_SPAWN", False)

# ------------------------------------------------------------------ revocation
# Auth state (the provider's tokens, encrypted) lets the hub re-read a user's groups every
# auth_refresh_age; strict refresh makes a failed one refuse that user's tokens too, which
# is what an open terminal's auth proxy re-checks. docs/hub-config.md, "Revocation".
c.Authenticator.enable_auth_state = True
c.CryptKeeper.keys = hubsecurity.auth_state_keys()
c.Authenticator.auth_refresh_age = env_int("DEVPLANE_AUTH_REFRESH_AGE", 30)
c.Authenticator.auth_refresh_strict = env_bool("DEVPLANE_AUTH_REFRESH_STRICT", True)
# The hub's login cookie, and the OAuth tokens in the servers' cookies (JupyterHub's defaults:
# 14 days for both).
c.JupyterHub.cookie_max_age_days = env_float("DEVPLANE_COOKIE_MAX_AGE_DAYS", 1)
c.JupyterHub.oauth_token_expires_in = env_int("DEVPLANE_OAUTH_TOKEN_EXPIRES_IN", 8 * 3600)

# ------------------------------------------------------------------ the spawner
c.JupyterHub.spawner_class = "devplane"
c.DevPlaneSpawner.profile_list = load_profiles()
c.DevPlaneSpawner.ai_providers = load_json("DEVPLANE_AI_PROVIDERS", [])
if env_str("DEVPLANE_GIT_IDENTITY_CLAIMS"):
    c.DevPlaneSpawner.git_identity_claims = load_json("DEVPLANE_GIT_IDENTITY_CLAIMS", {})
# Passed on only when set: the spawner's traitlets hold the defaults (docs/spawner.md).
for trait, variable in [
    ("namespace", "DEVPLANE_NAMESPACE"),
    ("hub_connect_via", "DEVPLANE_HUB_CONNECT_VIA"),
    ("image", "DEVPLANE_WORKSPACE_IMAGE"),
    ("storage_size", "DEVPLANE_STORAGE_SIZE"),
    ("storage_class", "DEVPLANE_STORAGE_CLASS"),
    ("storage_reclaim_policy", "DEVPLANE_STORAGE_RECLAIM_POLICY"),
    ("default_model", "DEVPLANE_DEFAULT_MODEL"),
    ("kubeconfig", "DEVPLANE_KUBECONFIG"),
]:
    if env_str(variable):
        setattr(c.DevPlaneSpawner, trait, env_str(variable))
for trait, variable in [
    ("start_timeout", "DEVPLANE_START_TIMEOUT"),
    ("server_token_lifetime", "DEVPLANE_SERVER_TOKEN_LIFETIME"),
    ("http_timeout", "DEVPLANE_HTTP_TIMEOUT"),
]:
    if env_str(variable):
        setattr(c.DevPlaneSpawner, trait, env_int(variable, 0))

# ------------------------------------------------------------------ services
services = []
roles = []
if env_bool("DEVPLANE_CULL_ENABLED", True):
    services.append(
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                # jupyterhub-idle-culler, judging each server by its profile's idleTimeout.
                "devplane_spawner.culling",
                f"--timeout={env_int('DEVPLANE_CULL_TIMEOUT', 3600)}",
                f"--cull-every={env_int('DEVPLANE_CULL_EVERY', 300)}",
                f"--max-age={env_int('DEVPLANE_CULL_MAX_AGE', 0)}",
                "--url="
                + hubsecurity.in_pod_hub_api_url(c.JupyterHub.hub_bind_url, c.JupyterHub.bind_url),
            ],
            # Its per-profile timeouts are added at the end, from the final profile list.
        }
    )
    # Least privilege: see users and their servers' activity, stop servers; it cannot
    # delete users, read tokens or start anything.
    roles.append(
        {
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }
    )
metrics_token = secret_value("DEVPLANE_METRICS_TOKEN")
if metrics_token:
    # Prometheus's token for /hub/metrics (JupyterHub asks for one: authenticate_prometheus):
    # a service whose only scope is reading the metrics (docs/metrics.md).
    services.append({"name": "metrics-scraper", "api_token": metrics_token})
    roles.append(
        {"name": "metrics-scraper", "scopes": ["read:metrics"], "services": ["metrics-scraper"]}
    )
automation_token = secret_value("DEVPLANE_AUTOMATION_TOKEN")
if automation_token:
    # A service account for automation (CI, provisioning scripts, the tests): manages users
    # and their servers over the REST API, nothing else.
    services.append({"name": "devplane-automation", "api_token": automation_token})
    roles.append(
        {
            "name": "devplane-automation",
            "scopes": ["admin:users", "admin:servers", "read:servers", "list:users"],
            "services": ["devplane-automation"],
        }
    )
c.JupyterHub.services = services
c.JupyterHub.load_roles = roles

# ------------------------------------------------------------------ site-specific additions
# hub.config (settings as data) first, then hub.extraConfig (Python), as Zero to JupyterHub.
if env_str("DEVPLANE_HUB_CONFIG_FILE"):
    c.merge(traitlets_config(env_str("DEVPLANE_HUB_CONFIG_FILE")))
extra = env_str("DEVPLANE_HUB_EXTRA_CONFIG")
if extra:
    load_subconfig(extra)

# The idle culler judges each server by its profile's idleTimeout (devplane_spawner/culling.py),
# from the profile list as hub.config and extraConfig left it.
for service in c.JupyterHub.services:
    if service.get("name") == "idle-culler":
        timeouts = culling.timeouts_of(c.DevPlaneSpawner.profile_list)
        service["environment"] = {culling.PROFILE_TIMEOUTS_ENV: json.dumps(timeouts)}
