"""Tornado handlers: readiness, OAuth callback, ttyd's page (the proxy's own copy) and the
terminal's WebSocket (the only thing relayed to the ttyd socket)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from types import TracebackType
from typing import Any
from urllib.parse import unquote

import jupyterhub
from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from tornado.web import Finish, HTTPError, RequestHandler

from . import audit
from .activity import ActivityTracker
from .auth import CookieOnlyHubOAuth, is_allowed
from .identity import IdentityWatch
from .logs import request_summary
from .origin import request_origin, same_origin, serialize
from .settings import ProxySettings
from .terminal_page import TerminalPage
from .upstream import TtydUpstream
from .wshandshake import (
    HandshakeError,
    browser_response,
    check_upstream_response,
    client_key,
    new_key,
    offered_protocols,
    upstream_request,
)
from .wsrelay import Link, TtydSide, open_link

log = logging.getLogger("devplane.authproxy")

# C0 controls, DEL and C1 controls: never part of a URL we serve. A percent-decoded CR LF
# written into the upstream request once started a header line of the sender's choosing.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ProxyHandler(RequestHandler):
    """What every handler of the proxy shares: how a failure reads, in the answer and the log."""

    # Why the request was refused (the HTTPError's message), for its line in the access log.
    refusal_reason = ""
    # Set when a request without identity is sent into the OAuth flow: a refusal, for the log.
    login_redirect = False

    def prepare(self) -> Any:
        """Before anything else, on every route: no control characters, raw or decoded."""
        uri = self.request.uri or ""
        if _CONTROL.search(uri) or _CONTROL.search(unquote(uri)):
            raise HTTPError(400, "control character in the URL")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """One plain-text line that says what is wrong; ``nosniff``, never HTML, because some
        messages quote the request (an Origin)."""
        error = kwargs.get("exc_info", (None, None, None))[1]
        detail = error.log_message if isinstance(error, HTTPError) else None
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(f"{status_code} {self._reason}" + (f": {detail}\n" if detail else "\n"))

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """tornado logs an HTTPError with the whole URI (query values included) and an
        uncaught one with the request's repr (its Cookie header included); here the first is
        left to the bounded access line and the second gets the bounded summary."""
        if isinstance(value, HTTPError):
            message = value.log_message or ""
            self.refusal_reason = message % value.args if value.args else message
            return
        log.error("uncaught exception in %s", request_summary(self.request), exc_info=value)


class NotFoundHandler(ProxyHandler):
    """Anything outside the routes: 404, in the proxy's own words and log line."""

    def prepare(self) -> None:
        super().prepare()
        raise HTTPError(404)


class ReadinessHandler(ProxyHandler):
    """``{prefix}api``: the hub (and the pod's readiness probe) checks that we are up.

    The hub expects ``X-JupyterHub-Version`` on this response to know it reached a
    JupyterHub-aware server. It is unauthenticated and carries no information about the user.
    """

    def get(self) -> None:
        self.set_header("X-JupyterHub-Version", jupyterhub.__version__)
        self.write({"version": jupyterhub.__version__})


class TtydTokenHandler(ProxyHandler):
    """``{prefix}token``: ttyd's page asks for its credential here before opening the socket.

    Answered by the proxy, without a round trip to ttyd, because the page fetches it with
    ``fetch()``: JupyterHub (>= 4.1) refuses cookie identity on such non-navigation requests
    unless they carry an ``_xsrf`` token, which ttyd's page cannot add, so forwarding it
    through the identity check would send the browser round the OAuth flow until it gives up.
    Nothing is disclosed: ttyd runs without ``--credential``, so its own answer is this same
    empty token, and the terminal itself (the WebSocket) stays behind the owner check.
    """

    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.write({"token": ""})


class OAuthCallbackHandler(HubOAuthCallbackHandler, ProxyHandler):
    """JupyterHub's own OAuth callback, bound to our cookie-only HubOAuth instance."""

    def initialize(self, hub_auth: CookieOnlyHubOAuth) -> None:
        self.hub_auth = hub_auth


class IdentifiedHandler(HubOAuthenticated, ProxyHandler):
    """The terminal's page and socket: only the owner (and, if allowed, admins) get either."""

    def initialize(
        self,
        settings: ProxySettings,
        hub_auth: CookieOnlyHubOAuth,
        upstream: TtydUpstream,
        tracker: ActivityTracker,
        page: TerminalPage,
    ) -> None:
        self.proxy_settings = settings
        self.hub_auth = hub_auth
        self.upstream = upstream
        self.tracker = tracker
        self.page = page

    @property
    def is_websocket(self) -> bool:
        return self.request.headers.get("Upgrade", "").lower() == "websocket"

    @property
    def is_navigation(self) -> bool:
        """A browser loading a page: GET or HEAD, not a WebSocket, and ``Sec-Fetch-Mode``
        ``navigate`` (or absent: clients older than Fetch Metadata, and curl, still get the
        login redirect; what a stranger can store that way is capped in ``BoundedStates``)."""
        mode = self.request.headers.get("Sec-Fetch-Mode", "navigate")
        return (
            self.request.method in {"GET", "HEAD"}
            and not self.is_websocket
            and mode in {"navigate", "nested-navigate"}
        )

    async def prepare(self) -> None:
        """Who is asking, before anything is served or anything reaches ttyd."""
        super().prepare()
        if self.is_websocket:
            # Browsers always send Origin on a WebSocket, so a missing one is refused too.
            origin = self.request.headers.get("Origin")
            expected = self.proxy_settings.public_origin or request_origin(self.request)
            if not same_origin(origin, expected):
                # Audited only for someone signed in (a stranger's requests would otherwise
                # write without bound; the rate-limited log counts those).
                who = await self.hub_auth.get_user(self, sync=False)
                if who is not None:
                    self.audit_refusal("bad_origin", origin=str(origin)[:200],
                                       actor=who.get("name"))  # fmt: skip
                raise HTTPError(
                    403,
                    f"WebSocket from origin {origin!r} refused: the terminal's origin is "
                    f"{serialize(expected)}",
                )
        user = await self.hub_auth.get_user(self, sync=False)
        if user is None:
            if not self.is_navigation:
                # Only a page load can follow the OAuth flow back here; anything else would
                # only cost a stored state.
                raise HTTPError(403, "not logged in")
            # The OAuth dance: state cookie + redirect to the hub's authorize URL.
            self.login_redirect = True
            self.redirect(self.get_login_url())
            raise Finish()
        if not self.allowed(user):
            self.audit_refusal("not_allowed", actor=user.get("name"))
            raise HTTPError(
                403, f"{user.get('name')} may not use {self.proxy_settings.owner}'s workspace"
            )
        self.current_user = user

    def audit_refusal(self, reason: str, **fields: Any) -> None:
        """``access.refused``: someone reached this workspace and was turned away."""
        audit.event("access.refused", user=self.proxy_settings.owner, reason=reason,
                    remote=self.request.remote_ip, path=self.request.path[:200],
                    **fields)  # fmt: skip

    def allowed(self, user: dict[str, Any]) -> bool:
        s = self.proxy_settings
        return is_allowed(user, s.owner, self.hub_auth.access_scopes, s.allow_admin_access)


