"""A faithful, deterministic stand-in for a vLLM OpenAI-compatible server.

Speaks the parts of vLLM's API that opencode and DevPlane use, with vLLM's shapes:

* ``GET /health`` -> 200, empty body;
* ``GET /v1/models`` -> the served model;
* ``POST /v1/chat/completions`` -> streaming (SSE ``data:`` chunks, the usage chunk when
  ``stream_options.include_usage``, then ``data: [DONE]``) or a single JSON completion;
* with an API key configured, a missing or wrong ``Authorization: Bearer`` gets 401 and
  ``{"error": "Unauthorized"}`` (vLLM's exact answer); an unknown model gets vLLM's 404 error.

Answers are deterministic so tests can assert them:

* plain prompt -> ``"<ANSWER_PHRASE> (model <model>)"``;
* the latest user message contains ``TOOL:<name> <json-arguments>`` and a tool of that name is
  offered -> a tool call to it with those arguments (streamed in pieces, like vLLM does);
* the latest message is a tool result -> ``"<ANSWER_PHRASE> tool said: <result>"``.

``GET /_stub/requests`` lists what was asked (model, whether the key matched, stream, tools
offered) so a test can check what really reached the "LLM".

Run: ``python -m devplane_dev.vllm_stub --port 8000 --api-key K --model M``, or
``launch()`` it as a harness process (the demo and the tests do).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler

from .procs import ManagedProcess, http_ok

ANSWER_PHRASE = "DEVPLANE-STUB-ANSWER"
_TOOL_REQUEST = re.compile(r"TOOL:(?P<name>[\w.-]+)\s+(?P<args>\{.*\})", re.DOTALL)
# "WORDS:<n>" in the prompt: a long answer of n more words (streamed one chunk each), for
# benchmarks that time tokens; bounded so a prompt cannot make the stand-in write forever.
_WORDS_REQUEST = re.compile(r"WORDS:(?P<n>\d{1,5})")
MAX_WORDS = 10_000


class StubState:
    def __init__(self, models: list[str], api_key: str | None) -> None:
        self.models = models
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []


def _text_of(content: Any) -> str:
    """Message content is a string or a list of parts (OpenAI's multi-part form)."""
    if isinstance(content, str):
        # opencode (1.18) sends a user prompt as a JSON string literal, quotes and escapes
        # included; a model reads through that, so the stand-in does too.
        if len(content) >= 2 and content[0] == content[-1] == '"':
            try:
                decoded = json.loads(content)
            except json.JSONDecodeError:
                return content
            return decoded if isinstance(decoded, str) else content
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _count_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(len(_text_of(m.get("content")).split()) + 4 for m in messages)


def plan_reply(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """(text, tool_call) the stub answers with; exactly one of them is meaningful."""
    messages = body.get("messages") or []
    model = body.get("model", "")
    last = messages[-1] if messages else {}
    if last.get("role") == "tool":
        return f"{ANSWER_PHRASE} tool said: {_text_of(last.get('content'))[:200]}", None
    offered = {t.get("function", {}).get("name") for t in body.get("tools") or []}
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    match = _TOOL_REQUEST.search(_text_of(last_user.get("content")))
    if match and match.group("name") in offered:
        call = {
            "id": f"chatcmpl-tool-{uuid.uuid4().hex[:16]}",
            "type": "function",
            "function": {"name": match.group("name"), "arguments": match.group("args")},
        }
        return "", call
    words = _WORDS_REQUEST.search(_text_of(last_user.get("content")))
    extra = min(int(words.group("n")), MAX_WORDS) if words else 0
    return f"{ANSWER_PHRASE} (model {model})" + " word" * extra, None


class BaseHandler(RequestHandler):
    def initialize(self, state: StubState) -> None:
        self.state = state

    def key_ok(self) -> bool:
        if not self.state.api_key:
            return True
        return self.request.headers.get("Authorization", "") == f"Bearer {self.state.api_key}"

    def json_error(self, status: int, payload: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))


class HealthHandler(BaseHandler):
    def get(self) -> None:
        self.set_status(200)


class ModelsHandler(BaseHandler):
    def get(self) -> None:
        if not self.key_ok():
            return self.json_error(401, {"error": "Unauthorized"})
        created = int(time.time())
        data = [
            {
                "id": m,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": m,
                "parent": None,
                "max_model_len": 32768,
            }
            for m in self.state.models
        ]
        self.finish({"object": "list", "data": data})


class RequestsHandler(BaseHandler):
    def get(self) -> None:
        self.finish({"requests": self.state.requests})


class ChatCompletionsHandler(BaseHandler):
    async def post(self) -> None:
        key_ok = self.key_ok()
        try:
            body = json.loads(self.request.body or b"{}")
        except json.JSONDecodeError:
            return self.json_error(400, _error("invalid JSON body", "BadRequestError", 400))
        model = body.get("model", "")
        tools = body.get("tools") or []
        self.state.requests.append(
            {
                "model": model,
                "key_ok": key_ok,
                "stream": bool(body.get("stream")),
                "tools": sorted(t.get("function", {}).get("name", "") for t in tools),
                "last_role": (body.get("messages") or [{}])[-1].get("role"),
                # Who the caller says the end user is (a gateway names the workspace owner).
                "user": body.get("user"),
                "user_header": self.request.headers.get("X-DevPlane-User"),
            }
        )
        if not key_ok:
            return self.json_error(401, {"error": "Unauthorized"})
        if model not in self.state.models:
            message = f"The model `{model}` does not exist."
            return self.json_error(404, _error(message, "NotFoundError", 404))
        text, tool_call = plan_reply(body)
        prompt_tokens = _count_tokens(body.get("messages") or [])
        completion_tokens = len(text.split()) + (8 if tool_call else 0)
        usage = {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens,
        }
        if body.get("stream"):
            options = body.get("stream_options") or {}
            include_usage = bool(options.get("include_usage"))
            # A benchmark's clock: each chunk says when it was sent (time.time(), this machine).
            stamped = bool(options.get("devplane_timestamps"))
            await self.stream(model, text, tool_call, usage if include_usage else None, stamped)
        else:
            self.finish(_completion(model, text, tool_call, usage))

    async def stream(
        self,
        model: str,
        text: str,
        tool_call: dict | None,
        usage: dict | None,
        stamped: bool = False,
    ) -> None:
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        chunk_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())

        async def send(choices: list[dict], extra: dict | None = None) -> None:
            chunk = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": choices,
                **(extra or {}),
                **({"devplane_sent": time.time()} if stamped else {}),
            }
            self.write(f"data: {json.dumps(chunk)}\n\n")
            await self.flush()

        def choice(delta: dict, finish: str | None = None) -> list[dict]:
            return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

        await send(choice({"role": "assistant", "content": ""}))
        if tool_call:
            # vLLM streams the call's id and name first, then the arguments in pieces.
            head = {**tool_call, "index": 0, "function": {**tool_call["function"], "arguments": ""}}
            await send(choice({"tool_calls": [head]}))
            args = tool_call["function"]["arguments"]
            for i in range(0, len(args), 16):
                piece = {"index": 0, "function": {"arguments": args[i : i + 16]}}
                await send(choice({"tool_calls": [piece]}))
            finish = "tool_calls"
        else:
            for word in re.findall(r"\S+\s*", text):
                await send(choice({"content": word}))
            finish = "stop"
        await send(choice({}, finish))
        if usage is not None:
            await send([], {"usage": usage})
        self.write("data: [DONE]\n\n")
        self.finish()


