"""`helm lint` and `helm template` over the defaults and every chart/ci value set.

No cluster needed: these check what the chart renders — names, namespaces, images, security
contexts, NetworkPolicies, RBAC — and that the CRD and the hub configuration come from their
single sources.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from chart_helpers import CHART, ROOT, VALUE_SETS, container_env, find, one, pod_specs, values_file

from devplane_api.v1alpha1 import APP_NAME, APP_NAME_VALUE, MANAGED_BY, MANAGED_BY_VALUE

CRD_FILE = CHART / "crds" / "workspaces.devplane.io.yaml"
HUB_CONFIG = ROOT / "hub_config" / "jupyterhub_config.py"
CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_lint(helm, value_set: str) -> None:
    result = helm("lint", "--strict", str(CHART), *values_file(value_set))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_object_is_labelled_and_namespaced(render, value_set: str) -> None:
    docs = render(value_set, namespace="team-a")
    assert docs, "nothing rendered"
    workspace_ns = "team-a-workspaces"
    for doc in docs:
        meta = doc["metadata"]
        where = f"{doc['kind']}/{meta['name']}"
        assert meta["labels"]["app.kubernetes.io/part-of"] == "devplane", where
        assert meta["labels"]["app.kubernetes.io/instance"] == "devplane", where
        assert len(meta["name"]) <= 63, where
        if doc["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in meta, where
            continue
        # Explicit namespaces: nothing may land in whatever namespace kubectl defaults to.
        if value_set == "named-servers" and meta["namespace"] != "team-a":
            assert meta["namespace"] == workspace_ns, where
        else:
            assert meta["namespace"] in ("team-a", workspace_ns), where
    # Nothing cluster-wide but the (optional) workspace Namespace.
    assert {d["kind"] for d in docs} & CLUSTER_SCOPED <= {"Namespace"}


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_pod_is_restricted(render, value_set: str) -> None:
    """PodSecurity `restricted`, field by field, plus what docs/architecture.md's security
    model adds."""
    specs = pod_specs(render(value_set))
    assert {name.removeprefix("devplane-") for name, _ in specs} >= {"hub", "proxy", "operator"}
    for name, spec in specs:
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True, name
        assert psc["runAsUser"] > 0, name
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["enableServiceLinks"] is False, name
        # Only the hub and the operator talk to the Kubernetes API.
        wants_token = name in ("devplane-hub", "devplane-operator")
        assert spec["automountServiceAccountToken"] is wants_token, name
        assert "hostNetwork" not in spec and "hostPID" not in spec, name
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["runAsNonRoot"] is True, name
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), name
            assert c["image"].split(":")[-1] != "latest", name


def test_images_default_to_app_version(render) -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    docs = render("defaults")
    images = {c["image"] for _, spec in pod_specs(docs) for c in spec["containers"]}
    assert f"devplane/hub:{app_version}" in images
    assert f"devplane/operator:{app_version}" in images
    env = container_env(
        one(docs, "Deployment", "-operator")["spec"]["template"]["spec"]["containers"][0]
    )
    assert env["DEVPLANE_WORKSPACE_IMAGE"] == f"devplane/workspace:{app_version}"
    assert env["DEVPLANE_AUTHPROXY_IMAGE"] == f"devplane/hub:{app_version}"


def test_airgapped_every_image_comes_from_the_mirror(render) -> None:
    docs = render("airgapped")
    prefix = "registry.example.internal/devplane-mirror/"
    images = [c["image"] for _, spec in pod_specs(docs) for c in spec["containers"]]
    operator = one(docs, "Deployment", "-operator")
    env = container_env(operator["spec"]["template"]["spec"]["containers"][0])
    images += [env["DEVPLANE_WORKSPACE_IMAGE"], env["DEVPLANE_AUTHPROXY_IMAGE"]]
    hub_env = container_env(
        one(docs, "Deployment", "-hub")["spec"]["template"]["spec"]["containers"][0]
    )
    images.append(hub_env["DEVPLANE_WORKSPACE_IMAGE"])
    assert images and all(i.startswith(prefix) for i in images), images
    assert any(i.endswith("@sha256:" + "0123456789abcdef" * 4) for i in images)
    for _, spec in pod_specs(docs):
        assert spec["imagePullSecrets"] == [{"name": "mirror-pull"}]
    # Workspace settings the operator applies to every workspace pod.
    assert env["DEVPLANE_PIP_INDEX_URL"] == "https://pypi-mirror.example.internal/simple"
    assert env["DEVPLANE_NPM_REGISTRY"] == "https://npm-mirror.example.internal/"
    assert env["DEVPLANE_EGRESS_ALLOWLIST"] == (
        "10.40.0.0/24:443/TCP,10.40.1.7/32:22/TCP,10.40.1.7/32:443/TCP,10.41.0.0/16"
    )
    # The CA bundle: a ConfigMap in both namespaces, trusted by the hub and the operator.
    bundles = find(docs, "ConfigMap", "-ca-bundle")
    assert {b["metadata"]["namespace"] for b in bundles} == {"devplane", "devplane-workspaces"}
    assert env["DEVPLANE_CA_BUNDLE_CONFIGMAP"] == bundles[0]["metadata"]["name"]
    assert hub_env["SSL_CERT_FILE"] == "/etc/devplane/ca/ca.crt"
    assert hub_env["DEVPLANE_OIDC_CA_FILE"] == "/etc/devplane/ca/ca.crt"


def test_what_workspaces_may_reference(render, helm) -> None:
    """Images from the chart's own registry unless listed; API-key Secrets from the list (the
    providers' own are allowed by the operator itself); a profile the operator would refuse
    fails the render (issue 13, finding 5)."""

    def operator_env(docs):
        deployment = one(docs, "Deployment", "-operator")
        return container_env(deployment["spec"]["template"]["spec"]["containers"][0])

    # No registry anywhere: empty, so the operator allows its default image's path.
    env = operator_env(render("defaults"))
    assert env["DEVPLANE_ALLOWED_IMAGE_REGISTRIES"] == ""
    assert env["DEVPLANE_API_KEY_SECRETS"] == ""
    # The mirror is the chart's registry.
    env = operator_env(render("airgapped"))
    assert env["DEVPLANE_ALLOWED_IMAGE_REGISTRIES"] == "registry.example.internal/devplane-mirror"
    listed = render(
        "defaults",
        "--set", "workspaces.allowedImageRegistries={registry.example/a/,registry.example:5000}",
        "--set", "llm.apiKeySecrets={llm-key,other-key}",
    )  # fmt: skip
    env = operator_env(listed)
    assert env["DEVPLANE_ALLOWED_IMAGE_REGISTRIES"] == "registry.example/a,registry.example:5000"
    assert env["DEVPLANE_API_KEY_SECRETS"] == "llm-key,other-key"

    profile = ["--set", "hub.profiles[0].slug=gpu", "--set", "hub.profiles[0].display_name=GPU"]
    refused = helm("template", "x", str(CHART), *profile,
                   "--set", "hub.profiles[0].image=elsewhere.example/ws:1")  # fmt: skip
    assert refused.returncode != 0
    assert 'hub.profiles[0].image "elsewhere.example/ws:1" is not under' in refused.stderr
    assert "(devplane)" in refused.stderr and "workspaces.allowedImageRegistries" in refused.stderr
    accepted = helm("template", "x", str(CHART), *profile,
                    "--set", "hub.profiles[0].image=devplane/workspace:gpu")  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr


def test_ingress_with_tls(render) -> None:
    docs = render("ingress-tls")
    ingress = one(docs, "Ingress", "devplane")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [
        {"hosts": ["devplane.example.internal"], "secretName": "devplane-tls"}
    ]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "devplane-proxy-public"
    hub_env = container_env(
        one(docs, "Deployment", "-hub")["spec"]["template"]["spec"]["containers"][0]
    )
    # The OIDC callback follows the public https URL and the base URL.
    assert (
        hub_env["DEVPLANE_OIDC_CALLBACK_URL"]
        == "https://devplane.example.internal/devplane/hub/oauth_callback"
    )
    # So does the hub's public URL (Secure cookies); it listens on every address.
    assert hub_env["DEVPLANE_PUBLIC_URL"] == "https://devplane.example.internal/devplane/"
    assert hub_env["DEVPLANE_BIND_URL"] == "http://0.0.0.0:8000/devplane/"
    # The client secret is a file from the admin's Secret, never an environment variable.
    assert hub_env["DEVPLANE_OIDC_CLIENT_SECRET_FILE"] == "/etc/devplane/secrets/oidc/client-secret"
    hub_pod = one(docs, "Deployment", "-hub")["spec"]["template"]["spec"]
    (volume,) = [v for v in hub_pod["volumes"] if v["name"] == "oidc-client-secret"]
    assert volume["secret"]["secretName"] == "devplane-oidc"
    assert volume["secret"]["items"] == [{"key": "secret", "path": "client-secret"}]
    assert not [
        e for e in hub_pod["containers"][0]["env"] if "secretKeyRef" in e.get("valueFrom", {})
    ]
    # Only the Ingress controller's namespace may reach the proxy's public port.
    proxy_np = one(docs, "NetworkPolicy", "-proxy")
    public = [r for r in proxy_np["spec"]["ingress"] if r["ports"][0]["port"] == 8000]
    assert public[0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
    assert not find(render("defaults"), "Ingress")


def test_named_servers_and_profiles(render) -> None:
    docs = render("named-servers")
    assert not find(docs, "Namespace"), "workspaces.namespace.create=false must not make one"
    env = container_env(
        one(docs, "Deployment", "-hub")["spec"]["template"]["spec"]["containers"][0]
    )
    assert env["DEVPLANE_NAMED_SERVERS"] == "true"
    assert env["DEVPLANE_NAMED_SERVER_LIMIT"] == "3"
    assert env["DEVPLANE_ADMIN_ACCESS"] == "true"
    # ...which comes with each user's server on a host of its own.
    assert env["DEVPLANE_SUBDOMAIN_HOST"] == "https://devplane.example.internal"
    profiles = json.loads(env["DEVPLANE_PROFILES"])
    assert [p["slug"] for p in profiles] == ["small", "large"]
    assert env["DEVPLANE_STORAGE_RECLAIM_POLICY"] == "Delete"


def _namespace(name: str) -> dict:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _component(name: str, namespace: str = "devplane") -> dict:
    labels = {"app.kubernetes.io/name": "devplane", "app.kubernetes.io/instance": "devplane"}
    labels["app.kubernetes.io/component"] = name
    return _namespace(namespace) | {"podSelector": {"matchLabels": labels}}


WORKSPACE_PODS = _namespace("devplane-workspaces") | {
    "podSelector": {"matchLabels": {MANAGED_BY: MANAGED_BY_VALUE, APP_NAME: APP_NAME_VALUE}}
}
DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
DNS_PODS = _namespace("kube-system") | {"podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}


def _tcp(*ports: int) -> list[dict]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def test_workspace_network_policy_default_deny_and_allowances(render) -> None:
    """Rule by rule (issue 13, finding 6): an LLM endpoint opens its port only, and its pods
    when the chart knows them; the hub API is reached through the proxy's port, never the
    hub's own."""
    docs = render("multi-llm")
    deny = one(docs, "NetworkPolicy", "-default-deny")
    assert deny["metadata"]["namespace"] == "devplane-workspaces"
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    ws = one(docs, "NetworkPolicy", "-workspaces")["spec"]
    assert ws["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "devplane-workspace"
    # Ingress: the proxy and the hub, to the auth proxy's port only.
    assert ws["ingress"] == [
        {"from": [_component("proxy"), _component("hub")], "ports": _tcp(8888)}
    ]
    # Egress, exactly: DNS, the hub API through the proxy, one rule per LLM provider.
    dns, hub_api, vllm, farm, small, onprem = ws["egress"]
    assert dns["ports"] == DNS_PORTS
    assert hub_api == {"to": [_component("proxy")], "ports": _tcp(8000)}
    # An in-cluster Service: its namespace, on the URL's port.
    assert vllm == {"to": [_namespace("llm")], "ports": _tcp(8000)}
    # Outside the cluster: where the values say, on the URL's port.
    assert farm == {"to": [{"ipBlock": {"cidr": "10.60.0.0/24"}}], "ports": _tcp(443)}
    # Narrowed by the values: that namespace's pods of the selector, on their port.
    assert small == {
        "to": [_namespace("models") | {"podSelector": {"matchLabels": {"app": "small-llm"}}}],
        "ports": _tcp(8081),
    }
    assert onprem == {"to": [{"ipBlock": {"cidr": "10.70.0.5/32"}}], "ports": _tcp(8000)}
    # The operator writes the same per workspace: it gets the providers with where they are
    # (networkPolicy), and sends workspaces to the hub API through the proxy; the spawner (the
    # hub) gets them without.
    op_env = container_env(
        one(docs, "Deployment", "-operator")["spec"]["template"]["spec"]["containers"][0]
    )
    providers = json.loads(op_env["DEVPLANE_LLM_PROVIDERS"])
    assert [p["name"] for p in providers] == ["vllm", "gpu-farm", "small", "onprem"]
    assert providers[2]["networkPolicy"] == {
        "podSelector": {"matchLabels": {"app": "small-llm"}},
        "ports": _tcp(8081),
    }
    assert providers[1]["apiKeySecretRef"] == {"name": "gpu-farm-key", "key": "api-key"}
    assert op_env["DEVPLANE_HUB_API_SELECTOR"] == (
        "app.kubernetes.io/component=proxy,app.kubernetes.io/instance=devplane,"
        "app.kubernetes.io/name=devplane"
    )
    assert op_env["DEVPLANE_HUB_API_PORT"] == "8000"
    hub_env = container_env(
        one(docs, "Deployment", "-hub")["spec"]["template"]["spec"]["containers"][0]
    )
    assert all("networkPolicy" not in p for p in json.loads(hub_env["DEVPLANE_AI_PROVIDERS"]))
    # Workspaces' auth proxies call the hub API at the proxy's Service, not the hub's.
    assert hub_env["DEVPLANE_WORKSPACE_HUB_URL"] == "http://devplane-proxy-public.devplane.svc:80"


def test_system_network_policies(render) -> None:
    """The hub and the operator reach the API server's address and port only, and the hub the
    OIDC provider's (issue 13, finding 6); workspaces never reach the hub's own port."""
    # API server 10.0.0.1:6443, OIDC provider 10.50.0.10:443, the hub's database 10.60.1.5:5432
    docs = render("airgapped")
    api = {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}], "ports": _tcp(6443)}
    hub = one(docs, "NetworkPolicy", "-hub")["spec"]
    # In: the proxy and the hub itself (its idle culler calls the API through the Service).
    assert hub["ingress"] == [
        {"from": [_component("proxy"), _component("hub")], "ports": _tcp(8081)}
    ]
    assert hub["egress"] == [
        {"to": [DNS_PODS], "ports": DNS_PORTS},
        api,
        {"to": [{"ipBlock": {"cidr": "10.50.0.10/32"}}], "ports": _tcp(443)},  # OIDC
        {"to": [_component("proxy")], "ports": _tcp(8001)},
        {"to": [_component("hub")], "ports": _tcp(8081)},
        {"to": [WORKSPACE_PODS], "ports": _tcp(8888)},
        # hub.extraEgress: the site's PostgreSQL (hub.db.type postgres).
        {"to": [{"ipBlock": {"cidr": "10.60.1.5/32"}}], "ports": _tcp(5432)},
    ]  # fmt: skip
    operator = one(docs, "NetworkPolicy", "-operator")["spec"]
    assert "ingress" not in operator and "Ingress" in operator["policyTypes"]
    assert operator["egress"][1:] == [api], "DNS and the API server only"
    # The proxy: users on 8000 (and workspaces, for the hub API, whoever else is let in), the
    # hub on its route API.
    proxy = one(docs, "NetworkPolicy", "-proxy")["spec"]
    assert proxy["ingress"] == [
        {"ports": _tcp(8000)},
        {"from": [WORKSPACE_PODS], "ports": _tcp(8000)},
        {"from": [_component("hub")], "ports": _tcp(8001)},
    ]
    assert not find(render("minimal"), "NetworkPolicy")


