"""The hub's authenticator: GenericOAuthenticator that also re-checks who may log in on refresh.

With auth state, the hub re-reads a user's identity-provider record every auth_refresh_age
(oauthenticator's refresh_user), which updates their groups and admin flag. It does not ask
again whether the user is still allowed in: someone removed from the allowed groups kept
their session and every token until they logged in again. Here a refresh that finds the user
no longer allowed fails, and the hub (auth_refresh_strict) then refuses that user's cookies
and tokens alike, including the OAuth token an open terminal's auth proxy re-checks.
"""

from __future__ import annotations

from typing import Any

from oauthenticator.generic import GenericOAuthenticator


class DevPlaneOAuthenticator(GenericOAuthenticator):
    """Configured as GenericOAuthenticator (its config section applies unchanged)."""

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> Any:
        model = await super().refresh_user(user, handler, **kwargs)
        if isinstance(model, dict) and not await self.check_allowed(user.name, model):
            self.log.warning(
                "%s is no longer allowed by the identity provider: refusing their session",
                user.name,
            )
            return False
        return model