def _error(message: str, kind: str, code: int) -> dict[str, Any]:
    return {"object": "error", "message": message, "type": kind, "param": None, "code": code}


def _completion(model: str, text: str, tool_call: dict | None, usage: dict) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    message["tool_calls"] = [tool_call] if tool_call else []
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if tool_call else "stop",
            }
        ],
        "usage": usage,
    }


def make_app(models: list[str], api_key: str | None = None) -> Application:
    state = StubState(models, api_key)
    args = {"state": state}
    return Application(
        [
            (r"/health", HealthHandler, args),
            (r"/v1/models", ModelsHandler, args),
            (r"/v1/chat/completions", ChatCompletionsHandler, args),
            (r"/_stub/requests", RequestsHandler, args),
        ]
    )


async def _serve(host: str, port: int, models: list[str], api_key: str | None) -> None:
    server = HTTPServer(make_app(models, api_key))
    server.listen(port, host)
    print(f"vllm stub on http://{host}:{port}/v1 serving {', '.join(models)}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument("--api-key", default=None, help="require this Bearer key (vLLM --api-key)")
    parser.add_argument(
        "--model", action="append", required=True, help="served model name (repeatable)"
    )
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port, args.model, args.api_key))


def launch(
    log_path: Path,
    port: int,
    model: str | Sequence[str],
    api_key: str | None,
    host: str = "127.0.0.1",
    env: dict[str, str] | None = None,
    timeout: float = 30,
) -> ManagedProcess:
    """Start the stand-in as a ManagedProcess and wait until /health answers. It serves each
    of ``model`` (one name or several) and, with ``api_key``, requires it as a Bearer key."""
    argv = [sys.executable, "-m", "devplane_dev.vllm_stub", "--host", host, "--port", str(port)]
    for name in [model] if isinstance(model, str) else model:
        argv += ["--model", name]
    if api_key:
        argv += ["--api-key", api_key]
    process = ManagedProcess(argv, log_path, env=env, name="vllm-stub")
    try:
        process.wait_until("/health", http_ok(f"http://{host}:{port}/health"), timeout)
    except BaseException:  # Ctrl-C while waiting, too: the process has a session of its own
        process.stop()
        raise
    return process


if __name__ == "__main__":
    main()