def test_the_api_server_address_is_looked_up_or_named(helm) -> None:
    """Without a cluster to look it up in, and unnamed, the render fails saying what to set
    (no silent 0.0.0.0/0)."""
    unnamed = helm("template", "x", str(CHART), "--set-json", "networkPolicy.kubeAPI.cidrs=[]")
    assert unnamed.returncode != 0
    assert "networkPolicy.kubeAPI.cidrs" in unnamed.stderr
    assert "kubectl get endpointslice -n default kubernetes" in unnamed.stderr
    # Without NetworkPolicies there is nothing to look up.
    off = helm("template", "x", str(CHART), "--set-json", "networkPolicy.kubeAPI.cidrs=[]",
               "--set", "networkPolicy.enabled=false")  # fmt: skip
    assert off.returncode == 0, off.stderr


def test_the_oidc_provider_is_derived_from_an_address_or_named(helm, render) -> None:
    login = ["--set", "hub.oidc.clientId=devplane"]
    by_address = render(
        "defaults", *login, "--set", "hub.oidc.issuer=https://10.50.0.7:8443/realms/x"
    )
    hub = one(by_address, "NetworkPolicy", "-hub")["spec"]
    assert {"to": [{"ipBlock": {"cidr": "10.50.0.7/32"}}], "ports": _tcp(8443)} in hub["egress"]
    # A host name cannot be a NetworkPolicy peer: the values must say where it is.
    by_name = helm("template", "x", str(CHART), *login,
                   "--set", "hub.oidc.issuer=https://sso.example.internal/realms/x")  # fmt: skip
    assert by_name.returncode != 0
    assert "networkPolicy.oidc.cidrs" in by_name.stderr and "sso.example.internal" in by_name.stderr
    named = render("ingress-tls")  # sso.example.internal, named 10.50.0.20/32
    hub = one(named, "NetworkPolicy", "-hub")["spec"]
    assert {"to": [{"ipBlock": {"cidr": "10.50.0.20/32"}}], "ports": _tcp(443)} in hub["egress"]
    # No login configured (the defaults): no rule for it.
    hub = one(render("defaults"), "NetworkPolicy", "-hub")["spec"]
    assert all("10.50" not in json.dumps(rule) for rule in hub["egress"])


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://vllm:8000/v1", "a bare host name resolves in the workspace namespace"),
        ("http://vllm.devplane-workspaces.svc:8000/v1", "is the workspace namespace"),
    ],
)
def test_no_llm_endpoint_in_the_workspace_namespace(helm, url, words) -> None:
    result = helm(
        "template", "x", str(CHART), "--namespace", "devplane",
        "--set", "llm.providers[0].name=own",
        "--set", f"llm.providers[0].baseURL={url}",
        "--set", "llm.providers[0].models[0]=m",
    )  # fmt: skip
    assert result.returncode != 0
    assert "llm.providers[0]" in result.stderr and words in result.stderr


