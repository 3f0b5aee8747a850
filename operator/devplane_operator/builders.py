"""Pure builders: (Workspace, Settings) -> the manifest of each child object.

No I/O and no clock here, so the same inputs always give the same dict: that is what lets
reconcile compare desired with actual and write nothing when nothing changed, and lets the
unit tests check every security property without a cluster. docs/contracts.md is the
specification of the pod built here.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from devplane_api.v1alpha1 import (
    AUTHPROXY_MODULE,
    GROUP,
    LLM_GATEWAY_PORT,
    MANAGED_BY,
    MANAGED_BY_VALUE,
    METRICS_PORT,
    METRICS_PORT_NAME,
    OWNER_ANNOTATION,
    PROXY_PORT,
    PROXY_PORT_NAME,
    WORKSPACE_LABEL,
    workspace_labels,
)

from .gateway_config import build_gateway_config
from .model import Workspace
from .netpol import egress_rules, ingress_rules
from .opencode_config import api_key_env_var, build_opencode_config
from .settings import Settings

Manifest = dict[str, Any]

SPEC_HASH_ANNOTATION = f"{GROUP}/pod-spec-hash"
WORKSPACE_UID = 1000
PROXY_UID = 1001
HOME = "/home/dev"
RUN_DIR = "/run/devplane"
OPENCODE_DIR = "/etc/opencode"
OPENCODE_FILE = "opencode.json"
# The LLM gateway's configuration: the same ConfigMap, mounted in the auth proxy's container only.
GATEWAY_DIR = "/etc/devplane/gateway"
GATEWAY_FILE = "gateway.json"
CA_DIR = "/etc/devplane/ca"
CA_FILE = "ca.crt"
# The image's CAs plus the site's: written by the workspace's entrypoint at start, because the
# root filesystem is read-only and a CA must be added to the trust store, not replace it.
CA_BUNDLE = f"{RUN_DIR}/ca-certificates.crt"


def labels(ws: Workspace) -> dict[str, str]:
    """The labels every child carries (docs/workspace-api.md, "Labels")."""
    return workspace_labels(ws.name, ws.owner, ws.server_name)


def selector(ws: Workspace) -> dict[str, str]:
    """Labels that pick exactly this Workspace's pod (Service and NetworkPolicy use them)."""
    return {MANAGED_BY: MANAGED_BY_VALUE, WORKSPACE_LABEL: ws.name}


def _metadata(ws: Workspace, name: str, owned: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": ws.namespace,
        "labels": labels(ws),
        "annotations": {OWNER_ANNOTATION: ws.owner},
    }
    if owned:
        meta["ownerReferences"] = [ws.owner_reference()]
    return meta


# ------------------------------------------------------------------ PVC


def build_pvc(ws: Workspace, settings: Settings) -> Manifest:
    """The home volume. No ownerReference under Retain, so it outlives the Workspace."""
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "volumeMode": "Filesystem",
        "resources": {"requests": {"storage": ws.storage_size}},
    }
    if ws.storage_class:
        spec["storageClassName"] = ws.storage_class
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _metadata(ws, ws.pvc_name, owned=ws.reclaim_policy == "Delete"),
        "spec": spec,
    }


# ------------------------------------------------------------------ ConfigMap


def build_configmap(ws: Workspace, settings: Settings) -> Manifest:
    """opencode.json (opencode_config) and the LLM gateway's gateway.json (gateway_config)."""
    opencode = build_opencode_config(ws.ai)
    gateway = build_gateway_config(ws.ai, settings.llm_limits)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(ws, ws.configmap_name),
        "data": {
            OPENCODE_FILE: json.dumps(opencode, indent=2, sort_keys=True) + "\n",
            GATEWAY_FILE: json.dumps(gateway, indent=2, sort_keys=True) + "\n",
        },
    }


# ------------------------------------------------------------------ Service


def build_service(ws: Workspace, settings: Settings) -> Manifest:
    """A ClusterIP Service on the auth proxy port: the in-cluster URL the hub uses."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(ws, ws.child_name),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(ws),
            "ports": [
                {
                    "name": PROXY_PORT_NAME,
                    "port": PROXY_PORT,
                    "targetPort": PROXY_PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


# ------------------------------------------------------------------ Pod


def _security_context(uid: int) -> dict[str, Any]:
    """Container security context that passes Pod Security `restricted` (and then some)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _env(pairs: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in pairs.items()]


