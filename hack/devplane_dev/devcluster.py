"""DevPlane's local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok, started as plain processes on loopback.

    python hack/devcluster.py up       # idempotent; prints the kubeconfig path when healthy
    python hack/devcluster.py down     # stops every process it started, removes its state
    python hack/devcluster.py status
    DEVCLUSTER_REAL_NODE=0 python hack/devcluster.py up    # without the real node (realnode.py)
    python hack/devcluster.py load-images localhost/devplane/workspace:0.1.0   # into that node

Why our own launcher rather than `kwokctl --runtime binary`: kwokctl downloads binaries
unless every path is overridden, keeps its state under ~/.kwok, and hides the flags that
matter to us (loopback binding, PodSecurity, the pod CIDR, our stages). Starting the five
processes ourselves, as envtest does, is ~300 lines with every flag in view, needs only the
standard library and `openssl`, and gives the pytest fixture a direct handle on the state.

Only the standard library is used, so this runs before the virtualenv exists: `make
devcluster-down` and .ci/run's clean-up call it with the system python. That is why it is
run by path (hack/devcluster.py, a shim: a script's own directory is on sys.path, so
`devplane_dev` imports without installing anything) and why it waits with the harness's
stdlib-only `poll` rather than anything that needs the venv. Tests, the demo and the
benchmarks use it the same way, through its command line, as they would kind's or kwok's.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devplane_api.envparse import env_bool
from devplane_dev import poll

ROOT = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("DEVCLUSTER_DIR", ROOT / ".devcluster"))
HOST = "127.0.0.1"  # everything listens on loopback only
# Ports sit in an unusual range so a developer's own cluster is not disturbed.
PORTS = {
    "etcd-client": int(os.environ.get("DEVCLUSTER_ETCD_PORT", "32379")),
    "etcd-peer": int(os.environ.get("DEVCLUSTER_ETCD_PEER_PORT", "32380")),
    "apiserver": int(os.environ.get("DEVCLUSTER_APISERVER_PORT", "36443")),
    "controller-manager": int(os.environ.get("DEVCLUSTER_KCM_PORT", "30257")),
    "scheduler": int(os.environ.get("DEVCLUSTER_SCHEDULER_PORT", "30259")),
    "kwok": int(os.environ.get("DEVCLUSTER_KWOK_PORT", "30247")),
}
# kwok's pods get IPs from this loopback range, so a stand-in (devplane_dev.responders) can
# answer at a pod's IP without any network set-up.
POD_CIDR = os.environ.get("DEVCLUSTER_POD_CIDR", "127.20.0.0/16")
# Service ClusterIPs are only ever allocated, never dialled: nothing here routes to them.
SERVICE_CIDR = "10.96.0.0/16"
NODE_NAME = "kwok-node-0"
COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"]
START_TIMEOUT = float(os.environ.get("DEVCLUSTER_START_TIMEOUT", "120"))
REAL_NODE_ENV = "DEVCLUSTER_REAL_NODE"


def real_node_wanted() -> bool:
    """`up` adds the real node (realnode.py) to the cluster unless ``DEVCLUSTER_REAL_NODE=0``
    (a machine that cannot run one: no root, no containerd)."""
    try:
        return env_bool(os.environ, REAL_NODE_ENV, default=True)
    except ValueError as err:
        raise DevclusterError(str(err)) from None


def log(msg: str) -> None:
    print(f"devcluster: {msg}", file=sys.stderr, flush=True)


class DevclusterError(RuntimeError):
    """A failure a developer can act on; the message says what to do."""


# ------------------------------------------------------------------ binaries


def binary_dir() -> Path:
    """Build (or reuse) the pinned binaries and return their directory."""
    override = os.environ.get("DEVCLUSTER_BIN_DIR")
    if override:
        return Path(override)
    proc = subprocess.run(
        [str(ROOT / "hack" / "build-binaries.sh"), "etcd", "kwok", "kubernetes"],
        stdout=subprocess.PIPE,
        text=True,
    )
    if proc.returncode != 0:
        raise DevclusterError(
            "building the control-plane binaries failed (see the messages above); "
            "README.md's 'Troubleshooting the build' section lists the usual causes"
        )
    return Path(proc.stdout.strip().splitlines()[-1])


def read_versions() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pins[key] = value
    return pins


# ------------------------------------------------------------------ PKI


def openssl(*args: str, cwd: Path) -> None:
    if not shutil.which("openssl"):
        raise DevclusterError("openssl is not installed: apt-get install openssl")
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def genkey(name: str, cwd: Path) -> None:
    """An EC P-256 private key: milliseconds, where a 2048-bit RSA key took about a second on
    a busy 2-core machine, and `up` makes one per component (most of its time before etcd)."""
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name,
            cwd=cwd)  # fmt: skip


def make_pki(pki: Path) -> None:
    """A throwaway CA, the API server's serving cert, client certs, and the SA signing key."""
    pki.mkdir(parents=True, exist_ok=True)
    genkey("ca.key", cwd=pki)
    openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-days", "3650", "-subj", "/CN=devcluster-ca",
        "-out", "ca.crt", cwd=pki,
    )  # fmt: skip
    genkey("sa.key", cwd=pki)  # service-account tokens are signed ES256
    openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    sans = (
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1"
    )
    certs = {
        # name: (subject, extensions)
        "apiserver": ("/CN=kube-apiserver", [sans, "extendedKeyUsage=serverAuth"]),
        "admin": ("/O=system:masters/CN=devcluster-admin", ["extendedKeyUsage=clientAuth"]),
        "controller-manager": (
            "/CN=system:kube-controller-manager",
            ["extendedKeyUsage=clientAuth"],
        ),
        "scheduler": ("/CN=system:kube-scheduler", ["extendedKeyUsage=clientAuth"]),
        # kwok writes node and pod status, events, PVs: the kubelet and a provisioner's work.
        "kwok": ("/O=system:masters/CN=kwok-controller", ["extendedKeyUsage=clientAuth"]),
        # How the API server logs in to a real kubelet (exec, logs, port-forward).
        "apiserver-kubelet-client": (
            "/O=system:masters/CN=kube-apiserver-kubelet-client",
            ["extendedKeyUsage=clientAuth"],
        ),
    }
    for name, (subject, exts) in certs.items():
        issue_cert(pki, name, subject, exts)


