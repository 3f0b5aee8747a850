"""The vLLM stand-in speaks vLLM's OpenAI-compatible API faithfully enough for opencode."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from devplane_dev.procs import free_port, short_tempdir_path
from devplane_dev.vllm_stub import MAX_WORDS, launch, plan_reply

KEY = "stub-key"
MODEL = "qwen-coder"
BASH_TOOL = {
    "type": "function",
    "function": {
        "name": "bash",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    port = free_port()
    proc = launch(short_tempdir_path("stub.log"), port, MODEL, KEY)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


def _auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _chat(url: str, **body) -> requests.Response:
    body.setdefault("model", MODEL)
    return requests.post(f"{url}/v1/chat/completions", json=body, headers=_auth(), timeout=10)


def _events(response: requests.Response) -> list[str]:
    lines = response.text.splitlines()
    return [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]


@pytest.mark.parametrize("headers", [{}, _auth("wrong")])
def test_wrong_or_missing_key_gets_401_json(stub, headers):
    for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions")):
        response = requests.request(method, f"{stub}{path}", headers=headers, json={}, timeout=10)
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized"}


def test_models_and_health(stub):
    assert requests.get(f"{stub}/health", timeout=10).status_code == 200
    models = requests.get(f"{stub}/v1/models", headers=_auth(), timeout=10).json()
    assert [m["id"] for m in models["data"]] == [MODEL]


def test_unknown_model_is_404_like_vllm(stub):
    response = _chat(stub, model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    assert response.status_code == 404
    assert response.json()["type"] == "NotFoundError"


def test_non_streaming_answer(stub):
    body = _chat(stub, messages=[{"role": "user", "content": "hi"}]).json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == f"DEVPLANE-STUB-ANSWER (model {MODEL})"
    assert body["usage"]["total_tokens"] > 0


def test_streaming_answer_with_usage_chunk_and_done(stub):
    response = _chat(
        stub,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = _events(response)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == f"DEVPLANE-STUB-ANSWER (model {MODEL})"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0


def test_streaming_without_include_usage_has_no_usage_chunk(stub):
    events = _events(_chat(stub, messages=[{"role": "user", "content": "hi"}], stream=True))
    assert all("usage" not in json.loads(e) for e in events[:-1])


def test_streamed_tool_call_when_asked_and_offered(stub):
    prompt = 'do it TOOL:bash {"command": "ls -la"}'
    response = _chat(
        stub, messages=[{"role": "user", "content": prompt}], tools=[BASH_TOOL], stream=True
    )
    chunks = [json.loads(e) for e in _events(response)[:-1]]
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if c["choices"]
             and "tool_calls" in c["choices"][0]["delta"]]  # fmt: skip
    assert calls[0]["function"]["name"] == "bash" and calls[0]["id"]
    arguments = "".join(c["function"]["arguments"] for c in calls)
    assert json.loads(arguments) == {"command": "ls -la"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    # Not offered -> no call, a plain answer.
    plain = _chat(stub, messages=[{"role": "user", "content": prompt}]).json()
    assert plain["choices"][0]["message"]["tool_calls"] == []


def test_a_long_answer_on_request_is_bounded():
    def words(prompt: str) -> int:
        text, _ = plan_reply({"model": MODEL, "messages": [{"role": "user", "content": prompt}]})
        return len(text.split())

    base = words("hello")
    assert words("please WORDS:50") == base + 50
    assert words("WORDS:99999") == base + MAX_WORDS
