"""Who may pass: JupyterHub OAuth identity, restricted to the owner (and admins if allowed)."""

from __future__ import annotations

from typing import Any

from jupyterhub.services.auth import HubOAuth, _ExpiringDict, check_scopes
from tornado.web import RequestHandler
from traitlets import default

# A pending login lives for the seconds between the redirect to the hub and the callback, so
# a thousand at once is far more than any one workspace's browsers start; past that the oldest
# go first. Each is at most ~1.5 KB (the capped next URL and the PKCE verifier).
MAX_PENDING_STATES = 1000
# Where to return after login. ttyd's page is the prefix itself; a longer URL is a stranger's.
MAX_NEXT_URL = 1024


class BoundedStates(_ExpiringDict):
    """HubOAuth's pending-login store, holding at most ``max_len`` states (oldest out first).

    Stock HubOAuth keeps one per cookie-less page request for 10 minutes, with the whole
    requested URL: 8,000 requests with 15 KB paths took a proxy from 71 to 192 MB.
    """

    def __init__(self, max_age: float, max_len: int = MAX_PENDING_STATES) -> None:
        super().__init__(max_age=max_age)
        self.max_len = max_len

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        while len(self.values) > self.max_len:
            del self[next(iter(self.values))]  # dicts keep insertion order: the oldest


class CookieOnlyHubOAuth(HubOAuth):
    """HubOAuth that accepts the identity only from its own HttpOnly OAuth cookie.

    Stock HubOAuth also takes ``?token=`` from the URL on WebSocket requests (and on any
    request when ``allow_token_in_url``) and an ``Authorization`` header. A token in a URL ends
    up in browser history, proxy logs and Referer headers, and this proxy has no API clients,
    so both are switched off here rather than by configuration that could be undone.
    """

    def _get_token_url(self, handler: RequestHandler) -> str:
        return ""

    def get_token(self, handler: RequestHandler, in_cookie: bool = True) -> str | None:
        return self._get_token_cookie(handler) if in_cookie else None

    @default("_oauth_states")
    def _bounded_oauth_states(self) -> BoundedStates:
        return BoundedStates(max_age=self.oauth_state_max_age)

    def generate_state(self, next_url: str | None = None, **extra_state: Any) -> str:
        if next_url and len(next_url) > MAX_NEXT_URL:
            next_url = self.base_url
        state: str = super().generate_state(next_url, **extra_state)
        return state


def is_allowed(
    user: dict[str, Any], owner: str, access_scopes: set[str], allow_admin_access: bool
) -> bool:
    """Decide whether an identified hub user may use this workspace.

    The owner always may. Anyone else needs ``allow_admin_access`` *and* an access scope for
    this server granted by the hub (the hub grants it to admins when its ``admin_access`` is
    on, or to users the owner shared the server with), so neither side alone opens the door.
    """
    if user.get("kind", "user") != "user":
        return False
    granted = set(user.get("scopes") or [])
    has_scope = not access_scopes or bool(check_scopes(access_scopes, granted))
    if user.get("name") == owner:
        return has_scope
    return allow_admin_access and has_scope
