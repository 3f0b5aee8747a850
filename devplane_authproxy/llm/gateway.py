"""The gateway's HTTP side: OpenAI-compatible routes on the pod's loopback, one prefix per
provider (``/<provider>/v1/...``, which opencode's configuration names as the provider's
``baseURL``), forwarded to the provider with its key, streamed through as it arrives.

What a request goes through, in order: the provider must be configured (404), the body must be
a JSON object (400), its model must be on the allow-list (403, OpenAI-style error naming the
allowed models), the user must be under the limits (429 with ``Retry-After``). Then ``user``
is set to the workspace owner (and ``X-DevPlane-User`` sent), a stream asks for its usage, and
the provider's answer passes through chunk by chunk, each flushed at once. The usage it reports
is counted (``metrics``, ``limits``) and an ``llm.request`` audit event written, without the
prompt or the answer.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import aiohttp
from tornado.iostream import StreamClosedError
from tornado.web import Application, RequestHandler

from .. import audit
from . import metrics
from .config import ConfigFile, Provider
from .limits import RateLimiter
from .usage import UsageReader

log = logging.getLogger("devplane.authproxy.llm")

# What the gateway forwards: the generation and embedding endpoints of the OpenAI API.
ENDPOINTS = ("chat/completions", "completions", "embeddings")
MAX_REQUEST = 16 * 1024 * 1024
CONNECT_TIMEOUT = 10.0
# A long generation streams for minutes; the provider's own limits apply first.
REQUEST_TIMEOUT = 3600.0
# The model label of a request for a model that is not allowed: what a user sends there is
# theirs to choose, and must not become a new time series each time.
NOT_ALLOWED = "(not allowed)"


class Gateway:
    """What every handler shares: the configuration, the owner, the limiter, the client."""

    def __init__(self, config: ConfigFile, owner: str, limiter: RateLimiter | None = None) -> None:
        self.config = config
        self.owner = owner
        self.limiter = limiter or RateLimiter()
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """One pool of kept-alive connections to the providers: a request does not pay for a
        new connection (the first token comes sooner)."""
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT, sock_connect=CONNECT_TIMEOUT)
            self._session = aiohttp.ClientSession(
                timeout=timeout,
                connector=aiohttp.TCPConnector(limit=64),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def openai_error(handler: RequestHandler, status: int, message: str, kind: str, code: str) -> None:
    handler.set_status(status)
    handler.set_header("Content-Type", "application/json")
    error = {"message": message, "type": kind, "param": "model" if "model" in code else None,
             "code": code}  # fmt: skip
    handler.finish(json.dumps({"error": error}))


class GatewayHandler(RequestHandler):
    def initialize(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def provider(self, name: str) -> Provider | None:
        found = self.gateway.config.current().providers.get(name)
        if found is None:
            known = ", ".join(self.gateway.config.current().providers) or "none"
            openai_error(self, 404, f"no provider {name!r} here; configured: {known}",
                         "invalid_request_error", "provider_not_found")  # fmt: skip
        return found

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        log.error("LLM gateway: %s", value, exc_info=(typ, value, tb))


class ModelsHandler(GatewayHandler):
    """``/v1/models``: the allowed models only (the allow-list is the answer; no round trip)."""

    def get(self, provider_name: str) -> None:
        provider = self.provider(provider_name)
        if provider is None:
            return
        data = [{"id": m, "object": "model", "created": 0, "owned_by": provider.name}
                for m in provider.models]  # fmt: skip
        self.finish({"object": "list", "data": data})


class ForwardHandler(GatewayHandler):
    async def post(self, provider_name: str, endpoint: str) -> None:
        started = time.monotonic()
        provider = self.provider(provider_name)
        if provider is None:
            return
        try:
            body = json.loads(self.request.body or b"")
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError as err:
            return openai_error(self, 400, f"the request body must be a JSON object: {err}",
                                "invalid_request_error", "invalid_body")  # fmt: skip
        model = body.get("model")
        owner = self.gateway.owner
        if model not in provider.models:
            allowed = ", ".join(provider.models)
            audit.event("access.refused", user=owner, reason="model_not_allowed",
                        provider=provider.name, model=str(model)[:200])  # fmt: skip
            self.count(provider, NOT_ALLOWED, 403)
            return openai_error(self, 403,
                                f"the model {model!r} is not allowed in this workspace; "
                                f"allowed: {allowed}",
                                "invalid_request_error", "model_not_allowed")  # fmt: skip
        limits = self.gateway.config.current().limits
        wait = self.gateway.limiter.admit(limits)
        if wait is not None:
            self.set_header("Retry-After", str(wait))
            self.count(provider, model, 429)
            self.audit(provider, model, endpoint, body, 429, started, None, UsageReader(False))
            rates = (f"{limits.requests_per_minute} requests, {limits.tokens_per_minute} tokens "
                     "per minute; 0: none")  # fmt: skip
            return openai_error(self, 429,
                                f"rate limit of this workspace reached ({rates}); "
                                f"retry in {wait} s",
                                "rate_limit_error", "rate_limit_exceeded")  # fmt: skip
        await self.forward(provider, model, endpoint, body, started)

    async def forward(
        self, provider: Provider, model: str, endpoint: str, body: dict[str, Any], started: float
    ) -> None:
        owner = self.gateway.owner
        body["user"] = owner
        if body.get("stream") and endpoint != "embeddings":
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, dict) else {}),
                                      "include_usage": True}  # fmt: skip
        headers = {"Content-Type": "application/json", "X-DevPlane-User": owner,
                   "Accept": self.request.headers.get("Accept", "*/*")}  # fmt: skip
        key = provider.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        # Set once the provider's headers are in: an event stream or one JSON document is
        # what the provider says it sent, whatever the request's "stream" held.
        reader = UsageReader(False)
        upstream: dict[str, Any] = {"status": 502, "started": False}
        first_byte: list[float] = []
        failure: BaseException | None = None
        gone = False  # the caller went away: read on for the usage, write nothing
        try:
            async with self.gateway.session().post(
                f"{provider.base_url}/{endpoint}", data=json.dumps(body), headers=headers
            ) as response:
                upstream["status"] = response.status
                kind = response.headers.get("Content-Type", "application/json")
                reader = UsageReader(kind.startswith("text/event-stream"))
                # Each piece as it arrives (a streamed token is one), passed on at once.
                async for chunk in response.content.iter_any():
                    if not first_byte:
                        first_byte.append(time.monotonic())
                    reader.feed(chunk)
                    if gone:
                        continue
                    if not upstream["started"]:
                        upstream["started"] = True
                        self.set_status(response.status)
                        self.set_header("Content-Type", kind)
                        if reader.streamed:
                            self.set_header("Cache-Control", "no-cache")
                    self.write(chunk)
                    try:
                        await self.flush()
                    except StreamClosedError:
                        gone = True
        except Exception as err:
            failure = err
            if not isinstance(err, aiohttp.ClientError | OSError | TimeoutError):
                log.exception("LLM gateway: forwarding to %s failed", provider.name)
        reader.finish()
        # A failure after the answer began is a broken answer: recorded as such, and the
        # connection is cut so the caller cannot take the part it got for the whole.
        status = 502 if failure is not None else upstream["status"]
        if failure is not None:
            log.warning("LLM provider %s failed: %s", provider.name, failure)
        # Counted and audited before the caller sees the end of the answer: whoever reads the
        # metrics or the audit stream after a request ended finds it there.
        self.gateway.limiter.spent(reader.total)
        self.count(provider, model, status)
        if reader.prompt or reader.completion:
            metrics.TOKENS.labels(owner, provider.name, model, "prompt").inc(reader.prompt)
            metrics.TOKENS.labels(owner, provider.name, model, "completion").inc(reader.completion)
        self.audit(provider, model, endpoint, body, status, started,
                   first_byte[0] if first_byte else None, reader)  # fmt: skip
        if gone or self._finished:  # the caller went away; the tokens still counted
            return
        if upstream["started"] and failure is not None:
            self.request.connection.close()  # type: ignore[union-attr]
        elif upstream["started"]:
            self.finish()
        elif failure is not None:
            # A network error's words help the user; anything else says only its kind.
            network = isinstance(failure, aiohttp.ClientError | OSError | TimeoutError)
            detail = str(failure) if network else type(failure).__name__
            openai_error(self, 502, f"the provider {provider.name!r} could not be reached: "
                         f"{detail}", "api_error", "provider_unreachable")  # fmt: skip
        else:  # an answer without a body
            self.set_status(status)
            self.finish()

    def count(self, provider: Provider, model: str, status: int) -> None:
        metrics.REQUESTS.labels(self.gateway.owner, provider.name, model, str(status)).inc()

    def audit(self, provider: Provider, model: str, endpoint: str, body: dict[str, Any],
              status: int, started: float, first_byte: float | None,
              reader: UsageReader) -> None:  # fmt: skip
        now = time.monotonic()
        audit.event(
            "llm.request",
            user=self.gateway.owner,
            provider=provider.name,
            model=model,
            endpoint=endpoint,
            stream=bool(body.get("stream")),
            status=status,
            prompt_tokens=reader.prompt,
            completion_tokens=reader.completion,
            duration_ms=round((now - started) * 1000, 1),
            first_byte_ms=round((first_byte - started) * 1000, 1) if first_byte else None,
        )


class MetricsHandler(RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(metrics.exposition())


def make_gateway_app(gateway: Gateway) -> Application:
    args = {"gateway": gateway}
    endpoints = "|".join(e.replace("/", r"\/") for e in ENDPOINTS)
    return Application(
        [
            (r"/([a-z0-9][-a-z0-9]*)/v1/models/?", ModelsHandler, args),
            (rf"/([a-z0-9][-a-z0-9]*)/v1/({endpoints})", ForwardHandler, args),
            (r"/metrics", MetricsHandler),
        ],
        # Requests carry prompts: bounded, but large enough for a long context.
        max_body_size=MAX_REQUEST,
    )


def make_metrics_app() -> Application:
    return Application([(r"/metrics", MetricsHandler)])
