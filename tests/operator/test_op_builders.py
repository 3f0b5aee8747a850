"""Pure builder tests: the child manifests follow docs/contracts.md and the security model.

No cluster needed. The cluster tests (test_op_lifecycle.py) then prove the API server accepts
these objects, including in a namespace that enforces Pod Security `restricted`.
"""

from __future__ import annotations

import json
import re

import pytest
from devplane_dev.workspaces import EXAMPLE_PROVIDER, EXAMPLE_PROVIDERS_JSON, workspace_manifest
from devplane_operator.builders import (
    SPEC_HASH_ANNOTATION,
    build_children,
    build_configmap,
    build_networkpolicy,
    build_pod,
    build_pvc,
    build_service,
)
from devplane_operator.model import SpecError, parse_workspace
from devplane_operator.settings import load_settings

from devplane_api import naming
from devplane_api.extras import RESERVED_ENV, RESERVED_ENV_PREFIXES

BASE_ENV = {"DEVPLANE_NAMESPACES": "ws", "DEVPLANE_LLM_PROVIDERS": EXAMPLE_PROVIDERS_JSON}


def settings(**env: str):
    return load_settings([], {**BASE_ENV, **env})


def workspace_body(owner: str = "alice", server: str = "", **spec) -> dict:
    metadata = {"namespace": "ws", "uid": "1234-uid", "generation": 3}
    spec = {"hubSecretRef": {"name": "hub-secret"}} | spec
    return workspace_manifest(owner, server, metadata, **spec)


def ws(owner: str = "alice", server: str = "", env: dict | None = None, **spec):
    return parse_workspace(workspace_body(owner, server, **spec), settings(**(env or {})))


def container(pod: dict, name: str) -> dict:
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)


