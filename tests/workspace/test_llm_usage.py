"""The token counts the gateway reads from a provider's answer (devplane_authproxy.llm.usage):
pure, every way an answer can arrive in pieces."""

from __future__ import annotations

import json

from devplane_authproxy.llm.usage import MAX_JSON, UsageReader

USAGE = {"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16}


def read(streamed: bool, data: bytes, piece: int) -> UsageReader:
    reader = UsageReader(streamed)
    for i in range(0, len(data), piece):
        reader.feed(data[i : i + piece])
    reader.finish()
    return reader


def test_a_streams_usage_chunk_is_found_however_the_bytes_are_cut():
    events = [{"choices": [{"delta": {"content": "hi"}}]}, {"choices": [], "usage": USAGE}]
    data = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    data += b"data: [DONE]\n\n"
    for piece in (1, 3, 17, len(data)):
        reader = read(True, data, piece)
        assert (reader.prompt, reader.completion) == (7, 9), piece


def test_a_json_answer_larger_than_the_reader_keeps_is_still_counted():
    answer = {"choices": [{"text": "x" * (MAX_JSON + 1000)}], "usage": USAGE}
    reader = read(False, json.dumps(answer).encode(), 65536)
    assert reader.total == 16


def test_an_answer_without_usage_counts_nothing_and_a_line_without_end_is_bounded():
    assert read(False, b'{"choices": []}', 4).total == 0
    reader = read(True, b"x" * (3 * 1024 * 1024), 4096)  # no newline at all
    assert reader.total == 0 and len(reader._pending) <= 1024 * 1024 + 4096
