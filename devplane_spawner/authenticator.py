"""The hub's authenticator: GenericOAuthenticator that also re-checks who may log in on refresh.

With auth state, the hub re-reads a user's identity-provider record every auth_refresh_age
(oauthenticator's refresh_user), which updates their groups and admin flag. It does not ask
again whether the user is still allowed in: someone removed from the allowed groups kept
their session and every token until they logged in again. Here a refresh that finds the user
no longer allowed fails, and the hub (auth_refresh_strict) then refuses that user's cookies
and tokens alike, including the OAuth token an open terminal's auth proxy re-checks. A user
without auth state is not re-checked (docs/hub-config.md, "Revocation").
"""

from __future__ import annotations

from typing import Any

from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthLogoutHandler

from . import hubaudit


class AuditedLogoutHandler(OAuthLogoutHandler):
    """oauthenticator's logout, plus the ``logout`` audit event: written here because the hub
    forgets who it logged out before the request log could say so."""

    async def handle_logout(self) -> None:
        if self.current_user is not None:
            try:
                hubaudit.logout(self, self.current_user)
            except Exception:  # an audit line must never fail a logout
                self.log.exception("could not write the logout audit event")
        await super().handle_logout()


class DevPlaneOAuthenticator(GenericOAuthenticator):
    """Configured as GenericOAuthenticator (its config section applies unchanged)."""

    logout_handler = AuditedLogoutHandler

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        """oauthenticator's, saying what to fix when the provider sent no groups claim (its
        own message lists only the auth state's top-level keys)."""
        key = self.auth_state_groups_key
        if isinstance(key, str) and key.startswith(f"{self.user_auth_state_key}."):
            claim = key.split(".", 1)[1]
            claims = auth_state.get(self.user_auth_state_key) or {}
            if isinstance(claims, dict) and claim not in claims:
                name_claim = self.username_claim
                who = claims.get(name_claim) if isinstance(name_claim, str) else ""
                self.log.error(
                    "The identity provider sent no %r claim for %r, so they are in no group "
                    "and allowedGroups/adminGroups cannot match them. The claims it sent: %s. "
                    "Ask for the scope that carries it (hub.oidc.scopes, e.g. add \"groups\"), "
                    "or name the claim your provider uses (hub.oidc.groupsClaim)",
                    claim, who or "?", ", ".join(sorted(claims)) or "none",
                )  # fmt: skip
                return set()
        groups: set[str] = await super().get_user_groups(auth_state)
        return groups

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> Any:
        if not await user.get_auth_state():
            # Never logged in through the provider (an admin or automation made the user and
            # started their server) or not since auth state was turned on: there is nothing
            # to re-check, and failing would refuse their server's own token (its activity
            # reports) under strict refresh. Their next login stores auth state.
            return True
        model = await super().refresh_user(user, handler, **kwargs)
        if isinstance(model, dict) and not await self.check_allowed(user.name, model):
            self.log.warning(
                "%s is no longer allowed by the identity provider: refusing their session",
                user.name,
            )
            return False
        return model