def issue_cert(out: Path, name: str, subject: str, exts: list[str]) -> None:
    """``out/name.key`` and ``out/name.crt``, signed by the cluster's CA (STATE/pki)."""
    ca = STATE / "pki"
    out.mkdir(parents=True, exist_ok=True)
    genkey(f"{name}.key", cwd=out)
    openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=out)
    extfile = out / f"{name}.ext"
    extfile.write_text("\n".join(exts) + "\n")
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", str(ca / "ca.crt"), "-CAkey",
        str(ca / "ca.key"), "-CAcreateserial", "-CAserial", str(ca / "ca.srl"), "-days", "3650",
        "-extfile", extfile.name, "-out", f"{name}.crt", cwd=out,
    )  # fmt: skip


def write_kubeconfig(path: Path, pki: Path, user: str) -> None:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "devcluster",
                "cluster": {
                    "server": f"https://{HOST}:{PORTS['apiserver']}",
                    "certificate-authority-data": base64.b64encode(
                        (STATE / "pki" / "ca.crt").read_bytes()
                    ).decode(),
                },
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(f"{user}.crt"),
                    "client-key-data": b64(f"{user}.key"),
                },
            }
        ],
        "contexts": [
            {
                "name": "devcluster",
                "context": {"cluster": "devcluster", "user": user, "namespace": "default"},
            }
        ],
        "current-context": "devcluster",
    }
    # JSON is valid YAML, and every kubeconfig reader accepts it.
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


# ------------------------------------------------------------------ processes


def pidfile(name: str) -> Path:
    return STATE / "pids" / f"{name}.pid"


def read_pid(name: str) -> int | None:
    try:
        return int(pidfile(name).read_text())
    except (FileNotFoundError, ValueError):
        return None


