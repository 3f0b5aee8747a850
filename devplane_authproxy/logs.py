"""What the proxy writes about requests: no secrets.

Query *values* are never written (``?token=`` and the OAuth ``code=`` and ``state=`` are
credentials; the parameters' names are enough to debug). ``ScrubbingFormatter`` applies the
same rule to every other line, the libraries' too.
"""

from __future__ import annotations

import logging
import re

from tornado.httputil import HTTPServerRequest
from tornado.web import RequestHandler

access_log = logging.getLogger("devplane.authproxy.access")

# Credentials wherever a line says name=value (a library's message, say).
_SECRET_PAIR = re.compile(
    r"\b(token|access_token|refresh_token|id_token|code|code_verifier|code_challenge|state"
    r"|_xsrf|password|secret|client_secret|api_key|apikey)=('[^']*'|\"[^\"]*\"|[^\s&'\",)]+)",
    re.IGNORECASE,
)


def scrub_query(query: str) -> str:
    """``token=abc&x=1`` -> ``token=*&x=*``: the names of the parameters, never their values."""
    return "&".join(
        name + ("=*" if sep else "")
        for name, sep, _ in (p.partition("=") for p in query.split("&"))
    )


def request_summary(request: HTTPServerRequest) -> str:
    """``GET /user/alice/?token=* (10.0.0.1)``: without query values."""
    query = f"?{scrub_query(request.query)}" if request.query else ""
    return f"{request.method} {request.path}{query} ({request.remote_ip})"


def log_request(handler: RequestHandler) -> None:
    """tornado's ``log_function``: one line per request."""
    status = handler.get_status()
    level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
    reason = getattr(handler, "refusal_reason", "")
    access_log.log(
        level,
        "%d %s %.2fms%s",
        status,
        request_summary(handler.request),
        1000.0 * handler.request.request_time(),
        f": {reason}" if reason else "",
    )


# JupyterHub's OAuth callback quotes both states when they differ, not as name=value.
_STATE_MISMATCH = "oauth state argument %r != cookie %s=%r"


class ScrubbingFormatter(logging.Formatter):
    """Every log line, ours or a library's: credentials as ``name=*``."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        if record.msg == _STATE_MISMATCH and isinstance(record.args, tuple):
            record.message = _STATE_MISMATCH % ("*", record.args[1], "*")
        return _SECRET_PAIR.sub(r"\1=*", super().formatMessage(record))