def env_of(c: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def test_names_come_from_naming_module():
    w = ws("Alice@example.com", "dev box")
    children = build_children(w, settings())
    stem = naming.workspace_name("Alice@example.com", "dev box")
    assert children["Pod"]["metadata"]["name"] == naming.child_name(stem)
    assert children["Service"]["metadata"]["name"] == naming.child_name(stem)
    assert children["NetworkPolicy"]["metadata"]["name"] == naming.child_name(stem)
    assert children["ConfigMap"]["metadata"]["name"] == naming.child_name(stem, "opencode")
    assert children["PersistentVolumeClaim"]["metadata"]["name"] == naming.pvc_name(
        "Alice@example.com", "dev box"
    )


def test_every_child_carries_labels_annotation_and_owner_reference():
    w = ws("Alice@example.com", "dev")
    for kind, child in build_children(w, settings()).items():
        meta = child["metadata"]
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "devplane", kind
        assert meta["labels"]["app.kubernetes.io/name"] == "devplane-workspace", kind
        assert meta["labels"]["devplane.io/workspace"] == w.name, kind
        assert meta["labels"]["devplane.io/owner"] == naming.safe_slug("Alice@example.com")
        assert meta["labels"]["devplane.io/server"] == "dev"
        assert meta["annotations"]["devplane.io/owner"] == "Alice@example.com"
        if kind != "PersistentVolumeClaim":
            (ref,) = meta["ownerReferences"]
            assert ref["uid"] == "1234-uid" and ref["controller"] is True


def test_pvc_owner_reference_only_when_reclaim_policy_is_delete():
    retained = build_pvc(ws(storage={"reclaimPolicy": "Retain"}), settings())
    assert "ownerReferences" not in retained["metadata"]
    deleted = build_pvc(ws(storage={"reclaimPolicy": "Delete"}), settings())
    assert deleted["metadata"]["ownerReferences"][0]["kind"] == "Workspace"


def test_pvc_size_and_class_default_from_settings_and_spec_overrides():
    env = {"DEVPLANE_STORAGE_SIZE": "3Gi", "DEVPLANE_STORAGE_CLASS": "fast"}
    pvc = build_pvc(ws(env=env), settings(**env))
    assert pvc["spec"]["resources"]["requests"]["storage"] == "3Gi"
    assert pvc["spec"]["storageClassName"] == "fast"
    pvc = build_pvc(ws(storage={"size": "7Gi", "storageClassName": "slow"}), settings())
    assert pvc["spec"]["resources"]["requests"]["storage"] == "7Gi"
    assert pvc["spec"]["storageClassName"] == "slow"
    assert "storageClassName" not in build_pvc(ws(), settings())["spec"]


def test_pod_layout_matches_the_contract():
    pod = build_pod(ws(), settings())
    spec = pod["spec"]
    assert [c["name"] for c in spec["containers"]] == ["workspace", "authproxy"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert "shareProcessNamespace" not in spec
    assert spec["securityContext"]["fsGroup"] == 1000
    ports = [p for c in spec["containers"] for p in c.get("ports", [])]
    assert ports == [{"name": "http", "containerPort": 8888, "protocol": "TCP"}]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["home"]["persistentVolumeClaim"]["claimName"] == "home-alice"
    assert volumes["run"]["emptyDir"]["medium"] == "Memory"
    # One ConfigMap, two views: opencode's file for the user, the gateway's for the proxy.
    assert volumes["opencode"]["configMap"] == {
        "name": "ws-alice-opencode",
        "items": [{"key": "opencode.json", "path": "opencode.json"}],
    }
    assert volumes["gateway"]["configMap"] == {
        "name": "ws-alice-opencode",
        "items": [{"key": "gateway.json", "path": "gateway.json"}],
    }
    assert "emptyDir" in volumes["tmp"] and "emptyDir" in volumes["proxy-tmp"]
    mounts = {m["name"]: m for m in container(pod, "workspace")["volumeMounts"]}
    assert mounts["home"]["mountPath"] == "/home/dev"
    assert mounts["tmp"]["mountPath"] == "/tmp"
    assert mounts["run"]["mountPath"] == "/run/devplane"
    assert mounts["opencode"] == {
        "name": "opencode",
        "mountPath": "/etc/opencode",
        "readOnly": True,
    }
    proxy_mounts = {m["name"]: m["mountPath"] for m in container(pod, "authproxy")["volumeMounts"]}
    assert proxy_mounts == {
        "run": "/run/devplane",
        "proxy-tmp": "/tmp",
        "gateway": "/etc/devplane/gateway",
    }
    assert "gateway" not in mounts


def test_the_metrics_port_exists_only_for_configured_scrapers():
    scrapers = [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    s = settings(DEVPLANE_METRICS_SCRAPERS=json.dumps(scrapers))
    pod = build_pod(ws(), s)
    proxy = container(pod, "authproxy")
    assert {"name": "metrics", "containerPort": 9102, "protocol": "TCP"} in proxy["ports"]
    assert env_of(proxy)["DEVPLANE_METRICS_PORT"] == "9102"
    ingress = build_networkpolicy(ws(), s)["spec"]["ingress"]
    assert {"from": scrapers, "ports": [{"protocol": "TCP", "port": 9102}]} in ingress
    plain = container(build_pod(ws(), settings()), "authproxy")
    assert "DEVPLANE_METRICS_PORT" not in env_of(plain)
    assert len(build_networkpolicy(ws(), settings())["spec"]["ingress"]) == 1


def test_security_context_is_restricted_for_both_containers():
    pod = build_pod(ws(), settings())
    uids = {}
    for c in pod["spec"]["containers"]:
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert c["resources"]["limits"]["cpu"] and c["resources"]["limits"]["memory"]
        uids[c["name"]] = sc["runAsUser"]
    assert uids == {"workspace": 1000, "authproxy": 1001}


def test_hub_credentials_reach_only_the_authproxy():
    pod = build_pod(ws(), settings())
    proxy, user = container(pod, "authproxy"), container(pod, "workspace")
    assert proxy["envFrom"] == [{"secretRef": {"name": "hub-secret"}}]
    assert "envFrom" not in user
    assert not [k for k in env_of(user) if k.startswith("JUPYTERHUB_")]
    assert env_of(proxy) == {
        "DEVPLANE_PROXY_IP": "0.0.0.0",
        "DEVPLANE_PROXY_PORT": "8888",
        "DEVPLANE_UPSTREAM": "unix:/run/devplane/ttyd.sock",
        "DEVPLANE_ACTIVITY_FILE": "/run/devplane/activity",
        "DEVPLANE_LLM_GATEWAY_CONFIG": "/etc/devplane/gateway/gateway.json",
        "DEVPLANE_LLM_GATEWAY_PORT": "8899",
    }


def test_workspace_env_and_api_keys_from_secrets():
    providers = [
        {
            "name": "vllm-prod",
            "baseURL": "https://10.0.0.5:8443/v1",
            "models": ["qwen"],
            "apiKeySecretRef": {"name": "llm-key", "key": "token"},
        }
    ]
    pod = build_pod(ws(ai={"providers": providers}), settings())
    env = env_of(container(pod, "workspace"))
    # The key reaches the auth proxy's container (the LLM gateway) only, never the user's.
    assert not any(name.startswith("DEVPLANE_LLM_API_KEY") for name in env)
    proxy_env = env_of(container(pod, "authproxy"))
    assert proxy_env["DEVPLANE_LLM_API_KEY_VLLM_PROD"] == {
        "secretKeyRef": {"name": "llm-key", "key": "token"}
    }
    assert proxy_env["DEVPLANE_LLM_GATEWAY_CONFIG"] == "/etc/devplane/gateway/gateway.json"
    assert proxy_env["DEVPLANE_LLM_GATEWAY_PORT"] == "8899"
    for name, value in {
        "HOME": "/home/dev",
        "USER": "dev",
        "SHELL": "/bin/bash",
        "DEVPLANE_TTYD_SOCKET": "/run/devplane/ttyd.sock",
        "DEVPLANE_ACTIVITY_FILE": "/run/devplane/activity",
        "OPENCODE_CONFIG": "/etc/opencode/opencode.json",
        "OPENCODE_DISABLE_MODELS_FETCH": "true",
        "OPENCODE_DISABLE_AUTOUPDATE": "true",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "true",
        "npm_config_offline": "true",
    }.items():
        assert env[name] == value, name
    assert "PIP_INDEX_URL" not in env and "SSL_CERT_FILE" not in env


def test_mirrors_and_ca_bundle_from_settings():
    s = settings(
        DEVPLANE_PIP_INDEX_URL="http://mirror.internal/simple",
        DEVPLANE_NPM_REGISTRY="http://npm.internal/",
        DEVPLANE_GIT_MIRRORS=json.dumps(
            [
                {"url": "https://git.internal/gh/", "insteadOf": "https://github.com/"},
                {"url": "ssh://git.internal/gl/", "insteadOf": "git@gitlab.com:"},
            ]
        ),
        DEVPLANE_CA_BUNDLE_CONFIGMAP="corp-ca",
    )
    pod = build_pod(ws(), s)
    env = env_of(container(pod, "workspace"))
    # A mirror turns its tool on (the image's defaults keep pip and npm offline).
    assert env["PIP_INDEX_URL"] == "http://mirror.internal/simple"
    assert env["PIP_NO_INDEX"] == "false"
    assert env["npm_config_registry"] == "http://npm.internal/"
    assert env["npm_config_offline"] == "false"
    assert env["GIT_CONFIG_COUNT"] == "2"
    assert env["GIT_CONFIG_KEY_0"] == "url.https://git.internal/gh/.insteadOf"
    assert env["GIT_CONFIG_VALUE_0"] == "https://github.com/"
    assert env["GIT_CONFIG_KEY_1"] == "url.ssh://git.internal/gl/.insteadOf"
    assert env["GIT_CONFIG_VALUE_1"] == "git@gitlab.com:"
    # The site's CA is added to the image's (the entrypoint joins them), not put in its place.
    assert env["DEVPLANE_EXTRA_CA_FILE"] == "/etc/devplane/ca/ca.crt"
    joined = env["DEVPLANE_CA_BUNDLE"]
    assert joined.startswith("/run/devplane/")
    for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"):
        assert env[var] == joined, var
    assert env["PIP_CERT"] == joined
    assert env["NODE_EXTRA_CA_CERTS"] == "/etc/devplane/ca/ca.crt"  # Node adds it to its own
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["ca-bundle"]["configMap"]["name"] == "corp-ca"
    mounts = {m["mountPath"] for m in container(pod, "workspace")["volumeMounts"]}
    assert {"/etc/devplane/ca", "/run/devplane"} <= mounts


def test_no_mirror_keeps_every_tool_offline():
    env = env_of(container(build_pod(ws(), settings()), "workspace"))
    assert env["npm_config_offline"] == "true"
    assert not {"PIP_INDEX_URL", "PIP_NO_INDEX", "npm_config_registry", "GIT_CONFIG_COUNT"} & set(
        env
    )


def test_git_identity_reaches_the_workspace_container_only():
    identity = {"name": "Alice Liddell", "email": "alice@example.org"}
    pod = build_pod(ws(gitIdentity=identity), settings())
    env = env_of(container(pod, "workspace"))
    assert env["DEVPLANE_GIT_NAME"] == "Alice Liddell"
    assert env["DEVPLANE_GIT_EMAIL"] == "alice@example.org"
    assert "DEVPLANE_GIT_NAME" not in env_of(container(pod, "authproxy"))
    # Without one, nothing is set (the entrypoint then leaves git's configuration alone).
    env = env_of(container(build_pod(ws(), settings()), "workspace"))
    assert "DEVPLANE_GIT_NAME" not in env and "DEVPLANE_GIT_EMAIL" not in env


def test_readiness_probe_hits_the_service_prefix_api():
    probe = container(build_pod(ws(), settings()), "authproxy")["readinessProbe"]
    assert probe["httpGet"]["path"] == "/user/alice/api"
    assert probe["httpGet"]["port"] == "http"
    named = container(build_pod(ws("bob", "dev"), settings()), "authproxy")["readinessProbe"]
    assert named["httpGet"]["path"] == "/user/bob/dev/api"
    custom = build_pod(ws(servicePrefix="/hub/user/alice/"), settings())
    assert container(custom, "authproxy")["readinessProbe"]["httpGet"]["path"] == (
        "/hub/user/alice/api"
    )


def test_resources_merge_spec_over_defaults():
    w = ws(resources={"limits": {"memory": "8Gi"}})
    res = container(build_pod(w, settings()), "workspace")["resources"]
    assert res["limits"] == {"cpu": "2", "memory": "8Gi"}
    assert res["requests"] == {"cpu": "250m", "memory": "512Mi"}


def test_spec_hash_is_stable_and_changes_with_the_spec():
    a = build_pod(ws(), settings())["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    b = build_pod(ws(), settings())["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    c = build_pod(ws(image="other/image:2"), settings())["metadata"]["annotations"][
        SPEC_HASH_ANNOTATION
    ]
    assert a == b != c


def test_service_selects_the_pod_on_the_proxy_port():
    w = ws()
    svc, pod = build_service(w, settings()), build_pod(w, settings())
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 8888, "targetPort": "http", "protocol": "TCP"}
    ]
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()


def test_configmap_holds_the_opencode_and_the_gateway_config():
    limits = {"requestsPerMinute": 30}
    cm = build_configmap(ws(), settings(DEVPLANE_LLM_LIMITS=json.dumps(limits)))
    config = json.loads(cm["data"]["opencode.json"])
    assert config["model"] == "vllm/qwen"
    assert config["autoupdate"] is False
    # opencode calls the gateway on the pod's loopback, which calls the provider.
    assert config["provider"]["vllm"]["options"]["baseURL"] == "http://127.0.0.1:8899/vllm/v1"
    gateway = json.loads(cm["data"]["gateway.json"])
    assert gateway["providers"] == [
        {"name": "vllm", "baseURL": EXAMPLE_PROVIDER["baseURL"], "models": ["qwen"]}
    ]
    assert gateway["limits"] == {"requestsPerMinute": 30, "tokensPerMinute": 0}


def test_a_workspaces_own_limits_win_over_the_operators():
    own = {"providers": [EXAMPLE_PROVIDER], "limits": {"tokensPerMinute": 5000}}
    s = settings(DEVPLANE_LLM_LIMITS=json.dumps({"requestsPerMinute": 30, "tokensPerMinute": 9}))
    gateway = json.loads(build_configmap(ws(ai=own), s)["data"]["gateway.json"])
    assert gateway["limits"] == {"requestsPerMinute": 30, "tokensPerMinute": 5000}
    # 0 is a value of its own (no limit), not "use the default".
    unlimited = {**own, "limits": {"tokensPerMinute": 0}}
    gateway = json.loads(build_configmap(ws(ai=unlimited), s)["data"]["gateway.json"])
    assert gateway["limits"] == {"requestsPerMinute": 30, "tokensPerMinute": 0}


def test_networkpolicy_default_deny_with_explicit_flows():
    s = settings(
        DEVPLANE_HUB_NAMESPACE="hub",
        DEVPLANE_EGRESS_ALLOWLIST="10.9.0.0/16:3128,192.168.1.1/32",
    )
    providers = [
        {"name": "a", "baseURL": "http://vllm.llm.svc:8000/v1", "models": ["m"]},
        {"name": "b", "baseURL": "https://10.1.2.3/v1", "models": ["n"]},
        {"name": "c", "baseURL": "http://external.example/v1", "models": ["o"]},
    ]
    w = ws(ai={"providers": providers})
    netpol = build_networkpolicy(w, s)
    spec = netpol["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["podSelector"]["matchLabels"]["devplane.io/workspace"] == "alice"
    (ingress,) = spec["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": 8888}]
    for peer in ingress["from"]:
        assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "hub"}}
        assert peer["podSelector"]["matchLabels"]  # never an empty ("every pod") selector
    egress = spec["egress"]
    dns = egress[0]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert {"protocol": "TCP", "port": 8081} in egress[1]["ports"]
    peers = [peer for rule in egress for peer in rule["to"]]
    assert {"ipBlock": {"cidr": "10.1.2.3/32"}} in peers
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "llm"}}} in peers
    assert {"ipBlock": {"cidr": "10.9.0.0/16"}} in peers
    assert {"ipBlock": {"cidr": "192.168.1.1/32"}} in peers
    assert not [p for p in peers if "external" in json.dumps(p)]
    proxy_rule = next(r for r in egress if {"ipBlock": {"cidr": "10.9.0.0/16"}} in r["to"])
    assert proxy_rule["ports"] == [{"protocol": "TCP", "port": 3128}]