def test_no_llm_endpoint_it_cannot_express(helm) -> None:
    result = helm(
        "template", "x", str(CHART),
        "--set", "llm.providers[0].name=ext",
        "--set", "llm.providers[0].baseURL=https://llm.example.internal/v1",
        "--set", "llm.providers[0].models[0]=m",
    )  # fmt: skip
    assert result.returncode != 0
    assert "llm.providers[0].networkPolicy.to" in result.stderr


def test_admin_access_needs_per_user_subdomains_over_https(helm, render) -> None:
    """A user's page must never run on the hub's origin in an admin's browser."""
    result = helm("template", "x", str(CHART), "--set", "hub.adminAccess=true")
    assert result.returncode != 0
    assert "hub.adminAccess needs hub.perUserSubdomains=true" in result.stderr
    result = helm("template", "x", str(CHART), "--set", "hub.perUserSubdomains=true",
                  "--set", "hub.publicURL=http://devplane.example.internal")  # fmt: skip
    assert result.returncode != 0
    assert "hub.perUserSubdomains needs an https public URL" in result.stderr
    # Behind the Ingress: the users' hosts are routed to the same proxy, under the same TLS.
    docs = render("ingress-tls", "--set", "hub.adminAccess=true",
                  "--set", "hub.perUserSubdomains=true")  # fmt: skip
    ingress = one(docs, "Ingress", "devplane")["spec"]
    hosts = ["devplane.example.internal", "*.devplane.example.internal"]
    assert ingress["tls"][0]["hosts"] == hosts
    assert [rule["host"] for rule in ingress["rules"]] == hosts
    assert ingress["rules"][0]["http"] == ingress["rules"][1]["http"]
    env = container_env(
        one(docs, "Deployment", "-hub")["spec"]["template"]["spec"]["containers"][0]
    )
    assert env["DEVPLANE_SUBDOMAIN_HOST"] == "https://devplane.example.internal"


