"""Logging in to DevPlane's hub through a real OpenID Connect provider.

The provider (hack/oidc/server.mjs, the npm oidc-provider) requires PKCE and checks passwords;
the hub is configured only through hub_config/jupyterhub_config.py's env vars, with discovery
of the endpoints from the issuer at start-up.
"""

from __future__ import annotations

from devplane_dev.auditlog import audit_events
from devplane_dev.login import login
from devplane_dev.poll import wait_for
from hub_testdata import USERS, login_stack


def test_member_of_the_allowed_group_logs_in_and_sees_the_profiles(login_stack):
    hub, _ = login_stack
    session, page = login(hub.url, "alice", USERS["alice"].password)
    assert page.status_code == 200, page.text[:2000]
    # After the callback the hub sends a user without a server to the spawn page, which shows
    # the profile form instead of starting anything.
    assert page.url.startswith(f"{hub.url}/hub/spawn"), page.url
    for slug in ("small", "large", "broken-image"):
        assert f'value="{slug}"' in page.text
    model = hub.api("GET", "/users/alice").json()
    assert model["name"] == "alice" and model["admin"] is False
    assert "devplane-users" in model["groups"]
    # The session cookie works: the home page is served, not a redirect to the login page.
    assert session.get(f"{hub.url}/hub/home", allow_redirects=False).status_code == 200
    # The login is in the hub's audit stream; so is the logout.
    (login_event, *_) = audit_events(hub.log(), "login", user="alice")
    assert login_event["component"] == "hub" and login_event["admin"] is False
    assert login_event["remote"] and login_event["schema"] == "devplane.audit/v1"
    session.get(f"{hub.url}/hub/logout")
    wait_for("the logout audit event", lambda: audit_events(hub.log(), "logout", user="alice"), 10)


def test_wrong_password_is_refused_by_the_provider(login_stack):
    hub, _ = login_stack
    session, page = login(hub.url, "alice", "not-the-password")
    assert page.status_code == 401 and "Invalid username or password" in page.text
    assert session.get(f"{hub.url}/hub/home", allow_redirects=False).status_code == 302


def test_user_outside_the_allowed_groups_is_refused(login_stack):
    hub, _ = login_stack
    session, page = login(hub.url, "mallory", USERS["mallory"].password)
    assert page.status_code == 403, (page.status_code, page.url)
    assert hub.api("GET", "/users/mallory").status_code == 404  # never became a hub user
    # And no session: the hub still sends the browser to the login page.
    home = session.get(f"{hub.url}/hub/home", allow_redirects=False)
    assert home.status_code == 302 and "/hub/login" in home.headers["Location"]


def test_member_of_the_admin_group_is_an_admin(login_stack):
    hub, _ = login_stack
    session, page = login(hub.url, "root", USERS["root"].password)
    assert page.status_code == 200, page.text[:2000]
    model = hub.api("GET", "/users/root").json()
    assert model["admin"] is True
    assert {"devplane-users", "devplane-admins"} <= set(model["groups"])
    admin_page = session.get(f"{hub.url}/hub/admin")
    assert admin_page.status_code == 200


def test_a_missing_groups_claim_is_named_in_the_hub_log(tmp_path):
    """The test provider sends the groups claim only for the `groups` scope (as many do):
    without it nobody is in an allowed group, and the hub says which claim is missing and how
    to ask for it, besides refusing the login."""
    scopes = {"DEVPLANE_OIDC_SCOPES": "openid,profile,email"}
    with login_stack(tmp_path, [USERS["alice"]], **scopes) as (hub, _):
        _, page = login(hub.url, "alice", USERS["alice"].password)
        assert page.status_code == 403, (page.status_code, page.url)
        wait_for("the hub's line about the missing claim",
                 lambda: "The identity provider sent no 'groups' claim for 'alice'" in hub.log(),
                 10)  # fmt: skip
        log = hub.log()
    assert "Ask for the scope that carries it (hub.oidc.scopes" in log
    # And the callback the provider must list, said once at start-up.
    assert (
        f"devplane: OIDC login with client 'devplane-hub'; callback URL {hub.url}/hub/"
        "oauth_callback: the identity provider must list exactly this redirect URI"
    ) in log, log[-3000:]
