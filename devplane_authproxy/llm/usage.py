"""The token counts in a provider's answer: the ``usage`` object of an OpenAI-style JSON reply,
or of the streamed chunks (server-sent events) where the provider sends it. The gateway asks
for it in streams (``stream_options.include_usage``), as vLLM and OpenAI's API support."""

from __future__ import annotations

import contextlib
import json
from typing import Any

# A JSON answer larger than this is passed on but not parsed for its usage (embeddings of a
# large batch, say): the gateway never holds more than this of one answer.
MAX_JSON = 4 * 1024 * 1024


class UsageReader:
    """Fed the answer's bytes as they pass; ``prompt`` and ``completion`` at the end."""

    def __init__(self, streamed: bool) -> None:
        self.streamed = streamed
        self.prompt = 0
        self.completion = 0
        self._pending = b""
        self._body: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        if not self.streamed:
            self._size += len(chunk)
            if self._size <= MAX_JSON:
                self._body.append(chunk)
            return
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            self._event_line(line.strip())

    def _event_line(self, line: bytes) -> None:
        if not line.startswith(b"data:"):
            return
        data = line[5:].strip()
        if data == b"[DONE]":
            return
        with contextlib.suppress(ValueError):
            self._take(json.loads(data))

    def _take(self, obj: Any) -> None:
        usage = obj.get("usage") if isinstance(obj, dict) else None
        if isinstance(usage, dict):
            self.prompt = _count(usage.get("prompt_tokens"))
            self.completion = _count(usage.get("completion_tokens"))

    def finish(self) -> None:
        if self.streamed:
            self._event_line(self._pending.strip())
        elif self._size <= MAX_JSON:
            with contextlib.suppress(ValueError):
                self._take(json.loads(b"".join(self._body)))

    @property
    def total(self) -> int:
        return self.prompt + self.completion


def _count(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0
