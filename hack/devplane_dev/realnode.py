"""The local cluster's real node: containerd, kubelet, kube-proxy, kube-router's firewall and
CoreDNS, started and stopped by ``devcluster`` unless ``DEVCLUSTER_REAL_NODE=0``.

Why its own namespaces. The node runs in a network and a mount namespace of its own, made by
``unshare`` and held by one ``sleep``; every node process enters both with ``nsenter``. So:
- kube-proxy's and kube-router's iptables chains and ipsets, the pods' bridge and veths and the
  node's routes exist in that network namespace only: two clusters on one machine never share
  a chain (kube-proxy's names are fixed), and the host's firewall is never edited;
- containerd's and runc's files under /run, CNI's cache, kubelet's /var/log links and every
  mount the node makes (pod volumes, rootfs overlays, pod netns) live in that mount namespace;
- when its last process exits, both namespaces and all of that are gone with them, whatever
  state the node was left in. ``down`` still stops each part in order and then checks.
The host keeps only one veth (``dvc<id>``) and the route to the pods through it; the node has no
route anywhere else and no masquerade, and a guard chain drops what pods start towards the host.

The API server listens on the host's loopback only; socat relays it into the node's namespace
(``realnode_config.apiserver_forward_argv``), where kubelet, kube-proxy and kube-router use
``https://127.0.0.1:<port>`` and pods use the ``kubernetes`` Service (the API server advertises
the node's bridge address).

Its processes are found and stopped by ``realnode_procs``; its images are ``realnode_images``';
its files, command lines and cluster objects are pure functions in ``realnode_config`` and
``realnode_manifests``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from devplane_dev import devcluster as dc
from devplane_dev import realnode_config as cfg
from devplane_dev import realnode_images
from devplane_dev import realnode_manifests as manifests
from devplane_dev import realnode_procs as procs
from devplane_dev.poll import wait_for
from devplane_dev.realnode_procs import PROCESSES, NodeError

# Stopped first by `down`, so that nothing restarts a pod while containerd removes them.
CONTROLLERS = ("kube-router", "kube-proxy", "kubelet")
DEFAULT_CIDR = "10.222.0.0/24"
# Free volumes `up` leaves in the real node's pool (ensure_local_volumes).
LOCAL_VOLUMES_AVAILABLE = 8
REQUIRED_TOOLS = {
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "socat": "socat",
    "unshare": "util-linux",
    "nsenter": "util-linux",
    "ip": "iproute2",
    "iptables": "iptables",
    "ipset": "ipset",
}


def layout() -> cfg.NodeLayout:
    """This cluster's node: its directory, addresses and names (nothing is created)."""
    recorded = dc.STATE / "node" / "cidr"
    if recorded.exists():  # the node's own range, whatever the environment says now
        cidr = ipaddress.IPv4Network(recorded.read_text().strip())
    else:
        taken = [dc.SERVICE_CIDR, dc.POD_CIDR, *host_routes()]
        try:
            cidr = cfg.parse_node_cidr(os.environ.get("DEVCLUSTER_NODE_CIDR", DEFAULT_CIDR), taken)
        except cfg.NodeConfigError as err:
            raise NodeError(str(err)) from None
    return cfg.NodeLayout(
        state=dc.STATE,
        cidr=cidr,
        apiserver_port=dc.PORTS["apiserver"],
        service_cidr=dc.SERVICE_CIDR,
        cluster_id=cluster_id(),
    )


def cluster_id() -> str:
    """Short and unique per state directory: it names what the node shows the host."""
    return hashlib.sha256(str(dc.STATE).encode()).hexdigest()[:6]


def host_routes() -> list[str]:
    """The host's routes, less the one this cluster's node added (it is ours to reuse)."""
    out = subprocess.run(["ip", "-4", "-j", "route"], capture_output=True, text=True).stdout
    ours = f"dvc{cluster_id()}"
    return [
        r["dst"]
        for r in json.loads(out or "[]")
        if r.get("dst") not in (None, "default") and r.get("dev") != ours
    ]


# ------------------------------------------------------------------ binaries and images


def check_tools() -> None:
    missing = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items() if not shutil.which(tool)})
    if not os.path.isdir(cfg.CNI_BIN_DIR) or not os.path.exists(f"{cfg.CNI_BIN_DIR}/bridge"):
        missing.append("containernetworking-plugins")
    if missing:
        raise NodeError(
            f"the real node needs Debian packages that are not installed: {' '.join(missing)}; "
            "run `make setup-node` (hack/apt-packages-node.txt) as root"
        )
    if os.geteuid() != 0:
        raise NodeError("the real node needs root (namespaces, mounts, cgroups); run as root")


