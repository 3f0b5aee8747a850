"""Open terminals keep being earned: the identity behind each is re-checked with the hub.

A terminal's WebSocket can stay open for days, long after the cookie that opened it was
logged out or its token revoked. So every ``identity_max_age`` seconds the token that opened
it is checked with the hub again, uncached, and the terminal is closed when the hub no longer
confirms it, or no longer grants this user the workspace. While the hub cannot be reached
(a hub restart) the terminal stays open and the check is repeated: a revocation is recorded
in the hub, and the first check that reaches it sees it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tornado.web import HTTPError

from .auth import CookieOnlyHubOAuth

log = logging.getLogger("devplane.authproxy.identity")


@dataclass(frozen=True)
class IdentityWatch:
    """The identity that opened one terminal: its token (and hub session), and the rule it
    must keep passing."""

    hub_auth: CookieOnlyHubOAuth
    token: str
    session_id: str
    allowed: Callable[[dict[str, Any]], bool]
    interval: float

    async def check(self) -> str:
        """Why this identity no longer holds; "" while it does (or the hub cannot say)."""
        try:
            user = await self.hub_auth.user_for_token(
                self.token, use_cache=False, session_id=self.session_id, sync=False
            )
        except HTTPError as error:
            log.warning("could not re-check a terminal's identity: %s", error.log_message)
            return ""
        if user is None:
            return "the hub no longer confirms its token (logged out or revoked)"
        if not self.allowed(user):
            return f"{user.get('name')} may no longer use this workspace"
        return ""

    async def until_invalid(self) -> str:
        """Return, with the reason, once the identity no longer holds; re-check each interval."""
        while True:
            await asyncio.sleep(self.interval)
            if reason := await self.check():
                return reason
