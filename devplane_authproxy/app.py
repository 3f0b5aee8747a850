"""Assemble the tornado application from settings."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

from tornado.web import Application

from .activity import ActivityTracker
from .auth import CookieOnlyHubOAuth
from .handlers import (
    AddSlashHandler,
    NotFoundHandler,
    OAuthCallbackHandler,
    ReadinessHandler,
    TerminalPageHandler,
    TerminalSocketHandler,
    TtydTokenHandler,
)
from .logs import log_request
from .settings import ProxySettings
from .terminal_page import TerminalPage
from .upstream import TtydUpstream


def make_hub_auth(settings: ProxySettings) -> CookieOnlyHubOAuth:
    """HubOAuth configured from the JUPYTERHUB_* environment, cookie-only, Secure on TLS."""
    # HubOAuth reads JUPYTERHUB_API_URL, _CLIENT_ID, _OAUTH_CALLBACK_URL, _OAUTH_ACCESS_SCOPES
    # and _SERVICE_PREFIX itself; we only add what it cannot know.
    return CookieOnlyHubOAuth(
        api_token=settings.api_token,
        base_url=settings.prefix,
        cookie_options=dict(settings.cookie_options),
        # Identity checks are cached per token no longer than open terminals are re-checked.
        cache_max_age=settings.identity_max_age,
    )


def make_app(settings: ProxySettings, tracker: ActivityTracker) -> Application:
    """The proxy's routes; its terminal handlers record the user's input into ``tracker``."""
    hub_auth = make_hub_auth(settings)
    upstream = TtydUpstream(settings.upstream)
    prefix = re.escape(settings.prefix)
    callback_path = urlsplit(hub_auth.oauth_redirect_uri).path or settings.prefix + "oauth_callback"
    terminal_args = {
        "settings": settings,
        "hub_auth": hub_auth,
        "upstream": upstream,
        "tracker": tracker,
        "page": TerminalPage.load(),
    }
    return Application(
        [
            (prefix + r"api/?", ReadinessHandler),
            (prefix + r"token", TtydTokenHandler),
            (re.escape(callback_path), OAuthCallbackHandler, {"hub_auth": hub_auth}),
            (prefix, TerminalPageHandler, terminal_args),
            (prefix + r"ws", TerminalSocketHandler, terminal_args),
            (prefix.rstrip("/"), AddSlashHandler),
        ],
        # Signs the OAuth cookie. Fresh per process on purpose: nothing is written to the
        # read-only root filesystem, and a restart only costs a silent OAuth round trip.
        cookie_secret=os.urandom(32),
        # Tornado's own (non-hub) xsrf is off; HubOAuth patches in JupyterHub's xsrf rules.
        xsrf_cookies=False,
        # Bounded lines without query values, refusals rate-limited (logs.py).
        log_function=log_request,
        default_handler_class=NotFoundHandler,
    )
