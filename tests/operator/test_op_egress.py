"""The workspace NetworkPolicy's egress, rule by rule (issue 13, finding 6). Pure builders.

An LLM endpoint opens its port only (the URL's, unless the admin names its pods' port) and,
when the admin says which pods serve it, only those pods; a Service-name URL never opens a
whole namespace on every port, and an endpoint in the workspace namespace itself is refused.
The hub API is reached where the settings say (the chart: through the proxy's port), so
workspace pods need no way to the hub's own port. Enforcement on a real node is tested by the
network-policy enforcement suite, not here.
"""

from __future__ import annotations

import json

import pytest
from devplane_dev.workspaces import EXAMPLE_PROVIDER, workspace_manifest
from devplane_operator.builders import build_networkpolicy
from devplane_operator.model import Refused, parse_workspace
from devplane_operator.policy import check_spec
from devplane_operator.settings import SettingsError, load_settings

HUB = "app.kubernetes.io/name=devplane,app.kubernetes.io/component=hub"
PROXY = "app.kubernetes.io/name=devplane,app.kubernetes.io/component=proxy"
DNS = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


def namespace(name: str) -> dict:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def tcp(*ports: int) -> list[dict]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def settings(providers: list[dict] | None = None, **env: str):
    base = {"DEVPLANE_NAMESPACES": "ws", "DEVPLANE_HUB_NAMESPACE": "devplane"}
    base["DEVPLANE_LLM_PROVIDERS"] = json.dumps(providers or [EXAMPLE_PROVIDER])
    return load_settings([], {**base, **env})


def ws(providers: list[dict], s=None):
    body = workspace_manifest("alice", "", {"namespace": "ws", "uid": "u"}, ai={
        "providers": providers})  # fmt: skip
    return parse_workspace(body, s or settings())


def egress(providers: list[dict], s=None) -> list[dict]:
    s = s or settings()
    return build_networkpolicy(ws(providers, s), s)["spec"]["egress"]


def provider(name: str, url: str, **extra) -> dict:
    return {"name": name, "baseURL": url, "models": ["m"], **extra}


def test_the_whole_egress_of_a_workspace_is_dns_the_hub_api_and_the_llm_port():
    rules = egress([EXAMPLE_PROVIDER])  # http://vllm.llm.svc:8000/v1
    hub = {"podSelector": {"matchLabels": dict(p.split("=") for p in HUB.split(","))}}
    hub |= namespace("devplane")
    assert rules == [
        DNS,
        {"to": [hub], "ports": tcp(8081)},
        {"to": [namespace("llm")], "ports": tcp(8000)},
    ]


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        # A Service name: that namespace, on the URL's port only (80/443 when it names none).
        ("http://vllm.llm.svc:8000/v1", {"to": [namespace("llm")], "ports": tcp(8000)}),
        ("http://vllm.llm.svc.cluster.local/v1", {"to": [namespace("llm")], "ports": tcp(80)}),
        ("https://vllm.llm/v1", {"to": [namespace("llm")], "ports": tcp(443)}),
        # An address: that address, on the URL's port.
        ("https://10.1.2.3/v1", {"to": [{"ipBlock": {"cidr": "10.1.2.3/32"}}], "ports": tcp(443)}),
        (
            "http://[fd00::7]:8080/v1",
            {"to": [{"ipBlock": {"cidr": "fd00::7/128"}}], "ports": tcp(8080)},
        ),
    ],
)
def test_an_llm_endpoint_opens_its_port_only(url, rule):
    rules = egress([provider("x", url)])
    assert rules[2:] == [rule]
    assert all(r.get("ports") for r in rules), "no rule may open every port"


def test_the_admin_narrows_a_service_to_its_pods_and_their_port():
    """The operator's own provider says which pods serve the endpoint and on which port (a
    Service's port is often not its pods'); a Workspace naming the same endpoint gets that."""
    served = provider(
        "vllm", "http://vllm.llm.svc:8000/v1",
        networkPolicy={"podSelector": {"matchLabels": {"app": "vllm"}}, "ports": tcp(8001)},
    )  # fmt: skip
    s = settings([served])
    peer = namespace("llm") | {"podSelector": {"matchLabels": {"app": "vllm"}}}
    # The Workspace's provider (as the spawner writes it: no networkPolicy) matches by endpoint.
    same_endpoint = provider("mine", "http://VLLM.llm.svc:8000/v2")
    assert egress([same_endpoint], s)[2:] == [{"to": [peer], "ports": tcp(8001)}]
    # Another port of the same host is another endpoint: derived, not the admin's.
    other_port = provider("other", "http://vllm.llm.svc:9000/v1")
    assert egress([other_port], s)[2:] == [{"to": [namespace("llm")], "ports": tcp(9000)}]


