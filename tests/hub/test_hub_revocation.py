"""Revocation at the hub: what the identity provider or a logout takes away is taken away.

Auth state (the provider's tokens, encrypted) lets the hub re-read a user every
auth_refresh_age; a refresh that finds them out of the allowed groups fails, and strict
refresh makes the hub refuse that user's tokens too (which is what a terminal's auth proxy
re-checks), not only their cookie. The hub's own cookie lasts a day, not JupyterHub's 14.
The provider is the real test IdP; a group change there is made the way an admin makes it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import pytest
import requests
from devplane_dev.hub import Hub
from devplane_dev.login import login
from devplane_dev.oidc import ADMINS_GROUP, USERS_GROUP, OidcProvider, OidcUser
from devplane_dev.poll import wait_for
from hub_testdata import login_stack

REFRESH_AGE = 3  # seconds; the hub's default is 30
COOKIE_AGE = 15  # seconds; the hub's default is a day (JupyterHub's: 14 days)
USERS = {
    u.username: u
    for u in (
        OidcUser("dora", "dora-pw"),
        OidcUser("finn", "finn-pw"),
        OidcUser("gabe", "gabe-pw"),
        OidcUser("hana", "hana-pw", (USERS_GROUP, ADMINS_GROUP)),
    )
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[Hub, OidcProvider]]:
    ages = {
        "DEVPLANE_AUTH_REFRESH_AGE": str(REFRESH_AGE),
        "DEVPLANE_COOKIE_MAX_AGE_DAYS": str(COOKIE_AGE / 86400),
    }
    with login_stack(tmp_path_factory.mktemp("hub-revocation"), USERS.values(), **ages) as s:
        yield s


def logged_in(hub: Hub, name: str) -> tuple[requests.Session, requests.Response]:
    session, page = login(hub.url, name, USERS[name].password)
    assert page.status_code == 200, page.text[:2000]
    return session, page


def own_token(hub: Hub, session: requests.Session, name: str) -> str:
    """An API token the user makes for themselves (as the hub's token page does)."""
    reply = session.post(
        f"{hub.url}/hub/api/users/{name}/tokens",
        json={"note": "revocation test"},
        headers={"X-XSRFToken": session.cookies["_xsrf"]},
        timeout=30,
    )
    assert reply.status_code == 201, reply.text
    return reply.json()["token"]


def as_token(hub: Hub, token: str) -> requests.Response:
    return requests.get(
        f"{hub.url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=30
    )


def test_auth_state_is_kept_encrypted(stack):
    hub, _ = stack
    logged_in(hub, "finn")
    state = hub.user_model("finn")["auth_state"]
    assert state and state["access_token"], state  # what the hub re-checks users with
    with sqlite3.connect(hub.workdir / "jupyterhub.sqlite") as db:
        (stored,) = db.execute(
            "SELECT encrypted_auth_state FROM users WHERE name = ?", ("finn",)
        ).fetchone()
    assert stored and state["access_token"].encode() not in stored


def test_the_hub_login_cookie_is_refused_once_its_max_age_is_over(stack):
    hub, _ = stack
    session, _ = logged_in(hub, "gabe")
    signed_in = time.monotonic()
    assert session.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30).status_code == 200
    # The hub checks the age signed into the cookie, whatever the browser keeps.
    time.sleep(max(0.0, signed_in + COOKIE_AGE + 1 - time.monotonic()))
    home = session.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 302 and "/hub/login" in home.headers["Location"]


def seconds_until(
    hub: Hub, oidc: OidcProvider, name: str, groups: list[str], check
) -> tuple[float, requests.Session]:
    """Log ``name`` in, then set their groups at the provider to ``groups`` as an admin would;
    return how long until ``check`` holds for the hub's answer to their own API token, and
    their browser session."""
    session, _ = logged_in(hub, name)
    token = own_token(hub, session, name)
    assert as_token(hub, token).status_code == 200 and not check(as_token(hub, token))
    oidc.set_groups(name, groups)
    changed = time.monotonic()
    wait_for(f"the hub to see {name}'s new groups", lambda: check(as_token(hub, token)),
             timeout=REFRESH_AGE + 30, interval=0.2)  # fmt: skip
    return time.monotonic() - changed, session


def test_removal_from_the_allowed_groups_reaches_tokens_within_the_refresh_age(stack):
    hub, oidc = stack
    latency, session = seconds_until(hub, oidc, "dora", [], lambda r: r.status_code == 403)
    print(f"allowed-group removal reached token requests in {latency:.1f}s")
    assert latency <= REFRESH_AGE + 2
    # Her browser session is gone too: the hub sends her to log in, where the provider's
    # answer is no longer good enough.
    home = session.get(f"{hub.url}/hub/home", allow_redirects=False, timeout=30)
    assert home.status_code == 302 and "/hub/login" in home.headers["Location"]


def test_removal_from_the_admin_groups_reaches_the_hub_within_the_refresh_age(stack):
    hub, oidc = stack
    latency, _ = seconds_until(
        hub, oidc, "hana", [USERS_GROUP], lambda reply: reply.json()["admin"] is False
    )
    print(f"admin-group removal reached the hub in {latency:.1f}s")
    assert latency <= REFRESH_AGE + 2
    assert hub.user_model("hana")["admin"] is False
