"""What the local cluster's real node is made of: its addresses, and its components'
configuration files and command lines. Pure functions of ``NodeLayout``; ``realnode`` runs
them. Standard library only (devcluster.py says why).

The node lives in network and mount namespaces of its own (``realnode`` says why), so every
address below exists only inside them, except the host's end of the one veth pair.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

NODE_NAME = "real-node-0"
# Pods meant for the real node carry this toleration and select this label; nothing else
# tolerates the taint, so kwok's benchmark pods never land here and ours never land on kwok.
NODE_LABEL = ("devplane.io/node", "real")
NODE_TAINT = {"key": "devplane.io/node", "value": "real", "effect": "NoSchedule"}
# Inside the node's network namespace: the pods' bridge and the link to the host.
BRIDGE = "devplane0"
NODE_LINK = "eth0"
# kube-dns's ClusterIP, a fixed address in the service range, as kubeadm does.
# Home volumes of pods on the real node: `local` PersistentVolumes from a pool (realnode.py).
LOCAL_STORAGE_CLASS = "node-local"
LOCAL_VOLUME_LABEL = ("devplane.io/node-volume", "real")
CLUSTER_DNS = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
CNI_BIN_DIR = "/usr/lib/cni"  # Debian's containernetworking-plugins
# Values kubelet insists on (its protectKernelDefaults check). They are shown to kubelet in the
# node's mount namespace only, so it never changes the machine's own settings (realnode).
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}
# Paths the node's processes would write to on the host; in the node's mount namespace each
# is an empty tmpfs, gone with the namespace (containerd's shim sockets and runc state under
# /run, CNI's cache under /var/lib/cni, kubelet's /var/log/containers links).
PRIVATE_DIRS = ("/run", "/var/lib", "/var/log")
# kubelet's own directory, in the node's private /var/lib: pod volumes and kubelet's unix
# sockets (whose paths must stay under 108 bytes, which a deep state directory would exceed).
KUBELET_ROOT = "/var/lib/kubelet"


class NodeConfigError(ValueError):
    """A node setting is unusable; the message says which and how to fix it."""


@dataclass(frozen=True)
class NodeLayout:
    """Where one cluster's node keeps its files and which addresses it uses."""

    state: Path  # the cluster's state directory
    cidr: ipaddress.IPv4Network  # DEVCLUSTER_NODE_CIDR: pods and the host link come from it
    apiserver_port: int
    service_cidr: str
    cluster_id: str  # short, unique per state directory: names host-visible objects

    @property
    def dir(self) -> Path:
        return self.state / "node"

    @property
    def pods(self) -> ipaddress.IPv4Network:
        """The pods' subnet on the bridge: the first half of the node's range."""
        return next(self.cidr.subnets(prefixlen_diff=1))

    @property
    def node_ip(self) -> str:
        """The bridge's own address: kubelet refuses a loopback node IP, and pods reach it."""
        return str(self.pods[1])

    @property
    def link(self) -> ipaddress.IPv4Network:
        """The /30 between the host and the node, the last of the node's range."""
        return list(self.cidr.subnets(new_prefix=30))[-1]

    @property
    def host_link_ip(self) -> str:
        return str(self.link[1])

    @property
    def node_link_ip(self) -> str:
        return str(self.link[2])

    @property
    def host_link(self) -> str:
        """The host's end of the veth pair (an interface name, at most 15 characters)."""
        return f"dvc{self.cluster_id}"

    @property
    def cgroup_root(self) -> str:
        """The cgroup every pod of this node lives under (in each hierarchy)."""
        return f"/devcluster-{self.cluster_id}"

    @property
    def containerd_socket(self) -> Path:
        return self.dir / "containerd.sock"

    @property
    def apiserver_socket(self) -> Path:
        """The host's API server, forwarded into the node's network namespace."""
        return self.dir / "apiserver.sock"