@pytest.mark.parametrize(
    "body_change, message",
    [
        ({"spec": {"resources": {"requests": {"cpu": "8"}}}}, "requests.cpu"),
        (
            {
                "spec": {
                    "ai": {"providers": [{"name": "a", "baseURL": "http://x/v1", "models": []}]}
                }
            },
            "spec.ai",
        ),
    ],
)
def test_specs_the_crd_cannot_catch_are_spec_errors(body_change, message):
    body = workspace_body()
    for part, values in body_change.items():
        body[part] |= values
    with pytest.raises(SpecError, match=message.replace(".", r"\.")):
        parse_workspace(body, settings())


def test_any_workspace_name_is_accepted_and_the_home_volume_follows_the_owner():
    body = workspace_body()
    body["metadata"] |= {"name": "team-sandbox"}
    ws = parse_workspace(body, settings())
    assert ws.child_name == "ws-team-sandbox"
    assert ws.pvc_name == naming.pvc_name(body["spec"]["owner"], body["spec"].get("serverName", ""))


def test_missing_ai_without_operator_providers_is_a_spec_error():
    with pytest.raises(SpecError, match="DEVPLANE_LLM_PROVIDERS"):
        parse_workspace(workspace_body(), load_settings([], {"DEVPLANE_NAMESPACES": "ws"}))


