"""The workspace's LLM gateway: the real auth proxy (as its container runs it) in front of the
vLLM stand-in serving two models, with usage fields and streaming.

Each test starts what it needs and asserts what a user or an admin would see: the allowed
models only, the provider's key added by the gateway (the caller has none), the owner named to
the provider, a refused model, 429 with Retry-After at the configured rate, tokens in the
metrics as the stand-in reported them, and the audit lines with their documented fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from devplane_dev import vllm_stub
from devplane_dev.llm_gateway import start_gateway
from devplane_dev.procs import ManagedProcess, free_port
from prometheus_client.parser import text_string_to_metric_families

MODELS = ("stub-coder", "stub-chat")
KEY = "sk-provider-secret"
KEY_ENV = "DEVPLANE_LLM_API_KEY_VLLM"
AUDIT_FIELDS = {"schema", "time", "event", "component", "user"}


@dataclass
class Gateway:
    url: str
    metrics_url: str
    stub_url: str
    config: Path
    process: ManagedProcess
    audit: Path

    def events(self, name: str) -> list[dict]:
        lines = self.audit.read_text().splitlines()
        return [e for e in map(json.loads, lines) if e["event"] == name]

    def configure(self, **limits: int) -> None:
        """Rewrite the configuration as the kubelet does (a new file, swapped in); the
        gateway reads it again at its next request."""
        write_config(self.config, self.stub_url, limits)


def write_config(path: Path, stub_url: str, limits: dict[str, int]) -> None:
    config = {
        "version": 1,
        # The stand-in serves both models; this workspace may use the first only.
        "providers": [
            {
                "name": "vllm",
                "baseURL": f"{stub_url}/v1",
                "models": [MODELS[0]],
                "apiKeyEnv": KEY_ENV,
            }
        ],
        "limits": limits,
    }
    fresh = path.with_suffix(".new")
    fresh.write_text(json.dumps(config))
    fresh.replace(path)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    stub_port, metrics_port = free_port(), free_port()
    stub = vllm_stub.launch(tmp_path / "stub.log", stub_port, MODELS, api_key=KEY)
    stub_url = f"http://127.0.0.1:{stub_port}"
    config = tmp_path / "gateway.json"
    write_config(config, stub_url, {})
    audit = tmp_path / "audit.jsonl"
    # Standard output is the audit stream: kept apart from the log (standard error), as a
    # log shipper would take it.
    process, port = start_gateway(tmp_path, config, "alice", {KEY_ENV: KEY}, metrics_port, audit)
    try:
        yield Gateway(f"http://127.0.0.1:{port}/vllm/v1", f"http://127.0.0.1:{metrics_port}",
                      stub_url, config, process, audit)  # fmt: skip
    finally:
        process.stop()
        stub.stop()


def stub_requests(gateway: Gateway) -> list[dict]:
    return requests.get(f"{gateway.stub_url}/_stub/requests", timeout=5).json()["requests"]


def chat(gateway: Gateway, model: str = MODELS[0], stream: bool = False) -> requests.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hello there"}],
            "stream": stream}  # fmt: skip
    # No Authorization header: the caller (the user's shell) has no key.
    return requests.post(f"{gateway.url}/chat/completions", json=body, timeout=30, stream=stream)


def metric(gateway: Gateway, name: str, **labels: str) -> float:
    """A sample of the metrics port's exposition, as Prometheus would scrape it (0: absent)."""
    text = requests.get(f"{gateway.metrics_url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def test_models_lists_only_the_allowed_ones(gateway: Gateway) -> None:
    listed = requests.get(f"{gateway.url}/models", timeout=5).json()
    assert [m["id"] for m in listed["data"]] == [MODELS[0]]


def test_a_completion_carries_the_key_and_the_owner_and_its_tokens_are_counted(
    gateway: Gateway,
) -> None:
    reply = chat(gateway)
    assert reply.status_code == 200, reply.text
    usage = reply.json()["usage"]
    (seen,) = stub_requests(gateway)
    assert seen["key_ok"] is True  # the gateway added the provider's key
    assert seen["user"] == "alice" and seen["user_header"] == "alice"  # and named the owner
    labels = {"user": "alice", "provider": "vllm", "model": MODELS[0]}
    tokens = "devplane_llm_tokens_total"
    assert metric(gateway, tokens, kind="prompt", **labels) == usage["prompt_tokens"]
    assert metric(gateway, tokens, kind="completion", **labels) == usage["completion_tokens"]
    assert metric(gateway, "devplane_llm_requests_total", status="200", **labels) == 1
    (event,) = gateway.events("llm.request")
    assert set(event) >= AUDIT_FIELDS and event["schema"] == "devplane.audit/v1"
    assert event["user"] == "alice" and event["model"] == MODELS[0] and event["status"] == 200
    assert event["prompt_tokens"] == usage["prompt_tokens"]
    assert event["completion_tokens"] == usage["completion_tokens"]
    assert "hello there" not in gateway.audit.read_text()  # never the prompt


def test_a_stream_passes_through_and_its_usage_is_counted(gateway: Gateway) -> None:
    reply = chat(gateway, stream=True)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/event-stream")
    chunks = [json.loads(line[6:]) for line in reply.iter_lines(decode_unicode=True)
              if line.startswith("data: {")]  # fmt: skip
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text.startswith("DEVPLANE-STUB-ANSWER")
    # The gateway asked for the usage (the caller did not); the stand-in then sent it last.
    usage = chunks[-1]["usage"]
    (event,) = gateway.events("llm.request")
    assert event["stream"] is True and event["completion_tokens"] == usage["completion_tokens"]
    assert event["first_byte_ms"] is not None and event["first_byte_ms"] <= event["duration_ms"]


def test_a_model_that_is_not_allowed_is_refused_naming_the_allowed_ones(gateway: Gateway) -> None:
    reply = chat(gateway, model=MODELS[1])
    assert reply.status_code == 403
    error = reply.json()["error"]
    assert error["code"] == "model_not_allowed" and MODELS[0] in error["message"]
    assert stub_requests(gateway) == []  # never reached the provider
    (event,) = gateway.events("access.refused")
    assert set(event) >= AUDIT_FIELDS
    assert event["reason"] == "model_not_allowed" and event["model"] == MODELS[1]


def test_the_request_limit_answers_429_and_a_new_limit_applies_without_a_restart(
    gateway: Gateway,
) -> None:
    assert all(chat(gateway).status_code == 200 for _ in range(3))  # no limit yet
    gateway.configure(requestsPerMinute=4)
    # The window still holds the three: one more is admitted, then the limit answers.
    assert chat(gateway).status_code == 200
    refused = chat(gateway)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert len(stub_requests(gateway)) == 4
    assert [e["status"] for e in gateway.events("llm.request")][-1] == 429


def test_the_token_limit_answers_429_once_spent(gateway: Gateway) -> None:
    gateway.configure(tokensPerMinute=5)
    assert chat(gateway).status_code == 200  # under the limit when it starts; spends more
    refused = chat(gateway)
    assert refused.status_code == 429 and "Retry-After" in refused.headers


def test_an_unreachable_provider_is_a_502_that_says_so(gateway: Gateway) -> None:
    gateway.stub_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    gateway.configure()
    reply = chat(gateway)
    assert reply.status_code == 502
    assert reply.json()["error"]["code"] == "provider_unreachable"
    assert gateway.events("llm.request")[-1]["status"] == 502