def node_binary_dir() -> Path:
    """kube-router, CoreDNS and pause (hack/build-binaries.sh node)."""
    override = os.environ.get("DEVCLUSTER_NODE_BIN_DIR")
    if override:
        return Path(override)
    proc = subprocess.run(
        [str(dc.ROOT / "hack" / "build-binaries.sh"), "node"], stdout=subprocess.PIPE, text=True
    )
    if proc.returncode != 0:
        raise NodeError("building the real node's binaries failed (see the messages above)")
    return Path(proc.stdout.strip().splitlines()[-1])


def load_images(refs: list[str]) -> None:
    """``hack/devcluster.py load-images REF...``: images from podman's store into the running
    node's containerd."""
    lay = layout()
    if not procs.alive(lay, "containerd"):
        raise NodeError(
            "the real node is not running: start the cluster without DEVCLUSTER_REAL_NODE=0"
        )
    realnode_images.import_images(lay, refs)


# ------------------------------------------------------------------ up


def prepare(lay: cfg.NodeLayout, bin_dir: Path) -> dict[str, str]:
    """Files, certificates and namespaces; the processes that need no API server. Runs while
    the API server starts. Returns the node's images."""
    check_tools()
    longest = lay.containerd_socket.with_name("containerd.sock.ttrpc")
    if len(str(longest)) > 100:  # a unix socket's path has at most 108 bytes
        raise NodeError(
            f"the cluster's state directory {lay.state} is too deep for the node's unix "
            "sockets; set DEVCLUSTER_DIR to a shorter path"
        )
    for name in ["kubelet", "kube-proxy"]:
        if not (bin_dir / name).exists():
            raise NodeError(f"{bin_dir / name} is missing; run hack/build-binaries.sh")
    node_bin = node_binary_dir()
    node_images = realnode_images.build_node_images(node_bin)
    d = lay.dir
    for sub in ["pids", "logs", "tmp", "cni", "sysctl", "pod-logs"]:
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "cidr").write_text(f"{lay.cidr}\n")
    write_files(lay, node_images)
    start_namespaces(lay)
    procs.start(lay, "forward-host", cfg.apiserver_forward_argv(lay, inside=False), inside=False)
    procs.start(lay, "forward-node", cfg.apiserver_forward_argv(lay, inside=True))
    procs.start(lay, "containerd", ["containerd", f"--config={d / 'containerd.toml'}"])
    procs.wait(lay, "containerd to answer", lambda: procs.ctr(lay, "version", check=False) != "")
    realnode_images.import_images(lay, list(node_images.values()))
    for hierarchy in procs.cgroup_hierarchies():  # kubelet needs its cgroupRoot to exist
        (hierarchy / lay.cgroup_root.lstrip("/")).mkdir(exist_ok=True)
    procs.start(lay, "kubelet", cfg.kubelet_argv(lay, bin_dir))
    return node_images


def write_files(lay: cfg.NodeLayout, images: dict[str, str]) -> None:
    d = lay.dir
    runc = shutil.which("runc") or "runc"
    (d / "containerd.toml").write_text(cfg.build_containerd_config(lay, images["pause"], runc))
    (d / "cni" / "10-devcluster.conflist").write_text(cfg.as_json(cfg.build_cni_config(lay)))
    (d / "kubelet.yaml").write_text(cfg.as_json(cfg.build_kubelet_config(lay)))
    (d / "kube-proxy.yaml").write_text(cfg.as_json(cfg.build_kube_proxy_config(lay)))
    (d / "resolv.conf").write_text("")
    for name, value in cfg.KUBELET_SYSCTLS.items():
        (d / "sysctl" / name.replace("/", ".")).write_text(value + "\n")
    pki = d / "pki"
    certs = {
        "kubelet": (
            f"/O=system:nodes/CN=system:node:{cfg.NODE_NAME}",
            ["extendedKeyUsage=clientAuth"],
        ),
        "kubelet-serving": (
            f"/CN={cfg.NODE_NAME}",
            [f"subjectAltName=IP:{lay.node_ip},DNS:{cfg.NODE_NAME}", "extendedKeyUsage=serverAuth"],
        ),
        "kube-proxy": ("/CN=system:kube-proxy", ["extendedKeyUsage=clientAuth"]),
        "kube-router": ("/CN=system:kube-router", ["extendedKeyUsage=clientAuth"]),
    }  # fmt: skip
    for name, (subject, exts) in certs.items():
        dc.issue_cert(pki, name, subject, exts)
        if name != "kubelet-serving":
            dc.write_kubeconfig(d / f"{name}.kubeconfig", pki, name)