def is_ours(pid: int) -> bool:
    """True when pid is alive and is one of our processes (guards against reused pids)."""
    for _ in range(50):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":  # zombie: exited, not yet reaped
            return False
        if cmdline:
            return str(STATE) in cmdline
        # A process still inside execve() has no argv yet: Popen returns as soon as the
        # child has its new memory, a moment before the kernel copies argv in (seen 12 times
        # in 300 starts). Ask again rather than report a starting etcd as dead.
        time.sleep(0.01)
    return False


def start(name: str, argv: list[str]) -> None:
    spawn(argv, STATE / "logs" / f"{name}.log", pidfile(name))


def spawn(argv: list[str], log_file: Path, pid_file: Path, env: dict | None = None) -> int:
    """Start a process of the cluster in a session of its own, logging to ``log_file``; its
    pid goes to ``pid_file`` (and is returned)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives `make devcluster`; not killed by its Ctrl-C
            cwd=STATE,
            env=env,
        )
    pid_file.write_text(str(proc.pid))
    return proc.pid


def private_cluster_env(state: Path, base_port: int, **extra: str) -> dict[str, str]:
    """The environment of a second, private cluster beside the one in use: its own state
    directory and ports (``base_port`` plus 2379, 2380, 6443, 257, 259 and 247), so tests and
    benchmarks can start and stop one without touching a running `make devcluster`."""
    return {
        **os.environ,
        "DEVCLUSTER_DIR": str(state),
        "DEVCLUSTER_ETCD_PORT": str(base_port + 2379),
        "DEVCLUSTER_ETCD_PEER_PORT": str(base_port + 2380),
        "DEVCLUSTER_APISERVER_PORT": str(base_port + 6443),
        "DEVCLUSTER_KCM_PORT": str(base_port + 257),
        "DEVCLUSTER_SCHEDULER_PORT": str(base_port + 259),
        "DEVCLUSTER_KWOK_PORT": str(base_port + 247),
        **extra,
    }


def our_pids(names: list[str]) -> dict[int, str]:
    """Every live process of the named components that runs on our state directory.

    Found by scanning /proc rather than trusting pid files alone, so a process orphaned by
    an interrupted `up` is found too.
    """
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
        except OSError:
            continue
        name = Path(argv0).name
        if name in names and is_ours(int(proc.name)):
            found[int(proc.name)] = name
    return found


def stop(names: list[str]) -> list[str]:
    """Stop the named components (SIGTERM, then SIGKILL); returns the names that ran."""
    victims = our_pids(names)
    for pid in victims:
        with _suppress():
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for pid, name in victims.items():
        while is_ours(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if is_ours(pid):
            log(f"{name} did not stop on SIGTERM; killing it")
            with _suppress():
                os.kill(pid, signal.SIGKILL)
    return sorted(set(victims.values()), key=COMPONENTS.index)


def stop_all() -> list[str]:
    return stop(COMPONENTS)


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError | PermissionError)


# ------------------------------------------------------------------ API helpers


def ssl_context() -> ssl.SSLContext:
    pki = STATE / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return ctx


def api_healthy(timeout: float = 2.0) -> bool:
    if not (STATE / "pki" / "admin.crt").exists():
        return False
    try:
        url = f"https://{HOST}:{PORTS['apiserver']}/readyz"
        with urllib.request.urlopen(url, context=ssl_context(), timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def kubectl(bin_dir: Path, *args: str, stdin: str | None = None) -> str:
    proc = subprocess.run(
        [str(bin_dir / "kubectl"), "--kubeconfig", str(STATE / "kubeconfig"), *args],
        input=stdin,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise DevclusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def wait_for(what: str, check, timeout: float = START_TIMEOUT) -> None:
    """``poll.wait_for``, failing at once when one of the components exits meanwhile."""

    def ready() -> bool:
        if check():
            return True
        for name in COMPONENTS:
            pid = read_pid(name)
            if pid is not None and not is_ours(pid):
                tail = (STATE / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
                raise DevclusterError(f"{name} exited while waiting for {what}:\n{tail}")
        return False

    try:
        poll.wait_for(what, ready, timeout, interval=0.2)
    except TimeoutError:
        raise DevclusterError(
            f"timed out after {timeout:.0f}s waiting for {what}; logs in {STATE}/logs"
        ) from None


# ------------------------------------------------------------------ up / down


def control_loop_flags(short_name: str) -> list[str]:
    """What the controller manager and the scheduler share: their kubeconfig for every
    purpose, their own port on loopback, and no leader election (there is one of each)."""
    kcfg = STATE / f"{short_name}.kubeconfig"
    return [
        f"--kubeconfig={kcfg}",
        f"--authentication-kubeconfig={kcfg}",
        f"--authorization-kubeconfig={kcfg}",
        f"--bind-address={HOST}",
        f"--secure-port={PORTS[short_name]}",
        "--leader-elect=false",
    ]


def component_argv(name: str, bin_dir: Path) -> list[str]:
    """The command line of one component; every flag that matters is here."""
    pki = STATE / "pki"
    etcd_url = f"http://{HOST}:{PORTS['etcd-client']}"
    peer_url = f"http://{HOST}:{PORTS['etcd-peer']}"
    if name == "etcd":
        return [
            str(bin_dir / "etcd"),
            "--name=devcluster",
            f"--data-dir={STATE / 'etcd'}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=devcluster={peer_url}",
            # A test cluster: losing it on power loss is fine, fsync latency is not.
            "--unsafe-no-fsync",
            "--quota-backend-bytes=4294967296",
            "--log-level=warn",
        ]
    if name == "kube-apiserver":
        return [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            f"--bind-address={HOST}",
            # With the real node, the `kubernetes` Service leads pods to its bridge address,
            # where the node relays to this loopback-only server (realnode.py).
            f"--advertise-address={advertise_address()}",
            f"--secure-port={PORTS['apiserver']}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            # A real kubelet is reached at the address it registers (InternalIP): the default
            # order tries its host name first, which nothing here resolves.
            "--kubelet-preferred-address-types=InternalIP,Hostname,InternalDNS,ExternalDNS,"
            "ExternalIP",
            # PodSecurity admission (on by default) is what must reject privileged pods in a
            # `restricted` namespace; the global switch would reject them earlier with a 422.
            "--allow-privileged=true",
            "--enable-admission-plugins=NodeRestriction",
            "--profiling=false",
            "--event-ttl=1h",
            "--v=0",
        ]
    if name == "kube-controller-manager":
        return [
            str(bin_dir / "kube-controller-manager"),
            *control_loop_flags("controller-manager"),
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # No cloud, no node IPAM (the node's pod CIDR is set by us), no load balancers.
            "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,"
            "-node-route-controller",
            # The defaults (20 qps) throttle PV binding when a benchmark creates 1,000 claims.
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--v=0",
        ]
    if name == "kube-scheduler":
        return [
            str(bin_dir / "kube-scheduler"),
            *control_loop_flags("scheduler"),
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--v=0",
        ]
    if name == "kwok":
        return [
            str(bin_dir / "kwok"),
            f"--config={STATE / 'kwok.yaml'}",
            f"--kubeconfig={STATE / 'kwok.kubeconfig'}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-label-selector=type=kwok",
            f"--cidr={POD_CIDR}",
            f"--node-ip={HOST}",
            f"--server-address={HOST}:{PORTS['kwok']}",
        ]
    raise ValueError(name)


def advertise_address() -> str:
    if (STATE / "node").is_dir() or real_node_wanted():
        return realnode.layout().node_ip
    return HOST


def write_kwok_config() -> None:
    volume_root = STATE / "volumes"
    volume_root.mkdir(exist_ok=True)
    stages = (ROOT / "hack" / "devcluster" / "kwok-stages.yaml").read_text()
    (STATE / "kwok.yaml").write_text(stages.replace("${VOLUME_ROOT}", str(volume_root)))


def dead_components() -> list[str]:
    return [n for n in COMPONENTS if (pid := read_pid(n)) is None or not is_ours(pid)]


def up() -> Path:
    kubeconfig = STATE / "kubeconfig"
    real_node_wanted()  # a bad value stops here, before anything starts
    dead = dead_components()
    if not dead and api_healthy():
        ensure_node(binary_dir)
        log("already running")
        return kubeconfig
    if (
        dead
        and set(dead) <= {"kube-controller-manager", "kube-scheduler", "kwok"}
        and api_healthy()
    ):
        # Storage and API are fine: restart only what died, keeping everyone's objects
        # (other test sessions and a running demo may be using this cluster).
        bin_dir = binary_dir()
        log(f"restarting {', '.join(dead)}")
        stop(dead)  # strays of a dead component would hold its port
        write_kwok_config()
        for name in dead:
            start(name, component_argv(name, bin_dir))
        bootstrap(bin_dir)
        ensure_node(lambda: bin_dir)
        return kubeconfig
    if len(dead) < len(COMPONENTS):
        log("found a broken control plane; restarting it from scratch")
        down(quiet=True)

    bin_dir = binary_dir()
    for b in COMPONENTS:
        if not (bin_dir / b).exists():
            raise DevclusterError(f"{bin_dir / b} is missing; run hack/build-binaries.sh")
    t0 = time.monotonic()
    if STATE.exists():
        shutil.rmtree(STATE)
    STATE.mkdir(parents=True)
    pki = STATE / "pki"
    make_pki(pki)
    for user in ["admin", "controller-manager", "scheduler", "kwok"]:
        write_kubeconfig(STATE / f"{user}.kubeconfig", pki, user)
    shutil.copy(STATE / "admin.kubeconfig", kubeconfig)
    kubeconfig.chmod(0o600)
    write_kwok_config()

    start("etcd", component_argv("etcd", bin_dir))
    start("kube-apiserver", component_argv("kube-apiserver", bin_dir))
    node = None
    if real_node_wanted():
        node = realnode.layout()
        # Everything that needs no API server happens while it starts.
        node_images = realnode.prepare(node, bin_dir)
    # The controllers authenticate with their own identities, whose RBAC roles the API
    # server bootstraps on its first start: start them only once it is ready.
    wait_for("the API server to become ready", api_healthy)
    log(f"API server ready after {time.monotonic() - t0:.1f}s")
    for name in ["kube-controller-manager", "kube-scheduler", "kwok"]:
        start(name, component_argv(name, bin_dir))
    if node is not None:  # its pods start while the kwok node comes up
        realnode.start_controllers(node, bin_dir, node_images)
    bootstrap(bin_dir)
    log(f"control plane healthy after {time.monotonic() - t0:.1f}s")
    if node is not None:
        realnode.wait_usable(node, bin_dir)
        log(f"real node Ready and CoreDNS serving after {time.monotonic() - t0:.1f}s")
    log(f"kubeconfig: {kubeconfig}")
    return kubeconfig


def ensure_node(get_bin_dir) -> None:
    """On a running control plane: refuse to add the node (the API server would need other
    flags), and restart a node that was started but has lost a process."""
    if not realnode.up_started():
        if real_node_wanted():
            raise DevclusterError(
                f"the running cluster ({STATE}) was started without the real node; run "
                "`python3 hack/devcluster.py down`, then `python3 hack/devcluster.py up` (or "
                f"keep it and set {REAL_NODE_ENV}=0)"
            )
        return
    node = realnode.layout()
    if realnode.healthy(node):
        return
    log("the real node lost a process; restarting the node")
    left = realnode.down(node)
    if left:
        raise DevclusterError(f"could not stop the broken real node; still there: {left}")
    bin_dir = get_bin_dir()
    images = realnode.prepare(node, bin_dir)
    realnode.start_controllers(node, bin_dir, images)
    realnode.wait_usable(node, bin_dir)


def bootstrap(bin_dir: Path) -> None:
    """The one kwok Node and the default StorageClass; wait until they are usable."""
    manifests = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": NODE_NAME,
                    "labels": {
                        "type": "kwok",
                        "kubernetes.io/hostname": NODE_NAME,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                    },
                },
                "spec": {"podCIDR": POD_CIDR, "podCIDRs": [POD_CIDR]},
                "status": {
                    # Big enough for the 1,000-workspace benchmark. Scratch space too, as a
                    # kubelet reports it: pods that request some (the chart's LimitRange gives
                    # every workspace container a request) must fit.
                    "capacity": {
                        "cpu": "512",
                        "memory": "2Ti",
                        "pods": "5000",
                        "ephemeral-storage": "100Ti",
                    },
                },
            },
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": "standard",
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": "devcluster.devplane.io/kwok-volume",
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
                "allowVolumeExpansion": True,
            },
        ],
    }
    kubectl(bin_dir, "apply", "-f", "-", stdin=json.dumps(manifests))

    def node_ready() -> bool:
        out = kubectl(
            bin_dir,
            "get",
            "node",
            NODE_NAME,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        )
        return out.strip() == "True"

    def default_sa() -> bool:
        try:
            kubectl(bin_dir, "get", "serviceaccount", "default", "-n", "default")
            return True
        except DevclusterError:
            return False

    wait_for("the kwok node to become Ready", node_ready)
    wait_for("the controller manager to create service accounts", default_sa)


def down(quiet: bool = False) -> None:
    # The node first: containerd must still run to remove the pods' containers.
    left = realnode.down(realnode.layout()) if realnode.up_started() else []
    stopped = stop_all()
    if STATE.exists():
        shutil.rmtree(STATE, ignore_errors=True)
    if left:
        raise DevclusterError(f"the real node left these behind: {', '.join(left)}")
    if not quiet:
        log(f"stopped {', '.join(stopped) or 'nothing (not running)'}; removed {STATE}")


def status() -> int:
    rc = 0
    for name in COMPONENTS:
        pid = read_pid(name)
        alive = pid is not None and is_ours(pid)
        rc |= 0 if alive else 1
        print(f"{name:25s} {'running pid ' + str(pid) if alive else 'stopped'}")
    print(f"{'api':25s} {'healthy' if api_healthy() else 'unreachable'}")
    if realnode.up_started():
        for name, alive in realnode.status_lines(realnode.layout()):
            rc |= 0 if alive else 1
            print(f"{name:25s} {'running' if alive else 'stopped'}")
    return rc


@contextlib.contextmanager
def exclusive():
    """Serialise up/down: several test sessions may call `up` at the same moment."""
    lock = STATE.with_name(STATE.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cli(
    *args: str, env: dict[str, str] | None = None, progress: bool = False, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """``hack/devcluster.py <args>`` as a subprocess, as a user runs it: `up` takes the state
    lock and leaves the cluster running after the caller exits. ``progress`` shows its
    messages instead of capturing them."""
    return subprocess.run(
        [sys.executable, str(ROOT / "hack" / "devcluster.py"), *args],
        stdout=subprocess.PIPE,
        stderr=None if progress else subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


def run_cli(*args: str, env: dict[str, str] | None = None, progress: bool = False) -> Path:
    """``cli(*args)``, raising unless it succeeded; its last line of output (for ``up``, the
    kubeconfig path)."""
    proc = cli(*args, env=env, progress=progress)
    if proc.returncode != 0:
        said = "(messages above)" if progress else proc.stderr[-4000:]
        raise DevclusterError(f"hack/devcluster.py {' '.join(args)} failed:\n{said}")
    return Path(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "status", "kubeconfig", "load-images"])
    parser.add_argument("images", nargs="*", help="load-images: podman image references")
    args = parser.parse_args()
    try:
        if args.command == "up":
            with exclusive():
                print(up())
        elif args.command == "down":
            with exclusive():
                down()
        elif args.command == "status":
            return status()
        elif args.command == "kubeconfig":
            print(STATE / "kubeconfig")
        elif args.command == "load-images":
            realnode.load_images(args.images)
            print("\n".join(args.images))
    except DevclusterError as err:
        log(f"ERROR: {err}")
        return 1
    return 0


# Last: realnode imports this module (its STATE, ports, kubectl and certificates).
from devplane_dev import realnode  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
