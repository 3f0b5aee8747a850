"""What an LLM provider entry may hold: the shape of ``DEVPLANE_LLM_PROVIDERS`` entries (and of
``spec.ai.providers``, which the CRD checks), plus the admin-only ``networkPolicy`` that says
where an endpoint is (netpol.py). Pure checks that return the problem in words, or None.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

# A lower-case DNS label (RFC 1123): provider names, named ports; settings.py uses it too.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def validate_provider(provider: Any, where: str) -> str | None:
    """Problem with one LLM provider entry (same shape as spec.ai.providers[]), or None."""
    if not isinstance(provider, dict):
        return f"{where} must be an object"
    name = provider.get("name")
    if not isinstance(name, str) or not DNS_LABEL.fullmatch(name):
        return f"{where}.name must be a lower-case DNS label"
    url = provider.get("baseURL")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{where}.baseURL must be an http:// or https:// URL with a host"
    models = provider.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        return f"{where}.models must be a non-empty list of model names"
    ref = provider.get("apiKeySecretRef")
    if ref is not None and not (isinstance(ref, dict) and ref.get("name") and ref.get("key")):
        return f"{where}.apiKeySecretRef must have a name and a key"
    if "networkPolicy" in provider:
        return _network_policy_problem(provider["networkPolicy"], f"{where}.networkPolicy")
    return None


def _is_port(port: Any) -> bool:
    """A NetworkPolicyPort: a port number (or a named port), an optional protocol."""
    if not isinstance(port, dict) or set(port) - {"protocol", "port", "endPort"}:
        return False
    number = port.get("port")
    named = isinstance(number, str) and DNS_LABEL.fullmatch(number) is not None
    numbered = type(number) is int and 1 <= number <= 65535
    return (named or numbered) and port.get("protocol", "TCP") in ("TCP", "UDP", "SCTP")


def _network_policy_problem(policy: Any, where: str) -> str | None:
    """Problem with a provider's networkPolicy (where its endpoint is, for the egress rule:
    the chart's llm.providers[].networkPolicy, passed on), or None."""
    if not isinstance(policy, dict):
        return f"{where} must be an object"
    unknown = set(policy) - {"to", "podSelector", "ports"}
    if unknown:
        return f"{where} may hold to, podSelector and ports, not {', '.join(sorted(unknown))}"
    if "to" in policy and "podSelector" in policy:
        return f"{where}: to or podSelector, not both (to names every peer itself)"
    to = policy.get("to")
    if to is not None and not (
        isinstance(to, list) and to and all(isinstance(peer, dict) and peer for peer in to)
    ):
        return f"{where}.to must be a non-empty list of NetworkPolicy peers"
    pods = policy.get("podSelector")
    if pods is not None and not (
        isinstance(pods, dict) and pods and set(pods) <= {"matchLabels", "matchExpressions"}
    ):
        return f"{where}.podSelector must be a label selector (matchLabels, matchExpressions)"
    ports = policy.get("ports")
    if ports is not None and not (isinstance(ports, list) and ports and all(map(_is_port, ports))):
        return f"{where}.ports must be a non-empty list of {{protocol, port}}, ports 1-65535"
    return None