def start_namespaces(lay: cfg.NodeLayout) -> None:
    """The node's network and mount namespaces, and the one veth pair to the host."""
    for path in cfg.PRIVATE_DIRS:
        if lay.dir.is_relative_to(path):
            raise NodeError(f"the cluster's state ({lay.state}) must not be under {path}")
    holder = procs.start(
        lay,
        "namespaces",
        ["unshare", "--net", "--mount", "--propagation=private", "--", "sh", "-c",
         cfg.namespace_holder_script(lay)],
        inside=False,
    )  # fmt: skip
    # Ready once `sleep` runs: every mount above it is in place by then.
    procs.wait(lay, "the node's namespaces", lambda: _comm(holder) == "sleep", timeout=10)
    host, node = lay.host_link, cfg.NODE_LINK
    procs.run(
        ["ip", "link", "add", host, "type", "veth", "peer", "name", node, "netns", str(holder)],
        "creating the node's link",
    )
    Path(f"/proc/sys/net/ipv6/conf/{host}/disable_ipv6").write_text("1\n")
    procs.run(["ip", "addr", "add", f"{lay.host_link_ip}/30", "dev", host], "addressing the link")
    procs.run(["ip", "link", "set", host, "up"], "raising the link")
    procs.run(
        ["ip", "route", "add", str(lay.pods), "via", lay.node_link_ip, "dev", host],
        "routing to the node's pods",
    )
    inside = [
        ["ip", "addr", "add", f"{lay.node_link_ip}/30", "dev", node],
        ["ip", "link", "set", node, "up"],
        # The bridge exists before kubelet: kubelet serves on its address, the node IP.
        ["ip", "link", "add", cfg.BRIDGE, "type", "bridge"],
        ["ip", "addr", "add", f"{lay.node_ip}/{lay.pods.prefixlen}", "dev", cfg.BRIDGE],
        ["ip", "link", "set", cfg.BRIDGE, "up"],
        ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"],
        ["sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1"],
        # The guard: the host may open connections to pods, and nothing else may come in
        # through the link; pods may answer the host but never open a connection through it.
        # In mangle, which kube-router's and kube-proxy's ACCEPTs in filter come after.
        ["iptables", "-t", "mangle", "-N", "DEVCLUSTER-GUARD"],
        ["iptables", "-t", "mangle", "-A", "DEVCLUSTER-GUARD", "-i", node, "!", "-s",
         lay.host_link_ip, "-j", "DROP"],
        ["iptables", "-t", "mangle", "-A", "DEVCLUSTER-GUARD", "-o", node, "-m", "conntrack",
         "!", "--ctstate", "ESTABLISHED,RELATED", "-j", "DROP"],
        ["iptables", "-t", "mangle", "-I", "FORWARD", "1", "-j", "DEVCLUSTER-GUARD"],
    ]  # fmt: skip
    for argv in inside:
        procs.run(argv, "setting up the node's network", inside=lay)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def start_controllers(lay: cfg.NodeLayout, bin_dir: Path, images: dict[str, str]) -> None:
    """With the API server ready: CoreDNS's objects, kube-proxy, the node's pod range and
    kube-router. `up` waits for the kwok node meanwhile, then for ``wait_usable``."""
    objects = [
        manifests.build_kube_router_rbac(),
        manifests.build_coredns_manifests(images["coredns"]),
        manifests.build_local_storage_class(),
    ]
    for obj in objects:
        dc.kubectl(bin_dir, "apply", "-f", "-", stdin=cfg.as_json(obj))
    ensure_local_volumes(lay, bin_dir)
    procs.start(lay, "kube-proxy", cfg.kube_proxy_argv(lay, bin_dir))

    def registered() -> bool:
        try:
            dc.kubectl(bin_dir, "get", "node", cfg.NODE_NAME)
            return True
        except dc.DevclusterError:
            return False

    procs.wait(lay, "kubelet to register the node", registered)
    # No node IPAM runs (devcluster disables it for kwok): the node's pod range is set here.
    spec = json.loads(dc.kubectl(bin_dir, "get", "node", cfg.NODE_NAME, "-o", "json"))["spec"]
    if not spec.get("podCIDR"):
        patch = {"spec": {"podCIDR": str(lay.pods), "podCIDRs": [str(lay.pods)]}}
        dc.kubectl(bin_dir, "patch", "node", cfg.NODE_NAME, "-p", json.dumps(patch))
    # kube-router reads the node's pod range at start.
    procs.start(lay, "kube-router", cfg.kube_router_argv(lay, node_binary_dir()))