def test_the_admin_places_an_endpoint_a_host_name_cannot():
    farm = provider(
        "farm", "https://llm.gpu-farm.example.internal/v1",
        networkPolicy={"to": [{"ipBlock": {"cidr": "10.60.0.0/24"}}]},
    )  # fmt: skip
    s = settings([farm])
    assert egress([farm], s)[2:] == [
        {"to": [{"ipBlock": {"cidr": "10.60.0.0/24"}}], "ports": tcp(443)}
    ]
    # Without it, a host name outside the cluster opens nothing (the allowlist is the way).
    elsewhere = provider("x", "https://llm.elsewhere.example/v1")
    assert egress([elsewhere], s)[2:] == []


def test_a_workspace_cannot_widen_its_own_egress():
    """Where an endpoint is comes from the operator's settings only: a networkPolicy in the
    Workspace's spec (which the CRD would drop anyway) is ignored."""
    wide = provider(
        "x", "http://vllm.llm.svc:8000/v1",
        networkPolicy={"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": []},
    )  # fmt: skip
    assert egress([wide])[2:] == [{"to": [namespace("llm")], "ports": tcp(8000)}]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://vllm:8000/v1", "'vllm' is a bare name"),
        ("http://vllm.ws.svc:8000/v1", "in the workspace namespace ws"),
        ("http://vllm.ws:8000/v1", "in the workspace namespace ws"),
    ],
)
def test_an_endpoint_in_the_workspace_namespace_itself_is_refused(url, words):
    with pytest.raises(Refused) as info:
        check_spec(ws([provider("x", url)]), settings())
    message = str(info.value)
    assert "spec.ai.providers[0].baseURL" in message and words in message
    assert "<service>.<namespace>.svc" in message  # how to fix it


def test_the_hub_api_is_reached_where_the_settings_say():
    """The chart sends workspaces to the hub API through the proxy (its port 8000), so the
    hub's own port is not among a workspace's destinations."""
    s = settings(DEVPLANE_HUB_API_SELECTOR=PROXY, DEVPLANE_HUB_API_PORT="8000")
    proxy = {"podSelector": {"matchLabels": dict(p.split("=") for p in PROXY.split(","))}}
    assert egress([EXAMPLE_PROVIDER], s)[1] == {
        "to": [proxy | namespace("devplane")],
        "ports": tcp(8000),
    }
    # Who may connect to the workspace is unchanged: the proxy and the hub.
    netpol = build_networkpolicy(ws([EXAMPLE_PROVIDER], s), s)
    sources = [p["podSelector"]["matchLabels"] for p in netpol["spec"]["ingress"][0]["from"]]
    assert [labels["app.kubernetes.io/component"] for labels in sources] == ["hub", "proxy"]


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        ({"to": [namespace("x")], "podSelector": {"matchLabels": {"a": "b"}}}, "not both"),
        ({"ports": [{"protocol": "TCP", "port": 70000}]}, "networkPolicy.ports"),
        ({"to": "everywhere"}, "networkPolicy.to"),
        ({"podSelector": {"app": "vllm"}}, "networkPolicy.podSelector"),
        ({"namespace": "llm"}, "networkPolicy may hold"),
    ],
)
def test_a_providers_network_policy_is_checked_at_start_up(policy, problem):
    with pytest.raises(SettingsError) as info:
        settings([provider("vllm", "http://vllm.llm.svc:8000/v1", networkPolicy=policy)])
    assert "DEVPLANE_LLM_PROVIDERS" in str(info.value) and problem in str(info.value)


def test_the_default_providers_network_policy_stays_out_of_opencode():
    served = provider("vllm", "http://vllm.llm.svc:8000/v1", networkPolicy={"ports": tcp(8001)})
    s = settings([served])
    body = workspace_manifest("alice", "", {"namespace": "ws", "uid": "u"})
    assert "networkPolicy" not in parse_workspace(body, s).ai["providers"][0]
