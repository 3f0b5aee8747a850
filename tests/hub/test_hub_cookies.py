"""The hub's cookies: Secure whenever its public URL is https, SameSite=Lax always.

Behind an Ingress, the hub cannot tell from a request whether the browser used https (the
X-Forwarded-Proto header may be missing), so the public URL decides. These hubs run behind
configurable-http-proxy on plain http, as in the cluster behind a TLS-terminating Ingress.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from devplane_dev.hub import Hub, running_hub
from devplane_dev.login import login
from hub_testdata import USERS


def set_cookies(response: requests.Response) -> list[str]:
    """The Set-Cookie headers of ``response`` that set a cookie, raw (attributes included);
    the ones that clear a cookie (an empty value, already expired) carry nothing to protect."""
    return [
        header
        for header in response.raw.headers.getlist("Set-Cookie")
        if header.split(";", 1)[0].split("=", 1)[1] not in ("", '""')
    ]


def attributes(set_cookie: str) -> set[str]:
    """The attribute names and flags of one Set-Cookie header, lower-cased (``samesite=lax``)."""
    return {part.strip().lower() for part in set_cookie.split(";")[1:]}


@pytest.fixture(scope="module")
def https_hub(tmp_path_factory) -> Iterator[Hub]:
    """A hub whose public URL is https (a TLS-terminating Ingress in front of the proxy)."""
    public = {"DEVPLANE_PUBLIC_URL": "https://devplane.example.test"}
    with running_hub(tmp_path_factory.mktemp("hub-https"), **public) as hub:
        yield hub


def test_cookies_are_secure_and_same_site_when_the_public_url_is_https(https_hub):
    seen = []
    for path in ("/hub/login", "/hub/oauth_login"):
        # Plain http to the proxy and no X-Forwarded-Proto: only the public URL says https.
        response = requests.get(f"{https_hub.url}{path}", allow_redirects=False, timeout=30)
        assert response.status_code in (200, 302), (path, response.status_code)
        seen += set_cookies(response)
    names = {header.split("=", 1)[0] for header in seen}
    assert {"_xsrf", "oauthenticator-state"} <= names, seen
    for header in seen:
        assert "secure" in attributes(header), header
        assert "samesite=lax" in attributes(header), header


def test_a_real_login_over_http_sets_same_site_cookies_only(login_stack):
    """The http hub of the login tests (public URL http://127.0.0.1:<port>): no Secure, which
    a browser would refuse over http, but SameSite=Lax on every cookie it sets, session
    cookies included."""
    hub, _ = login_stack
    _, page = login(hub.url, "bob", USERS["bob"].password)
    assert page.status_code == 200, page.text[:2000]
    from_hub = [
        header
        for response in (*page.history, page)
        if response.url.startswith(hub.url)
        for header in set_cookies(response)
    ]
    names = {header.split("=", 1)[0] for header in from_hub}
    assert {"jupyterhub-hub-login", "jupyterhub-session-id"} <= names, from_hub
    for header in from_hub:
        assert "samesite=lax" in attributes(header), header
        assert "secure" not in attributes(header), header