def ensure_local_volumes(
    lay: cfg.NodeLayout, bin_dir: Path, available: int = LOCAL_VOLUMES_AVAILABLE
) -> None:
    """Keep ``available`` volumes of the real node's pool free: a Released one (its claim was
    deleted) is deleted with its files, never handed to the next claim; then new ones are made.

    No provisioner makes `local` volumes on demand, so `up` makes the pool and a test that
    needs several homes on the node calls this first (a warm cluster serves many runs)."""
    selector = "=".join(cfg.LOCAL_VOLUME_LABEL)
    listed = json.loads(dc.kubectl(bin_dir, "get", "pv", "-l", selector, "-o", "json"))
    free = 0
    for pv in listed["items"]:
        phase = (pv.get("status") or {}).get("phase")
        if phase == "Available" and not pv["spec"].get("claimRef"):
            free += 1
        elif phase in ("Released", "Failed"):
            dc.kubectl(bin_dir, "delete", "pv", pv["metadata"]["name"], "--wait=false")
            shutil.rmtree(pv["spec"]["local"]["path"], ignore_errors=True)
    volumes = []
    for _ in range(available - free):
        name = f"node-vol-{os.urandom(4).hex()}"
        path = lay.dir / "volumes" / name
        path.mkdir(parents=True)
        volumes.append(manifests.build_local_volume(name, str(path)))
    if volumes:
        batch = {"apiVersion": "v1", "kind": "List", "items": volumes}
        dc.kubectl(bin_dir, "apply", "-f", "-", stdin=cfg.as_json(batch))


def expose(port: int, on_node_ip: bool) -> str:
    """Make the host's ``127.0.0.1:port`` reachable inside the node: at the node's IP (for
    pods and, through the host's route, the host too) or only on the node's loopback (for its
    daemons). Idempotent; the relay stops with the node. Returns ``host:port`` as seen there."""
    lay = layout()
    bind = lay.node_ip if on_node_ip else "127.0.0.1"
    for side, inside in (("host", False), ("node", True)):
        name = f"expose-{port}-{side}"
        if not procs.alive(lay, name):
            procs.start(lay, name, cfg.expose_argv(lay, port, bind, inside), inside=inside)
    return f"{bind}:{port}"


@contextmanager
def cluster_network(workdir: Path) -> Iterator[list[str]]:
    """An argv prefix that runs a host program where a node daemon runs: in the node's network
    namespace, resolving names with the cluster's DNS, so Service names and ClusterIPs work
    as they do for an in-cluster hub (kube-proxy routes them). For the spawn benchmark's hubs,
    which measure the chart's default ``service`` routing from this machine.

    - The node's namespace has no default route, so a ClusterIP would be unreachable from
      there: a route for the Service range onto the bridge is added while this lasts (a kubeadm
      node has one through its default route). It leads nowhere but kube-proxy's rules.
    - ``/etc/resolv.conf`` is replaced in a private mount namespace of the program only
      (``unshare --mount`` makes its mounts private): the host's and the node's resolvers are
      never edited.
    - Listen on ``layout().node_link_ip`` to be reachable from the host.
    """
    lay = layout()
    resolv = workdir / "cluster-resolv.conf"
    resolv.write_text(
        f"nameserver {cfg.CLUSTER_DNS}\n"
        f"search svc.{cfg.CLUSTER_DOMAIN} {cfg.CLUSTER_DOMAIN}\noptions ndots:5\n"
    )
    route = [lay.service_cidr, "dev", cfg.BRIDGE, "src", lay.node_ip]
    procs.run(["ip", "route", "replace", *route], "routing Services in the node", inside=lay)
    try:
        yield [
            *procs.enter(lay, "net"),
            "unshare", "--mount", "--",
            "sh", "-c", 'mount --bind "$0" /etc/resolv.conf && exec "$@"', str(resolv),
        ]  # fmt: skip
    finally:
        # Gone already (the node was restarted, or another user's exit took it): nothing to
        # undo, and no reason to hide what the caller raised.
        if procs.alive(lay, "namespaces"):
            with suppress(NodeError):
                procs.run(["ip", "route", "del", *route], "removing the Service route", inside=lay)