def _workspace_env(ws: Workspace, settings: Settings) -> list[dict[str, Any]]:
    plain = {
        "HOME": HOME,
        "USER": "dev",
        "SHELL": "/bin/bash",
        "DEVPLANE_TTYD_SOCKET": f"{RUN_DIR}/ttyd.sock",
        "DEVPLANE_ACTIVITY_FILE": f"{RUN_DIR}/activity",
        "OPENCODE_CONFIG": f"{OPENCODE_DIR}/{OPENCODE_FILE}",
        "OPENCODE_DISABLE_MODELS_FETCH": "true",
        "OPENCODE_DISABLE_AUTOUPDATE": "true",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "true",
    }
    plain |= _mirror_env(settings)
    if settings.ca_bundle_configmap:
        plain["DEVPLANE_EXTRA_CA_FILE"] = f"{CA_DIR}/{CA_FILE}"
        plain["DEVPLANE_CA_BUNDLE"] = CA_BUNDLE
        for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"):
            plain[var] = CA_BUNDLE
        plain["PIP_CERT"] = CA_BUNDLE
        # Node keeps its own CAs and adds this file's.
        plain["NODE_EXTRA_CA_CERTS"] = f"{CA_DIR}/{CA_FILE}"
    # Written into a home's git config on its first start (the entrypoint never overwrites it).
    if ws.git_identity.get("name"):
        plain["DEVPLANE_GIT_NAME"] = ws.git_identity["name"]
    if ws.git_identity.get("email"):
        plain["DEVPLANE_GIT_EMAIL"] = ws.git_identity["email"]
    # The admin's extras last; extras.py refuses every name set above.
    plain |= ws.extras.env
    # No API key here: the gateway in the auth proxy's container holds them (_authproxy_env).
    return _env(plain)


def _mirror_env(settings: Settings) -> dict[str, str]:
    """pip, npm and git pointed at the site's mirrors; a tool with no mirror stays offline."""
    env: dict[str, str] = {}
    if settings.pip_index_url:
        # The image's /etc/pip.conf says no-index; the environment outranks it.
        env |= {"PIP_INDEX_URL": settings.pip_index_url, "PIP_NO_INDEX": "false"}
    if settings.pip_trusted_host:
        env["PIP_TRUSTED_HOST"] = settings.pip_trusted_host
    if settings.npm_registry:
        env |= {"npm_config_registry": settings.npm_registry, "npm_config_offline": "false"}
    else:
        env["npm_config_offline"] = "true"
    if settings.git_mirrors:
        # Command-line-level git config from the environment (git >= 2.31): every git in the
        # pod sees it, and nothing is written into the user's ~/.gitconfig.
        env["GIT_CONFIG_COUNT"] = str(len(settings.git_mirrors))
        for index, mirror in enumerate(settings.git_mirrors):
            env[f"GIT_CONFIG_KEY_{index}"] = f"url.{mirror['url']}.insteadOf"
            env[f"GIT_CONFIG_VALUE_{index}"] = mirror["insteadOf"]
    return env


def _authproxy_env(ws: Workspace, settings: Settings) -> list[dict[str, Any]]:
    plain = {
        "DEVPLANE_PROXY_IP": "0.0.0.0",
        "DEVPLANE_PROXY_PORT": str(PROXY_PORT),
        "DEVPLANE_UPSTREAM": f"unix:{RUN_DIR}/ttyd.sock",
        "DEVPLANE_ACTIVITY_FILE": f"{RUN_DIR}/activity",
        "DEVPLANE_LLM_GATEWAY_CONFIG": f"{GATEWAY_DIR}/{GATEWAY_FILE}",
        "DEVPLANE_LLM_GATEWAY_PORT": str(LLM_GATEWAY_PORT),
    }
    if settings.metrics_scrapers:
        plain["DEVPLANE_METRICS_PORT"] = str(METRICS_PORT)
    env = _env(plain)
    # The providers' keys: this container's environment, which the user's shell cannot read
    # (another uid, another container); the gateway names each by gateway_config's apiKeyEnv.
    for provider in ws.ai.get("providers", []):
        ref = provider.get("apiKeySecretRef")
        if ref:
            env.append(
                {
                    "name": api_key_env_var(provider["name"]),
                    "valueFrom": {"secretKeyRef": {"name": ref["name"], "key": ref["key"]}},
                }
            )
    return env