def test_routing_to_pod_ips_is_not_offered(helm, render) -> None:
    """Only a Service sends traffic to a pod whose auth proxy is ready; a pod's IP reaches
    whatever listens on the proxy's port, the user's own processes too once it is down."""
    result = helm("template", "x", str(CHART), "--set", "hub.spawner.connectVia=pod-ip")
    assert result.returncode != 0
    assert "hub.spawner.connectVia=pod-ip is not offered" in result.stderr
    env = container_env(
        one(render("defaults"), "Deployment", "-hub")["spec"]["template"]["spec"]["containers"][0]
    )
    assert env["DEVPLANE_HUB_CONNECT_VIA"] == "service"


def test_ingress_needs_host_and_tls_secret(helm) -> None:
    no_host = helm("template", "x", str(CHART), "--set", "ingress.enabled=true")
    assert no_host.returncode != 0 and "ingress.host" in no_host.stderr
    no_secret = helm(
        "template", "x", str(CHART), "--set", "ingress.enabled=true",
        "--set", "ingress.host=a.example.internal", "--set", "ingress.tls.enabled=true",
    )  # fmt: skip
    assert no_secret.returncode != 0 and "ingress.tls.secretName" in no_secret.stderr


# ------------------------------------------------------------------ single sources


def test_crd_comes_only_from_its_single_source(render) -> None:
    """Helm installs chart/crds/ as is: the rendered CRD is the file, and no copy exists."""
    source = yaml.safe_load(CRD_FILE.read_text())
    crds = find(render("defaults", crds=True), "CustomResourceDefinition")
    assert crds == [source]
    assert not find(render("defaults"), "CustomResourceDefinition"), "templates must not add one"
    # No other file in the repository defines the Workspace CRD.
    patterns = ["*.yaml", "*.yml", "*.json"]
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", *patterns],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout.split()  # fmt: skip
    copies = [
        path
        for path in tracked
        if Path(ROOT / path).is_file()
        and path != "chart/crds/workspaces.devplane.io.yaml"
        and "CustomResourceDefinition" in (text := (ROOT / path).read_text(errors="replace"))
        and "workspaces.devplane.io" in text
    ]
    assert copies == [], f"copies of the CRD (edit chart/crds/ only): {copies}"