def parse_node_cidr(value: str, taken: list[str]) -> ipaddress.IPv4Network:
    """``DEVCLUSTER_NODE_CIDR`` checked: an IPv4 range of /16 to /24, overlapping none of
    ``taken`` (the host's routes and the cluster's other ranges)."""
    fix = f"set DEVCLUSTER_NODE_CIDR to a free private IPv4 range, e.g. {free_range(taken)}"
    try:
        cidr = ipaddress.ip_network(value)
    except ValueError:
        raise NodeConfigError(f"DEVCLUSTER_NODE_CIDR={value!r} is not a network; {fix}") from None
    if not isinstance(cidr, ipaddress.IPv4Network) or not 16 <= cidr.prefixlen <= 24:
        raise NodeConfigError(f"DEVCLUSTER_NODE_CIDR={value} must be IPv4, /16 to /24; {fix}")
    if not cidr.is_private or cidr.is_loopback:
        raise NodeConfigError(f"DEVCLUSTER_NODE_CIDR={value} is not a private range; {fix}")
    for other in taken:
        if cidr.overlaps(ipaddress.ip_network(other, strict=False)):
            raise NodeConfigError(
                f"DEVCLUSTER_NODE_CIDR={value} overlaps {other}, which this machine or the "
                f"cluster already uses; {fix}"
            )
    return cidr


def free_range(taken: list[str]) -> str:
    """A /24 in 10.222.0.0/16 and up that overlaps nothing in ``taken``, for the error message."""
    used = [ipaddress.ip_network(t, strict=False) for t in taken]
    for third in range(222, 256):
        for candidate in ipaddress.ip_network(f"10.{third}.0.0/16").subnets(new_prefix=24):
            if not any(candidate.overlaps(u) for u in used):
                return str(candidate)
    return "a /24 in 172.16.0.0/12"


# ------------------------------------------------------------------ files


def build_containerd_config(layout: NodeLayout, pause_image: str, runc: str) -> str:
    """containerd's config.toml: everything under the node's directory, runc, and the settings
    this machine needs (docs/devcluster.md)."""
    d = layout.dir
    return f"""# Written by hack/devplane_dev/realnode.py
version = 2
root = "{d / "containerd" / "root"}"
state = "{d / "containerd" / "state"}"
# The "opt" plugin would create /opt/containerd on the host; the others are not used here.
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs"]

[grpc]
  address = "{layout.containerd_socket}"

[plugins."io.containerd.grpc.v1.cri"]
  # Built here (hack/devcluster/pause): no registry serves one.
  sandbox_image = "{pause_image}"
  # Writing a negative oom_score_adj is refused on this machine.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # runc, not crun: crun fails on this machine's mixed cgroup v1/v2 layout.
        BinaryName = "{runc}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{d / "cni"}"
"""


def build_cni_config(layout: NodeLayout) -> dict:
    """One bridge for the node's pods. No masquerade: the node has no route out anyway."""
    return {
        "cniVersion": "1.0.0",
        "name": "devcluster",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": str(layout.pods), "gateway": layout.node_ip}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.dir / "cni-ipam"),
                },
            }
        ],
    }


def build_kubelet_config(layout: NodeLayout) -> dict:
    """KubeletConfiguration; the cgroup settings are what this machine needs."""
    pki = layout.dir / "pki"
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": layout.node_ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(layout.state / "pki" / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        # Pods under a cgroup of this node's own (kubepods/... below it), which `down` removes:
        # without QoS cgroups containerd puts every pod under the machine-wide /k8s.io.
        "cgroupsPerQOS": True,
        "cgroupRoot": layout.cgroup_root,
        "enforceNodeAllocatable": [],
        "protectKernelDefaults": True,
        "failSwapOn": False,
        "clusterDNS": [CLUSTER_DNS],
        "clusterDomain": CLUSTER_DOMAIN,
        # Not the host's resolver: pods learn nothing about the machine's networks.
        "resolvConf": str(layout.dir / "resolv.conf"),
        "podLogsDir": str(layout.dir / "pod-logs"),
        "registerWithTaints": [NODE_TAINT],
        "maxPods": 110,
        # The disk is shared with other work; never evict or collect images because of it.
        "evictionHard": {"memory.available": "100Mi"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
    }