def unexpose(port: int) -> None:
    """Stop ``expose(port, ...)``'s relay (nothing when there is none)."""
    lay = layout()
    procs.stop(lay, [f"expose-{port}-{side}" for side in ("host", "node")])
    (lay.dir / f"expose-{port}.sock").unlink(missing_ok=True)


def wait_usable(lay: cfg.NodeLayout, bin_dir: Path) -> None:
    """Until the node is Ready and CoreDNS answers (a pod can resolve a Service's name)."""
    procs.wait(lay, "the real node to become Ready", lambda: node_ready(bin_dir))
    kubelet_started = procs.pidfile(lay, "kubelet").stat().st_mtime
    dc.log(f"real node Ready {time.time() - kubelet_started:.1f}s after kubelet started")
    procs.wait(lay, "CoreDNS to become Ready", lambda: coredns_ready(bin_dir))


def node_ready(bin_dir: Path) -> bool:
    try:
        out = dc.kubectl(
            bin_dir, "get", "node", cfg.NODE_NAME,
            "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        )  # fmt: skip
    except dc.DevclusterError:
        return False
    return out.strip() == "True"


def coredns_ready(bin_dir: Path) -> bool:
    out = dc.kubectl(
        bin_dir, "get", "deployment", "coredns", "-n", "kube-system",
        "-o", "jsonpath={.status.readyReplicas}",
    )  # fmt: skip
    return out.strip() not in ("", "0")


def healthy(lay: cfg.NodeLayout) -> bool:
    return all(procs.alive(lay, name) for name in PROCESSES)


def up_started() -> bool:
    """Whether this cluster was started with the real node."""
    return (dc.STATE / "node").is_dir()


# ------------------------------------------------------------------ down


def down(lay: cfg.NodeLayout) -> list[str]:
    """Stop the node and remove everything it made; returns what is left (empty: all gone).

    In order: kubelet and the other controllers (nothing restarts a pod after that), every
    pod's task and container through containerd (runc removes their cgroups and mounts), then
    the remaining daemons, the shims and the namespace holder. With the last of them the
    node's namespaces go, and with them its mounts, bridge, veths, iptables chains and ipsets.
    Whatever survived an interrupted run is then killed or removed, and what is still there
    is reported.
    """
    if not lay.dir.exists() and not procs.node_processes(lay):
        return []
    procs.stop(lay, list(CONTROLLERS))
    if procs.alive(lay, "containerd"):
        for task in procs.ctr(lay, "tasks", "ls", "-q", check=False).split():
            procs.ctr(lay, "tasks", "delete", "--force", task, check=False)
        for container in procs.ctr(lay, "containers", "ls", "-q", check=False).split():
            procs.ctr(lay, "containers", "delete", container, check=False)
    procs.stop(lay, [n for n in reversed(PROCESSES) if n not in CONTROLLERS])
    for pid in procs.node_processes(lay) + procs.pod_processes(lay):  # strays: shims, orphaned pods
        procs.kill(pid, signal.SIGKILL)
    wait_for("the node's processes to exit", lambda: not procs.node_processes(lay) and not
             procs.pod_processes(lay), timeout=10)  # fmt: skip
    procs.remove_cgroups(lay)
    if Path(f"/sys/class/net/{lay.host_link}").exists():
        subprocess.run(["ip", "link", "del", lay.host_link], capture_output=True)
    return leftovers(lay)


def leftovers(lay: cfg.NodeLayout) -> list[str]:
    """What of this node is still on the machine (empty after a clean ``down``)."""
    left = [f"process {pid}" for pid in procs.node_processes(lay) + procs.pod_processes(lay)]
    left += [f"cgroup {p}" for p in procs.cgroup_dirs(lay)]
    if Path(f"/sys/class/net/{lay.host_link}").exists():
        left.append(f"link {lay.host_link}")
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    left += [f"mount {m.split()[4]}" for m in mounts if str(lay.dir) in m.split()[4]]
    return left


def status_lines(lay: cfg.NodeLayout) -> list[tuple[str, bool]]:
    return [(f"node/{name}", procs.alive(lay, name)) for name in PROCESSES]