def test_hub_config_is_hub_config_py(render) -> None:
    """The ConfigMap carries hub_config/jupyterhub_config.py byte for byte."""
    link = CHART / "files" / "jupyterhub_config.py"
    assert link.is_symlink() and link.resolve() == HUB_CONFIG.resolve()
    cm = one(render("defaults"), "ConfigMap", "-hub")
    assert cm["data"]["jupyterhub_config.py"] == HUB_CONFIG.read_text()


def test_packaged_chart_carries_the_real_files(helm, tmp_path: Path) -> None:
    """`helm package` follows the symlink (a chart archive has the file, not a dangling link)
    and keeps the CI value sets out."""
    result = helm("package", str(CHART), "--destination", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (archive,) = tmp_path.glob("devplane-*.tgz")
    with tarfile.open(archive) as tar:
        member = tar.getmember("devplane/files/jupyterhub_config.py")
        assert member.isfile()
        content = tar.extractfile(member).read().decode()
        names = tar.getnames()
    assert content == HUB_CONFIG.read_text()
    assert "devplane/crds/workspaces.devplane.io.yaml" in names
    assert not [n for n in names if n.startswith("devplane/ci/")]
    # The packaged chart renders the same hub configuration.
    rendered = helm("template", "x", str(archive)).stdout
    cms = [d for d in yaml.safe_load_all(io.StringIO(rendered)) if d and d["kind"] == "ConfigMap"]
    assert cms[0]["data"]["jupyterhub_config.py"] == HUB_CONFIG.read_text()


def test_metrics_are_served_to_the_scrapers_named_with_the_hubs_token(render) -> None:
    """metrics.*: the operator's metrics Service, ServiceMonitors for both, the hub's scrape
    token from the chart's Secret (the one the hub reads), and NetworkPolicies that let only
    metrics.scrapers in, on the metrics ports."""
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mon"}}}
    docs = render(
        "defaults",
        "--set", "metrics.serviceMonitor.enabled=true",
        "--set", "metrics.serviceMonitor.labels.release=prom",
        "--set-json", f"metrics.scrapers={json.dumps([monitoring])}",
    )  # fmt: skip
    service = one(docs, "Service", "-operator-metrics")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    monitors = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceMonitor"}
    hub_monitor = next(m for n, m in monitors.items() if n.endswith("-hub"))
    assert hub_monitor["metadata"]["labels"]["release"] == "prom"
    (endpoint,) = hub_monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/hub/metrics"
    secret = one(docs, "Secret", "-hub")
    assert endpoint["authorization"]["credentials"] == {
        "name": secret["metadata"]["name"],
        "key": "metrics-token",
    }
    assert "metrics-token" in secret["data"]
    hub = container_env(
        one(docs, "Deployment", "-hub")["spec"]["template"]["spec"]["containers"][0]
    )
    assert hub["DEVPLANE_METRICS_TOKEN_FILE"] == "/etc/devplane/secrets/metrics/token"
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    operator_policy = next(p for n, p in policies.items() if n.endswith("-operator"))
    assert operator_policy["spec"]["ingress"] == [
        {"from": [monitoring], "ports": [{"protocol": "TCP", "port": 8080}]}
    ]
    hub_policy = next(p for n, p in policies.items() if n.endswith("-hub"))
    assert {"from": [monitoring], "ports": [{"protocol": "TCP", "port": 8081}]} in (
        hub_policy["spec"]["ingress"]
    )
    # By default: no ServiceMonitor (its CRD may not exist), no scraper let in.
    docs = render("defaults")
    assert not [d for d in docs if d["kind"] == "ServiceMonitor"]
    operator_policy = next(
        d
        for d in docs
        if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith("-operator")
    )
    assert "ingress" not in operator_policy["spec"]


def test_an_external_database_comes_from_its_secret_with_a_cookie_secret_that_lasts(render):
    """hub.db.type postgres (the airgapped value set): the URL from the admin's Secret, no
    database volume, and the cookie secret kept in the chart's Secret (the data directory is
    an emptyDir now, where JupyterHub would make a new one at every restart)."""
    docs = render("airgapped")
    pod = one(docs, "Deployment", "-hub")["spec"]["template"]["spec"]
    env = container_env(pod["containers"][0])
    assert env["DEVPLANE_HUB_DB_URL_FILE"] == "/etc/devplane/secrets/db/url"
    assert env["DEVPLANE_COOKIE_SECRET_FILE"] == "/etc/devplane/secrets/cookie/cookie-secret"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["db-url"]["secret"]["secretName"] == "devplane-hub-db"
    assert volumes["data"] == {"name": "data", "emptyDir": {"sizeLimit": "64Mi"}}
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    secret = one(docs, "Secret", "-hub")
    cookie = base64.b64decode(secret["data"]["cookie-secret"]).decode()
    assert re.fullmatch(r"[0-9a-f]{64}", cookie)  # 32 bytes, hex, as JupyterHub reads it
    # sqlite-pvc (the default): no cookie secret in the Secret, the database on its volume.
    secret = one(render("defaults"), "Secret", "-hub")
    assert "cookie-secret" not in secret["data"]
