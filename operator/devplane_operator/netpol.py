"""Who may connect to a workspace pod, and where it may connect: its NetworkPolicy's rules.

Ingress: the hub and the proxy, on the auth proxy's port. Egress: DNS, the hub API (where the
settings say: the chart sends workspaces through the proxy, so the hub's own port is not among
them), each LLM endpoint on its port only, and the admin's allowlist (docs/operator.md,
"NetworkPolicy"). An endpoint's URL becomes:

* an IP address -> that address, on the URL's port;
* an in-cluster Service name (``svc.ns.svc[.cluster.local]``, ``svc.ns``) -> the pods of
  namespace ``ns``, on the URL's port. A NetworkPolicy sees the pods' port, which is the URL's
  unless the Service maps it: the admin then names the pods' port, and may name the pods;
* any other host name -> where the admin says, else nothing (the allowlist is the way).
Never the workspace namespace itself (a bare ``svc`` resolves there): that is other users'
pods, and policy.py refuses such an endpoint.

What the admin says comes from the operator's own providers (DEVPLANE_LLM_PROVIDERS, their
``networkPolicy``), matched by endpoint: a Workspace cannot widen its own egress. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from devplane_api.v1alpha1 import METRICS_PORT, PROXY_PORT

from .endpoint import Endpoint
from .model import Workspace
from .settings import Settings

Rule = dict[str, Any]


def namespace_peer(namespace: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def tcp(port: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port}]


def _peers(
    ws: Workspace, settings: Settings, *selectors: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The pods with each of ``selectors`` in the hub's namespace."""
    peers = []
    for labels in selectors:
        if not labels:
            continue  # an empty selector would mean "every pod": never what we want here
        peer: dict[str, Any] = {"podSelector": {"matchLabels": dict(labels)}}
        if settings.hub_namespace and settings.hub_namespace != ws.namespace:
            peer |= namespace_peer(settings.hub_namespace)
        peers.append(peer)
    return peers


def ingress_rules(ws: Workspace, settings: Settings) -> list[Rule]:
    """The hub (readiness) and the proxy (users' traffic), to the auth proxy's port only; and
    the configured scrapers to the metrics port, when there is one."""
    peers = _peers(ws, settings, settings.hub_selector, settings.proxy_selector)
    rules = [{"from": peers, "ports": tcp(PROXY_PORT)}] if peers else []
    if settings.metrics_scrapers:
        rules.append({"from": list(settings.metrics_scrapers), "ports": tcp(METRICS_PORT)})
    return rules


def llm_rule(endpoint: Endpoint, workspace_namespace: str, admin: Mapping[str, Any]) -> Rule | None:
    """The egress rule of one endpoint (``admin``: the operator's networkPolicy for it), or
    None when nothing can say where it is."""
    ports = admin.get("ports") or tcp(endpoint.port)
    address = endpoint.address
    if admin.get("to"):
        peers = list(admin["to"])
    elif address is not None:
        peers = [{"ipBlock": {"cidr": f"{address}/{address.max_prefixlen}"}}]
    elif endpoint.namespace and endpoint.namespace != workspace_namespace:
        peer = namespace_peer(endpoint.namespace)
        if admin.get("podSelector"):
            peer["podSelector"] = admin["podSelector"]
        peers = [peer]
    else:
        return None
    return {"to": peers, "ports": ports}


def llm_rules(ws: Workspace, settings: Settings) -> list[Rule]:
    """One rule per distinct endpoint of the Workspace's providers."""
    admin = {
        Endpoint.of(p["baseURL"]): p["networkPolicy"]
        for p in settings.llm_providers
        if p.get("networkPolicy")
    }
    rules: dict[str, Rule] = {}
    for provider in ws.ai.get("providers", []):
        endpoint = Endpoint.of(provider["baseURL"])
        rule = llm_rule(endpoint, ws.namespace, admin.get(endpoint, {}))
        if rule is not None:
            rules[json.dumps(rule, sort_keys=True)] = rule
    return [rules[key] for key in sorted(rules)]


def egress_rules(ws: Workspace, settings: Settings) -> list[Rule]:
    dns = {
        "namespaceSelector": namespace_peer(settings.dns_namespace)["namespaceSelector"],
        "podSelector": {"matchLabels": dict(settings.dns_selector)},
    }
    rules: list[Rule] = [
        {"to": [dns], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    ]
    hub_api = _peers(ws, settings, settings.hub_api_selector)
    if hub_api:
        rules.append({"to": hub_api, "ports": tcp(settings.hub_api_port)})
    rules.extend(llm_rules(ws, settings))
    for entry in settings.egress_allowlist:
        rule: Rule = {"to": [{"ipBlock": {"cidr": entry.cidr}}]}
        if entry.ports:
            rule["ports"] = [{"protocol": entry.protocol, "port": p} for p in entry.ports]
        rules.append(rule)
    return rules
