"""The cluster objects the real node needs: CoreDNS (as kubeadm installs it) and what
kube-router's firewall may read. Pure builders; ``realnode`` applies them."""

from __future__ import annotations

from devplane_dev.realnode_config import (
    CLUSTER_DNS,
    CLUSTER_DOMAIN,
    LOCAL_STORAGE_CLASS,
    LOCAL_VOLUME_LABEL,
    NODE_LABEL,
    NODE_TAINT,
)

LOCAL_VOLUME_SIZE = "20Gi"


def build_local_storage_class() -> dict:
    """The StorageClass of the real node's volumes: no provisioner (the pool is made ahead),
    bound when a pod is scheduled, so a claim only ever gets a volume on the pod's node."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": LOCAL_STORAGE_CLASS},
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
        "reclaimPolicy": "Retain",
    }


def build_local_volume(name: str, path: str) -> dict:
    """One `local` volume of the pool: a directory on this machine that only the real node
    mounts. Unlike hostPath (kwok's volumes), a `local` volume gets the pod's fsGroup, so a
    non-root workspace can write its home."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {LOCAL_VOLUME_LABEL[0]: LOCAL_VOLUME_LABEL[1]}},
        "spec": {
            "capacity": {"storage": LOCAL_VOLUME_SIZE},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": LOCAL_STORAGE_CLASS,
            "volumeMode": "Filesystem",
            "local": {"path": path},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": NODE_LABEL[0], "operator": "In", "values": [NODE_LABEL[1]]}
                            ]
                        }
                    ]
                }
            },
        },
    }


def build_coredns_manifests(image: str) -> dict:
    """CoreDNS as kubeadm installs it: pods labelled k8s-app=kube-dns in kube-system behind
    the kube-dns Service, so NetworkPolicies that allow DNS by that selector hold here too."""
    labels = {"k8s-app": "kube-dns"}
    corefile = (
        f".:53 {{\n    errors\n    health :8080\n    ready :8181\n"
        f"    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{\n"
        f"        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n    }}\n"
        f"    cache 30\n    loadbalance\n}}\n"
    )
    # No `forward`: the node has no way out, so names outside the cluster fail at once.
    pod_spec = {
        "serviceAccountName": "coredns",
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {NODE_LABEL[0]: NODE_LABEL[1]},
        "tolerations": [{**NODE_TAINT, "operator": "Equal"}],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
            # Port 53 without any capability.
            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"}],
        },
        "containers": [
            {
                "name": "coredns",
                "image": image,
                "imagePullPolicy": "Never",
                "args": ["-conf", "/etc/coredns/Corefile"],
                "ports": [
                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                ],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181}, "periodSeconds": 1},
                "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}},
                "resources": {
                    "requests": {"cpu": "50m", "memory": "40Mi"},
                    "limits": {"memory": "170Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "config", "mountPath": "/etc/coredns"}],
            }
        ],
        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
    }
    meta = {"namespace": "kube-system"}
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", **meta}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "devcluster:coredns"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["endpoints", "services", "pods", "namespaces"],
                        "verbs": ["list", "watch"],
                    },
                    {
                        "apiGroups": ["discovery.k8s.io"],
                        "resources": ["endpointslices"],
                        "verbs": ["list", "watch"],
                    },
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "devcluster:coredns"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "devcluster:coredns",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "coredns", **meta}],
            },
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "coredns", **meta},
                "data": {"Corefile": corefile},
            },
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "coredns", "labels": labels, **meta},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": pod_spec},
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "kube-dns", "labels": labels, **meta},
                "spec": {
                    "clusterIP": CLUSTER_DNS,
                    "selector": labels,
                    "ports": [
                        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    ],
                },
            },
        ],
    }


def build_kube_router_rbac() -> dict:
    """What kube-router's firewall controller reads (its own manifests' ClusterRole, less the
    routing and service-proxy parts that are off here)."""
    read = ["get", "list", "watch"]
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "devcluster:kube-router"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["namespaces", "pods", "services", "nodes", "endpoints"],
                        "verbs": read,
                    },
                    {
                        "apiGroups": ["networking.k8s.io"],
                        "resources": ["networkpolicies"],
                        "verbs": read,
                    },
                    {
                        "apiGroups": ["discovery.k8s.io"],
                        "resources": ["endpointslices"],
                        "verbs": read,
                    },
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "devcluster:kube-router"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "devcluster:kube-router",
                },
                "subjects": [
                    {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "User",
                        "name": "system:kube-router",
                    }
                ],
            },
        ],
    }
