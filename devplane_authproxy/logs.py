"""What the proxy writes about requests: bounded lines, no secrets, repeats rate-limited.

Anyone who can reach the hub's public address can make the proxy write, and the node keeps
its log beside everybody else's, so:

* query *values* are never written (``?token=`` and the OAuth ``code=`` and ``state=`` are
  credentials; the parameters' names are enough to debug), and ``LogFormatter`` writes any
  ``token=``/``code=``/... in other lines, the libraries' too, as ``name=*``;
* a line is bounded: paths and query strings are cut at ``MAX_URL_PART`` characters, every
  message at ``MAX_MESSAGE``;
* ``RepeatLimiter`` lets through at most ``LIMIT_PER_WINDOW`` lines of a kind per
  ``WINDOW`` seconds and counts the rest. A kind is "refusal" for the access lines of refused
  requests (``REFUSAL_STATUSES`` and redirects into the login flow), and a library's message
  template for its warnings (tornado's ``Invalid cookie signature %r``, JupyterHub's
  ``Detected unused OAuth state cookies``: each a stranger can cause with every request).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable

from tornado.httputil import HTTPServerRequest
from tornado.web import RequestHandler

access_log = logging.getLogger("devplane.authproxy.access")
_log = logging.getLogger("devplane.authproxy.logs")

MAX_URL_PART = 200
MAX_MESSAGE = 2000
LIMIT_PER_WINDOW = 20
WINDOW = 60.0
# Statuses that mean "this request was turned away": the ones a stranger causes at will.
REFUSAL_STATUSES = frozenset({400, 401, 403, 404, 405, 413, 414, 431})
REFUSAL = "refusal"
# Credentials wherever a line says name=value (a library's message, say).
_SECRET_PAIR = re.compile(
    r"\b(token|access_token|refresh_token|id_token|code|code_verifier|code_challenge|state"
    r"|_xsrf|password|secret|client_secret|api_key|apikey)=('[^']*'|\"[^\"]*\"|[^\s&'\",)]+)",
    re.IGNORECASE,
)
# JupyterHub's OAuth callback quotes both states when they differ, not as name=value.
_STATE_MISMATCH = "oauth state argument %r != cookie %s=%r"


def shorten(text: str, limit: int = MAX_URL_PART) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}...[{len(text) - limit} more]"


def scrub_query(query: str) -> str:
    """``token=abc&x=1`` -> ``token=*&x=*``: the names of the parameters, never their values."""
    return "&".join(
        name + ("=*" if sep else "")
        for name, sep, _ in (p.partition("=") for p in query.split("&"))
    )


def request_summary(request: HTTPServerRequest) -> str:
    """``GET /user/alice/?token=* (10.0.0.1)``: bounded, without query values."""
    query = f"?{shorten(scrub_query(request.query))}" if request.query else ""
    return f"{request.method} {shorten(request.path)}{query} ({request.remote_ip})"


def log_request(handler: RequestHandler) -> None:
    """tornado's ``log_function``: one bounded line per request; refusals are one kind."""
    status = handler.get_status()
    refused = status in REFUSAL_STATUSES or bool(getattr(handler, "login_redirect", False))
    level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
    reason = getattr(handler, "refusal_reason", "")
    access_log.log(
        level,
        "%d %s %.2fms%s",
        status,
        request_summary(handler.request),
        1000.0 * handler.request.request_time(),
        f": {shorten(reason)}" if reason else "",
        extra={"repeat_kind": REFUSAL} if refused else None,
    )


class LogFormatter(logging.Formatter):
    """Every line, ours or a library's: credentials as ``name=*``, at most ``MAX_MESSAGE``
    characters (a traceback is appended after the cut, in full)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        if record.msg == _STATE_MISMATCH and isinstance(record.args, tuple):
            record.message = _STATE_MISMATCH % ("*", record.args[1], "*")
        return shorten(_SECRET_PAIR.sub(r"\1=*", super().formatMessage(record)), MAX_MESSAGE)


class RepeatLimiter(logging.Filter):
    """A handler filter: at most ``limit`` records of a kind per ``window`` seconds.

    The first record held back says that counting started; when the window closes (on a
    timer, or with the next record when no event loop runs) one line says how many were held
    back. Records of our own loggers have no kind unless they name one (``repeat_kind``), so
    the proxy's other lines are never held back.
    """

    def __init__(
        self,
        limit: int = LIMIT_PER_WINDOW,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.limit, self.window, self.clock = limit, window, clock
        self.started: dict[str, float] = {}
        self.passed: dict[str, int] = {}
        self.held: dict[str, int] = {}

    @staticmethod
    def kind(record: logging.LogRecord) -> str | None:
        named = getattr(record, "repeat_kind", None)
        if named is not None or record.name.startswith("devplane."):
            return named
        return str(record.msg) if record.levelno >= logging.WARNING else None

    def filter(self, record: logging.LogRecord) -> bool:
        kind = self.kind(record)
        if kind is None:
            return True
        now = self.clock()
        if now - self.started.get(kind, -self.window) >= self.window:
            self.close(kind)
            self.started[kind], self.passed[kind] = now, 0
        if self.passed[kind] < self.limit:
            self.passed[kind] += 1
            return True
        if not self.held.get(kind):
            _log.warning(
                "more than %d lines like %r in %.0f s: counting the rest instead of writing them",
                self.limit,
                shorten(kind, 80),
                self.window,
            )
            self._close_later(kind, self.started[kind] + self.window - now)
        self.held[kind] = self.held.get(kind, 0) + 1
        return False

    def _close_later(self, kind: str, delay: float) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # said with the next record of this kind instead
        loop.call_later(delay, self.close, kind)

    def close(self, kind: str) -> None:
        held = self.held.pop(kind, 0)
        if held:
            _log.warning(
                "%d more lines like %r in the last %.0f s were not written",
                held,
                shorten(kind, 80),
                self.window,
            )


def install(level: int = logging.INFO) -> None:
    """Configure the root logger: one stream handler with the formatter and the limiter."""
    handler = logging.StreamHandler()
    handler.setFormatter(LogFormatter("[%(levelname)s %(asctime)s %(name)s] %(message)s"))
    handler.addFilter(RepeatLimiter())
    logging.basicConfig(level=level, handlers=[handler])
