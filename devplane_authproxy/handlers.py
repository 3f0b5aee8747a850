"""Tornado handlers: readiness, OAuth callback, and the terminal (HTTP + WebSocket to ttyd)."""

from __future__ import annotations

import asyncio
import logging
import re
from types import TracebackType
from typing import Any

import jupyterhub
from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from tornado.httpclient import HTTPClientError
from tornado.web import Finish, HTTPError, RequestHandler

from .activity import ActivityTracker
from .auth import CookieOnlyHubOAuth, is_allowed
from .logs import request_summary
from .origin import request_origin, same_origin, serialize
from .settings import ProxySettings
from .upstream import TtydUpstream
from .wsrelay import relay

log = logging.getLogger("devplane.authproxy")

# Headers that describe one hop, never forwarded (RFC 9110 7.6.1), plus the credentials that
# are ours and not ttyd's business.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
_NOT_FOR_TTYD = {"cookie", "authorization"}
# On the WebSocket handshake also no compression: the relay reads each frame's first byte.
_NOT_FOR_TTYD_WS = _NOT_FOR_TTYD | {"host", "sec-websocket-extensions", "content-length"}
# C0 controls, DEL and C1 controls: never part of a path we serve. A percent-decoded CR LF
# written into the upstream request would start a header line of the sender's choosing.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ProxyHandler(RequestHandler):
    """What every handler of the proxy shares: how a failure reads, in the answer and the log."""

    # Why the request was refused (the HTTPError's message), for its line in the access log.
    refusal_reason = ""
    # Set when a request without identity is sent into the OAuth flow: a refusal, for the log.
    login_redirect = False

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


class TerminalHandler(HubOAuthenticated, ProxyHandler):
    """Everything under the prefix: ttyd's page and assets over HTTP, the terminal over WS."""

    def initialize(
        self,
        settings: ProxySettings,
        hub_auth: CookieOnlyHubOAuth,
        upstream: TtydUpstream,
        tracker: ActivityTracker,
    ) -> None:
        self.proxy_settings = settings
        self.hub_auth = hub_auth
        self.upstream = upstream
        self.tracker = tracker

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
        """Authenticate before anything reaches ttyd, for HTTP and the WebSocket handshake."""
        # Checked before identity: it is about the request, not about who sends it.
        if _CONTROL.search(self.path_args[0] if self.path_args else "") or _CONTROL.search(
            self.request.uri or ""
        ):
            raise HTTPError(400, "control character in the URL")
        if self.is_websocket:
            # Browsers always send Origin on a WebSocket, so a missing one is refused too.
            origin = self.request.headers.get("Origin")
            expected = self.proxy_settings.public_origin or request_origin(self.request)
            if not same_origin(origin, expected):
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
        s = self.proxy_settings
        if not is_allowed(user, s.owner, self.hub_auth.access_scopes, s.allow_admin_access):
            raise HTTPError(403, f"{user.get('name')} may not use {s.owner}'s workspace")
        self.current_user = user

    def _upstream_path(self) -> str:
        """The path ttyd is asked for: the raw (still percent-encoded) one the browser sent,
        never the decoded one, so nothing decodes into the request line on the way."""
        raw = self.request.path[len(self.proxy_settings.prefix) :]
        query = self.request.query
        base = self.proxy_settings.upstream.base_path
        return f"{base}/{raw}" + (f"?{query}" if query else "")

    # ---------------------------------------------------------------- HTTP

    async def get(self, path: str) -> None:
        if self.is_websocket:
            await self._relay_websocket(path)
        else:
            await self._proxy_http(path)

    async def head(self, path: str) -> None:
        await self._proxy_http(path)

    async def post(self, path: str) -> None:
        await self._proxy_http(path)

    async def _proxy_http(self, path: str) -> None:
        headers = {
            name: value
            for name, value in self.request.headers.get_all()
            if name.lower() not in _HOP_BY_HOP | _NOT_FOR_TTYD
        }
        request = self.upstream.http_request(
            self._upstream_path(),
            method=self.request.method,
            headers=headers,
            body=self.request.body if self.request.method == "POST" else None,
            follow_redirects=False,
            decompress_response=False,
            request_timeout=60,
        )
        try:
            response = await self.upstream.http.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as error:
            raise HTTPError(502, f"terminal not reachable: {error}") from error
        if response.code == 599:
            raise HTTPError(502, f"terminal not reachable: {response.error}")
        self.set_status(response.code, response.reason)
        self._headers.clear()
        for name, value in response.headers.get_all():
            if name.lower() not in _HOP_BY_HOP:
                self.add_header(name, value)
        if self.request.method != "HEAD" and response.body:
            self.write(response.body)
        self.finish()

    # ---------------------------------------------------------------- WebSocket

    async def _relay_websocket(self, path: str) -> None:
        """Hand the (authenticated, same-origin) upgrade to ttyd, then relay raw bytes."""
        headers = self.request.headers
        if headers.get("Sec-WebSocket-Version") != "13" or not headers.get("Sec-WebSocket-Key"):
            raise HTTPError(400, "not a WebSocket handshake")
        try:
            ttyd = await self.upstream.connect_relay()
        except (OSError, TimeoutError) as error:
            raise HTTPError(502, f"terminal not reachable: {error}") from error
        lines = [f"GET {self._upstream_path()} HTTP/1.1", f"Host: {self.upstream.host}"]
        lines += [
            f"{name}: {value}"
            for name, value in headers.get_all()
            if name.lower() not in _NOT_FOR_TTYD_WS
        ]
        assert ttyd.transport is not None
        ttyd.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        try:
            head = await asyncio.wait_for(ttyd.head, 10)
        except (ConnectionError, TimeoutError) as error:
            ttyd.transport.close()
            raise HTTPError(502, f"terminal handshake failed: {error}") from error
        status = head.split(b"\r\n", 1)[0].split()
        if len(status) < 2 or status[1] != b"101":
            ttyd.transport.close()
            raise HTTPError(502, f"terminal refused the WebSocket: {head[:200]!r}")
        # From here on the connection is no longer HTTP: take the raw stream from tornado.
        browser = self.detach()
        who = self.current_user["name"]
        log.info("terminal opened by %s", who)
        try:
            await relay(browser, ttyd, head, self.tracker.record_input)
        finally:
            ttyd.transport.close()
            log.info("terminal closed by %s", who)


class AddSlashHandler(ProxyHandler):
    """``/user/alice`` -> ``/user/alice/`` so ttyd's relative URLs resolve under the prefix."""

    def get(self) -> None:
        query = self.request.query
        self.redirect(self.request.path + "/" + (f"?{query}" if query else ""))