class TerminalPageHandler(IdentifiedHandler):
    """``{prefix}``: ttyd's page, from the proxy's own copy (``terminal_page``), never ttyd's.

    Served with its Content-Security-Policy, no-sniff, no referrer, same-origin framing only,
    and revalidated on every load (``no-cache`` + ETag), so the identity check runs each time.
    """

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", self.page.csp)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "SAMEORIGIN")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "private, no-cache")
        self.set_header("Vary", "Accept-Encoding, Cookie")
        if "gzip" in self.request.headers.get("Accept-Encoding", ""):
            self.set_header("Content-Encoding", "gzip")
            self.write(self.page.gzipped)
        else:
            self.write(self.page.html)

    def head(self) -> None:
        self.get()


class TerminalSocketHandler(IdentifiedHandler):
    """``{prefix}ws``: the terminal, relayed to ttyd once the handshake is authenticated, and
    closed when the identity that opened it no longer holds (``identity.IdentityWatch``)."""

    async def get(self) -> None:
        if not self.is_websocket:
            raise HTTPError(400, "the terminal socket takes a WebSocket handshake only")
        try:
            browser_key = client_key(self.request.headers)
            protocols = offered_protocols(self.request.headers)
        except HandshakeError as error:
            raise HTTPError(400, str(error)) from error
        ttyd, protocol = await self._connect_ttyd(protocols)
        watch = IdentityWatch(
            self.hub_auth,
            self.hub_auth.get_token(self) or "",
            self.hub_auth.get_session_id(self),
            self.allowed,
            self.proxy_settings.identity_max_age,
        )
        # From here on the connection is no longer HTTP: take the raw stream from tornado.
        browser = self.detach()
        try:
            link = await open_link(
                browser, ttyd, browser_response(browser_key, protocol), self.tracker.record_input
            )
        except BaseException:
            ttyd.close()
            raise
        record = {
            "user": self.proxy_settings.owner,
            "server": self.proxy_settings.server_name,
            "actor": self.current_user["name"],
            "remote": self.request.remote_ip,
        }
        await self._serve(link, watch, record)

    async def _connect_ttyd(self, protocols: list[str]) -> tuple[TtydSide, str | None]:
        """A connection to ttyd past its handshake, and the subprotocol it chose."""
        try:
            ttyd = await self.upstream.connect_relay()
        except (OSError, TimeoutError) as error:
            raise HTTPError(502, f"terminal not reachable: {error}") from error
        key = new_key()
        ttyd.write(upstream_request(self.upstream.ws_path, self.upstream.host, key, protocols))
        try:
            head = await asyncio.wait_for(ttyd.head, 10)
            return ttyd, check_upstream_response(head, key, protocols)
        except (ConnectionError, TimeoutError, HandshakeError) as error:
            ttyd.close()
            raise HTTPError(502, f"terminal handshake failed: {error}") from error

    @staticmethod
    async def _serve(link: Link, watch: IdentityWatch, record: dict[str, Any]) -> None:
        """Until either side closes, or the identity no longer holds; ``terminal.open`` and
        ``terminal.close`` audit events around it (``record``: who, from where)."""
        who = record["actor"]
        why = {"reason": "closed"}

        async def close_when_invalid() -> None:
            reason = await watch.until_invalid()
            log.info("closing the terminal of %s: %s", who, reason)
            why["reason"] = "identity_revoked"
            link.close()

        log.info("terminal opened by %s", who)
        audit.event("terminal.open", **record)
        opened = time.monotonic()
        watching = asyncio.create_task(close_when_invalid())
        try:
            await link.wait_closed()
        finally:
            watching.cancel()
            link.close()
            log.info("terminal closed by %s", who)
            duration = round(time.monotonic() - opened, 1)
            audit.event("terminal.close", **record, duration_s=duration, **why)


class AddSlashHandler(ProxyHandler):
    """``/user/alice`` -> ``/user/alice/`` so ttyd's relative URLs resolve under the prefix."""

    def get(self) -> None:
        query = self.request.query
        self.redirect(self.request.path + "/" + (f"?{query}" if query else ""))
