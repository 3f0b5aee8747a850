"""The operator's API client: proxy settings read once, nothing re-read per request.

These need no cluster: ``Kube.connect()`` only builds the client.
"""

from __future__ import annotations

from devplane_operator import kube as kube_module
from devplane_operator.kube import Kube, proxy_from_environment
from kubernetes_asyncio import client as k8s

API = "https://10.96.0.1:443"


def test_a_proxy_applies_unless_no_proxy_exempts_the_host(monkeypatch):
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert proxy_from_environment(API) is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    assert proxy_from_environment(API) == "http://proxy.corp.example:3128"
    assert proxy_from_environment("http://10.96.0.1:80") is None  # only HTTPS_PROXY is set
    monkeypatch.setenv("NO_PROXY", "localhost,10.96.0.1")
    assert proxy_from_environment(API) is None
    assert proxy_from_environment("https://api.other.example") == "http://proxy.corp.example:3128"


async def test_the_client_reads_the_environment_once_not_per_request(monkeypatch):
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")

    async def configuration() -> k8s.Configuration:  # what a kubeconfig or the pod gives
        config = k8s.Configuration()
        config.host = API
        return config

    monkeypatch.setattr(kube_module, "load_configuration", configuration)
    kube = await Kube.connect()
    try:
        # The proxy from the environment is kept...
        assert kube.api.configuration.proxy == "http://proxy.corp.example:3128"
        # ...but aiohttp is not asked to look it (and ~/.netrc) up again on every request.
        assert kube.api.rest_client.pool_manager.trust_env is False
    finally:
        await kube.close()