def build_kube_proxy_config(layout: NodeLayout) -> dict:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(layout.dir / "kube-proxy.kubeconfig")},
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": str(layout.pods),
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # NodePorts only on the bridge address, never 127.0.0.1 (that needs route_localnet).
        "nodePortAddresses": [f"{layout.node_ip}/32"],
        "iptables": {"localhostNodePorts": False},
        # 0: leave the conntrack table's size and timeouts alone; they are the machine's.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


# ------------------------------------------------------------------ command lines


def kubelet_argv(layout: NodeLayout, bin_dir: Path) -> list[str]:
    return [
        str(bin_dir / "kubelet"),
        f"--config={layout.dir / 'kubelet.yaml'}",
        f"--kubeconfig={layout.dir / 'kubelet.kubeconfig'}",
        f"--root-dir={KUBELET_ROOT}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={layout.node_ip}",
        f"--node-labels={NODE_LABEL[0]}={NODE_LABEL[1]}",
        "--v=0",
    ]


def kube_proxy_argv(layout: NodeLayout, bin_dir: Path) -> list[str]:
    return [str(bin_dir / "kube-proxy"), f"--config={layout.dir / 'kube-proxy.yaml'}", "--v=0"]


def kube_router_argv(layout: NodeLayout, node_bin: Path) -> list[str]:
    """Only the NetworkPolicy controller: pods are bridged by CNI, Services by kube-proxy."""
    return [
        str(node_bin / "kube-router"),
        f"--kubeconfig={layout.dir / 'kube-router.kubeconfig'}",
        f"--hostname-override={NODE_NAME}",
        "--run-firewall=true",
        "--run-router=false",
        "--run-service-proxy=false",
        "--enable-cni=false",
        "--enable-ipv6=false",
        f"--service-cluster-ip-range={layout.service_cidr}",
        "--health-port=20244",
        "--metrics-port=0",
        "--v=1",
    ]


def apiserver_forward_argv(layout: NodeLayout, inside: bool) -> list[str]:
    """socat, the two halves of the API server's way into the node's network namespace.

    The API server listens on the host's loopback only; the node's processes (and pods, through
    the `kubernetes` Service) reach it on port ``apiserver_port`` of every node address, which
    socat relays over a unix socket in the node's directory, visible in both namespaces.
    """
    sock = layout.apiserver_socket
    if inside:
        return [
            "socat",
            f"TCP-LISTEN:{layout.apiserver_port},fork,reuseaddr",
            f"UNIX-CONNECT:{sock}",
        ]
    return [
        "socat",
        f"UNIX-LISTEN:{sock},fork,unlink-early,mode=600",
        f"TCP:127.0.0.1:{layout.apiserver_port}",
    ]


def expose_argv(layout: NodeLayout, port: int, bind: str, inside: bool) -> list[str]:
    """socat, the two halves that make the host's ``127.0.0.1:port`` answer at ``bind:port``
    in the node's network namespace (over a unix socket, as for the API server).

    ``bind`` is the node's own loopback for what only the node's daemons use (a registry
    containerd pulls from), or the node's IP for a service pods and the host both call by one
    address (an identity provider, an LLM endpoint outside the cluster)."""
    sock = layout.dir / f"expose-{port}.sock"
    if inside:
        return ["socat", f"TCP-LISTEN:{port},bind={bind},fork,reuseaddr", f"UNIX-CONNECT:{sock}"]
    return ["socat", f"UNIX-LISTEN:{sock},fork,unlink-early,mode=600", f"TCP:127.0.0.1:{port}"]


def namespace_holder_script(layout: NodeLayout) -> str:
    """The first process of the node's namespaces (run by ``unshare --net --mount``)."""
    lines = ["set -e"]
    for path in PRIVATE_DIRS:
        lines.append(f"mount -t tmpfs -o mode=755 devcluster-node {path}")
    for name in KUBELET_SYSCTLS:
        fake = layout.dir / "sysctl" / name.replace("/", ".")
        lines.append(f"mount --bind {fake} /proc/sys/{name}")
    lines += ["ip link set lo up", "exec sleep infinity"]
    return "\n".join(lines)


def as_json(obj: dict) -> str:
    """Config files are JSON: valid YAML, read by kubelet and kube-proxy alike."""
    return json.dumps(obj, indent=2)
