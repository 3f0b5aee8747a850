"""Log in to a hub the way a browser does: through the login form, never around it.

One helper for both kinds of login the harness meets: the OIDC provider's form (the hub
redirects there from /hub/oauth_login) and JupyterHub's own form (/hub/login, with its
hidden _xsrf field). The same form reader submits the hub's "authorize access" page.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin

import requests


class Form(HTMLParser):
    """The first <form> of a page: its action and the fields a browser would submit."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: list[tuple[str, str]] = []
        self._in_form = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = a.get("action") or ""
            self._in_form = True
        elif tag == "input" and self._in_form and a.get("name"):
            if a.get("type") in {"checkbox", "radio"} and "checked" not in a:
                return  # a browser sends only what is ticked
            self.fields.append((a["name"] or "", a.get("value") or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False

    def submit(self, session: requests.Session, page: requests.Response, **values: str):
        """POST the form as ``page``'s browser would, with ``values`` typed in."""
        data = dict(self.fields) | values
        return session.post(urljoin(page.url, self.action or page.url), data=data, timeout=60)


def login(
    hub_url: str, username: str, password: str, start: str = "/hub/oauth_login"
) -> tuple[requests.Session, requests.Response]:
    """Open ``start`` on the hub, fill in the login form it leads to, submit it.

    Returns the session (with the hub's cookies when the login worked) and the last response
    of the redirect chain. ``start="/hub/login"`` is the hub's own form (DummyAuthenticator).
    """
    session = requests.Session()
    page = session.get(f"{hub_url}{start}", timeout=30)
    page.raise_for_status()
    form = Form(page.text)
    if form.action is None or not {"username", "password"} <= {n for n, _ in form.fields}:
        raise AssertionError(f"no login form at {page.url}:\n{page.text[:2000]}")
    return session, form.submit(session, page, username=username, password=password)
