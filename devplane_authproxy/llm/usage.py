"""The token counts in a provider's answer: the ``usage`` object of an OpenAI-style JSON reply,
or of the streamed chunks (server-sent events) where the provider sends it. The gateway asks
for it in streams (``stream_options.include_usage``), as vLLM and OpenAI's API support."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

# What the reader keeps of a JSON answer to parse it whole; beyond this it keeps only the tail,
# where OpenAI-style servers put ``usage`` (after ``choices``): a large answer (many logprobs,
# a big embeddings batch) is still counted, and the reader never holds more than this.
MAX_JSON = 4 * 1024 * 1024
TAIL = 64 * 1024
# An event line longer than this is not a usage chunk (those are short): dropped, not buffered.
MAX_LINE = 1024 * 1024
_USAGE = re.compile(rb'"usage"\s*:\s*(\{[^{}]*\})')


class UsageReader:
    """Fed the answer's bytes as they pass; ``prompt`` and ``completion`` at the end.

    ``streamed``: the answer is server-sent events (the provider's Content-Type says so, not
    the request), else one JSON document."""

    def __init__(self, streamed: bool) -> None:
        self.streamed = streamed
        self.prompt = 0
        self.completion = 0
        self._pending = b""
        self._body: list[bytes] = []
        self._size = 0
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        if not self.streamed:
            self._size += len(chunk)
            if self._size <= MAX_JSON:
                self._body.append(chunk)
            self._tail = (self._tail + chunk)[-TAIL:]
            return
        # Only the new bytes are split; what precedes them has no newline.
        head, newline, rest = chunk.rpartition(b"\n")
        if not newline:
            self._pending = self._pending + chunk if len(self._pending) < MAX_LINE else b""
            return
        lines = (self._pending + head).split(b"\n")
        self._pending = rest if len(rest) < MAX_LINE else b""
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
        else:
            found = _USAGE.findall(self._tail)
            if found:
                with contextlib.suppress(ValueError):
                    self._take({"usage": json.loads(found[-1])})

    @property
    def total(self) -> int:
        return self.prompt + self.completion


def _count(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0