def _pod_spec(ws: Workspace, settings: Settings) -> dict[str, Any]:
    workspace_mounts = [
        {"name": "home", "mountPath": HOME},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "run", "mountPath": RUN_DIR},
        {"name": "opencode", "mountPath": OPENCODE_DIR, "readOnly": True},
    ]
    volumes: list[dict[str, Any]] = [
        {"name": "home", "persistentVolumeClaim": {"claimName": ws.pvc_name}},
        {"name": "tmp", "emptyDir": {}},
        # Memory-backed: holds only the ttyd socket and the activity file.
        {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
        {"name": "proxy-tmp", "emptyDir": {"sizeLimit": "64Mi"}},
        # One ConfigMap, two views: opencode's file for the user, the gateway's for the proxy.
        {
            "name": "opencode",
            "configMap": {
                "name": ws.configmap_name,
                "items": [{"key": OPENCODE_FILE, "path": OPENCODE_FILE}],
            },
        },
        {
            "name": "gateway",
            "configMap": {
                "name": ws.configmap_name,
                "items": [{"key": GATEWAY_FILE, "path": GATEWAY_FILE}],
            },
        },
    ]
    if settings.ca_bundle_configmap:
        workspace_mounts.append({"name": "ca-bundle", "mountPath": CA_DIR, "readOnly": True})
        volumes.append(
            {
                "name": "ca-bundle",
                "configMap": {
                    "name": settings.ca_bundle_configmap,
                    "items": [{"key": settings.ca_bundle_key, "path": CA_FILE}],
                },
            }
        )
    # The admin's extra volumes, in the user's container only.
    volumes += ws.extras.pod_volumes()
    workspace_mounts += ws.extras.mounts()
    workspace = {
        "name": "workspace",
        "image": ws.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["/usr/local/bin/devplane-workspace"],
        "workingDir": HOME,
        "env": _workspace_env(ws, settings),
        "resources": ws.resources,
        "securityContext": _security_context(WORKSPACE_UID),
        "volumeMounts": workspace_mounts,
    }
    authproxy = {
        "name": "authproxy",
        "image": settings.authproxy_image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["python3", "-m", AUTHPROXY_MODULE],
        "ports": [
            {"name": PROXY_PORT_NAME, "containerPort": PROXY_PORT, "protocol": "TCP"},
            *(
                [{"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"}]
                if settings.metrics_scrapers
                else []
            ),
        ],
        # The hub credentials reach this container only; the user's container never sees them.
        "envFrom": [{"secretRef": {"name": ws.hub_secret}}],
        "env": _authproxy_env(ws, settings),
        "readinessProbe": {
            "httpGet": {
                "path": f"{ws.service_prefix}api",
                "port": PROXY_PORT_NAME,
                "scheme": "HTTP",
            },
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        },
        "resources": settings.authproxy_resources,
        "securityContext": _security_context(PROXY_UID),
        "volumeMounts": [
            {"name": "run", "mountPath": RUN_DIR},
            {"name": "proxy-tmp", "mountPath": "/tmp"},
            {"name": "gateway", "mountPath": GATEWAY_DIR, "readOnly": True},
        ],
    }
    return {
        # nodeSelector, tolerations, affinity, imagePullSecrets: the operator's and the spec's.
        **ws.extras.pod_fields(),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "securityContext": {
            "runAsNonRoot": True,
            "fsGroup": WORKSPACE_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [workspace, authproxy],
        "volumes": volumes,
    }


def spec_hash(pod_spec: dict[str, Any]) -> str:
    """Stable digest of the pod spec we asked for.

    The API server fills in defaults (dnsPolicy, terminationMessagePath, ...), so the live spec
    never equals ours; comparing this annotation instead tells "our desired spec changed" apart
    from "the server added defaults" without knowing every default.
    """
    canonical = json.dumps(pod_spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def build_pod(ws: Workspace, settings: Settings) -> Manifest:
    """The workspace pod: user container + auth proxy, one port, PSS `restricted`."""
    spec = _pod_spec(ws, settings)
    metadata = _metadata(ws, ws.child_name)
    metadata["annotations"][SPEC_HASH_ANNOTATION] = spec_hash(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


# ------------------------------------------------------------------ NetworkPolicy


def build_networkpolicy(ws: Workspace, settings: Settings) -> Manifest:
    """Default deny for the workspace pod, then exactly the flows netpol.py allows."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(ws, ws.child_name),
        "spec": {
            "podSelector": {"matchLabels": selector(ws)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress_rules(ws, settings),
            "egress": egress_rules(ws, settings),
        },
    }


def build_children(ws: Workspace, settings: Settings) -> dict[str, Manifest]:
    """Every child, keyed by kind. The Pod is included even when stopped (reconcile decides)."""
    return {
        "PersistentVolumeClaim": build_pvc(ws, settings),
        "ConfigMap": build_configmap(ws, settings),
        "Service": build_service(ws, settings),
        "NetworkPolicy": build_networkpolicy(ws, settings),
        "Pod": build_pod(ws, settings),
    }
