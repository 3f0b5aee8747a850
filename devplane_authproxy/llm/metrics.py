"""Prometheus counters of the gateway, labelled by user, provider and model.

``devplane_llm_requests_total{user,provider,model,status}`` counts every request the gateway
answered (refusals included: status 403, 429, ...), and ``devplane_llm_tokens_total{user,
provider,model,kind}`` the tokens the provider reported, ``kind`` = ``prompt`` or
``completion``. "Who used how much this week" is then
``sum by (user) (increase(devplane_llm_tokens_total[7d]))`` (docs/llm-gateway.md).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)
REQUESTS = Counter(
    "devplane_llm_requests",
    "LLM requests the workspace's gateway answered, by status",
    ["user", "provider", "model", "status"],
    registry=REGISTRY,
)
TOKENS = Counter(
    "devplane_llm_tokens",
    "Tokens the LLM provider reported (usage), by kind: prompt or completion",
    ["user", "provider", "model", "kind"],
    registry=REGISTRY,
)


def exposition() -> bytes:
    return generate_latest(REGISTRY)
