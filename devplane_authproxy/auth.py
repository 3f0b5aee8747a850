"""Who may pass: JupyterHub OAuth identity, restricted to the owner (and admins if allowed)."""

from __future__ import annotations

from typing import Any

from jupyterhub.services.auth import HubOAuth, check_scopes
from tornado.web import RequestHandler


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
