"""`helm lint` and `helm template` over the defaults and every chart/ci value set.

No cluster needed: these check what the chart renders — names, namespaces, images, security
contexts, NetworkPolicies, RBAC — and that the CRD and the hub configuration come from their
single sources.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from chart_helpers import CHART, ROOT, VALUE_SETS, container_env, find, one, pod_specs, values_file

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
    profiles = json.loads(env["DEVPLANE_PROFILES"])
    assert [p["slug"] for p in profiles] == ["small", "large"]
    assert env["DEVPLANE_STORAGE_RECLAIM_POLICY"] == "Delete"


def test_workspace_network_policy_default_deny_and_allowances(render) -> None:
    docs = render("multi-llm")
    deny = one(docs, "NetworkPolicy", "-default-deny")
    assert deny["metadata"]["namespace"] == "devplane-workspaces"
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    ws = one(docs, "NetworkPolicy", "-workspaces")["spec"]
    assert ws["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "devplane-workspace"
    # Ingress: the proxy and the hub, to the auth proxy's port only.
    (rule,) = ws["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8888}]
    components = {
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in rule["from"]
    }
    assert components == {"proxy", "hub"}
    # Egress: DNS, hub API, then one rule per LLM provider in order.
    egress = ws["egress"]
    assert {p["port"] for p in egress[0]["ports"]} == {53}
    assert egress[1]["ports"] == [{"protocol": "TCP", "port": 8081}]
    vllm, farm, small, onprem = egress[2:6]
    # An in-cluster Service: its namespace's pods, any port (the Service port 8000 need not
    # be the pods' port, which is what a NetworkPolicy sees).
    assert vllm == {
        "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "llm"}}}],
    }
    assert farm == {
        "to": [{"ipBlock": {"cidr": "10.60.0.0/24"}}],
        "ports": [{"protocol": "TCP", "port": 443}],
    }
    assert small["to"][0]["podSelector"] == {"matchLabels": {"app": "small-llm"}}
    assert onprem == {
        "to": [{"ipBlock": {"cidr": "10.70.0.5/32"}}],
        "ports": [{"protocol": "TCP", "port": 8000}],
    }
    assert len(egress) == 6, "nothing beyond DNS, hub and the LLM endpoints"
    # The operator and spawner get the providers without the chart-only networkPolicy key.
    op_env = container_env(
        one(docs, "Deployment", "-operator")["spec"]["template"]["spec"]["containers"][0]
    )
    providers = json.loads(op_env["DEVPLANE_LLM_PROVIDERS"])
    assert [p["name"] for p in providers] == ["vllm", "gpu-farm", "small", "onprem"]
    assert all("networkPolicy" not in p for p in providers)
    assert providers[1]["apiKeySecretRef"] == {"name": "gpu-farm-key", "key": "api-key"}


def test_system_network_policies(render) -> None:
    docs = render("defaults")
    hub = one(docs, "NetworkPolicy", "-hub")["spec"]
    (ingress,) = hub["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 8081}]
    sources = [p["podSelector"]["matchLabels"] for p in ingress["from"]]
    # The proxy, the hub itself (its managed idle culler calls the API through the Service)
    # and the workspace pods (None: selected by the workspace labels, not a component).
    assert {s.get("app.kubernetes.io/component") for s in sources} == {"proxy", "hub", None}
    operator = one(docs, "NetworkPolicy", "-operator")["spec"]
    assert "ingress" not in operator and "Ingress" in operator["policyTypes"]
    assert len(operator["egress"]) == 2, "DNS and the API server only"
    assert not find(render("minimal"), "NetworkPolicy")


def test_no_llm_endpoint_it_cannot_express(helm) -> None:
    result = helm(
        "template", "x", str(CHART),
        "--set", "llm.providers[0].name=ext",
        "--set", "llm.providers[0].baseURL=https://llm.example.internal/v1",
        "--set", "llm.providers[0].models[0]=m",
    )  # fmt: skip
    assert result.returncode != 0
    assert "llm.providers[0].networkPolicy.to" in result.stderr


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