def test_extras_merge_the_operators_and_the_workspaces():
    env = {
        "DEVPLANE_WORKSPACE_NODE_SELECTOR": "pool=dev",
        "DEVPLANE_WORKSPACE_TOLERATIONS": json.dumps([{"key": "a", "operator": "Exists"}]),
        "DEVPLANE_WORKSPACE_AFFINITY": json.dumps({"nodeAffinity": {"x": 1}}),
        "DEVPLANE_WORKSPACE_IMAGE_PULL_SECRETS": "mirror-pull",
        "DEVPLANE_WORKSPACE_EXTRA_ENV": json.dumps({"TZ": "UTC"}),
    }
    spec = {
        "scheduling": {
            "nodeSelector": {"gpu": "yes"},
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "affinity": {"podAntiAffinity": {"y": 2}},
        },
        "imagePullSecrets": [{"name": "team-pull"}, {"name": "mirror-pull"}],
        "extraEnv": [{"name": "TZ", "value": "Europe/Paris"}, {"name": "LANG", "value": "fr"}],
    }
    pod = build_pod(ws(env=env, **spec), settings(**env))["spec"]
    assert pod["nodeSelector"] == {"pool": "dev", "gpu": "yes"}
    assert pod["tolerations"] == [{"key": "a", "operator": "Exists"},
                                  {"key": "gpu", "operator": "Exists"}]  # fmt: skip
    assert pod["affinity"] == {"podAntiAffinity": {"y": 2}}  # the Workspace's replaces
    assert pod["imagePullSecrets"] == [{"name": "mirror-pull"}, {"name": "team-pull"}]
    workspace_env = env_of(next(c for c in pod["containers"] if c["name"] == "workspace"))
    assert workspace_env["TZ"] == "Europe/Paris" and workspace_env["LANG"] == "fr"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ({"extraEnv": [{"name": "HOME", "value": "/"}]}, "HOME is set by DevPlane itself"),
        ({"extraEnv": [{"name": "OPENCODE_CONFIG", "value": "/x"}]}, "OPENCODE_CONFIG is set"),
        ({"extraVolumes": [{"name": "x", "mountPath": "/run/devplane/x", "emptyDir": {}}]},
         "is where the workspace keeps its own files"),
        ({"extraVolumes": [{"name": "x", "mountPath": "/home/dev", "emptyDir": {}}]},
         "is where the workspace keeps its own files"),
        ({"extraVolumes": [{"name": "x", "mountPath": "/home//dev", "emptyDir": {}}]},
         "is not a clean path: write '/home/dev'"),
        ({"extraVolumes": [{"name": "x", "mountPath": "/run/devplane/.", "emptyDir": {}}]},
         "is not a clean path: write '/run/devplane'"),
        ({"extraVolumes": [{"name": "x", "mountPath": "/etc//devplane/ca", "emptyDir": {}}]},
         "is not a clean path"),
        ({"extraVolumes": [{"name": "x", "mountPath": "/d",
                            "configMap": {"name": "ws-bob-opencode"}}]},
         "a workspace's own object"),
        ({"extraVolumes": [{"name": "a", "mountPath": "/d", "emptyDir": {}},
                           {"name": "b", "mountPath": "/d/", "emptyDir": {}}]},
         "two extra volumes are mounted at the same path"),
    ],
)  # fmt: skip
def test_extras_that_would_break_or_reach_beyond_the_workspace_are_refused(spec, says):
    with pytest.raises(SpecError, match=re.escape(says)):
        ws(**spec)


def test_every_variable_the_pod_sets_is_one_an_extra_may_not_replace():
    everything = {
        "DEVPLANE_PIP_INDEX_URL": "http://m/simple", "DEVPLANE_PIP_TRUSTED_HOST": "m",
        "DEVPLANE_NPM_REGISTRY": "http://n/",
        "DEVPLANE_GIT_MIRRORS": json.dumps([{"url": "https://g/", "insteadOf": "https://x/"}]),
        "DEVPLANE_CA_BUNDLE_CONFIGMAP": "ca",
    }  # fmt: skip
    identity = {"name": "A", "email": "a@b.c"}
    pod = build_pod(ws(env=everything, gitIdentity=identity), settings(**everything))
    for name in env_of(container(pod, "workspace")):
        assert name in RESERVED_ENV or name.startswith(RESERVED_ENV_PREFIXES), name
