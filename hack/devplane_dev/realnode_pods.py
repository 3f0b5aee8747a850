"""Pods for tests on the local cluster's real node: built from DevPlane's workspace image (it has
python3 and a shell), run as uid 1000 under Pod Security `restricted`, and probes run inside them.

Pure builders (``real_node_pod``, ``sleeper``, ``listener``) and two helpers that drive kubectl:
``create_ready`` and ``probe``. Traffic goes only to this cluster's pods and Services.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from devplane_dev.realnode_config import NODE_LABEL, NODE_TAINT

UID = 1000
FS_GROUP = 2000
READY_TIMEOUT = 120
# How long a probe waits for a TCP connection: a policy that drops (not rejects) answers with
# silence, so this is also how long "blocked" takes to show.
CONNECT_TIMEOUT = 3.0
OPEN, REFUSED, TIMEOUT, UNREACHABLE = "open", "refused", "timeout", "unreachable"
NO_NAME = "no-name"
# How a connection a NetworkPolicy or a Service without ready endpoints stops can end: dropped
# (timeout), or rejected with a TCP reset or an ICMP error, depending on who stopped it.
BLOCKED = frozenset({REFUSED, TIMEOUT, UNREACHABLE})


class KubectlLike(Protocol):
    def __call__(self, *args: str, **kwargs: Any) -> Any: ...


def on_the_real_node(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with the real node's selector and toleration (docs/devcluster.md)."""
    return {
        **spec,
        "nodeSelector": {NODE_LABEL[0]: NODE_LABEL[1]},
        "tolerations": [{**NODE_TAINT, "operator": "Equal"}],
    }


def real_node_pod(
    name: str, image: str, command: list[str], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """A pod that passes Pod Security `restricted` and runs on the real node, with an emptyDir
    at /data owned through fsGroup."""
    spec = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 1,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "runAsGroup": UID,
            "fsGroup": FS_GROUP,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "main",
                "image": image,
                "imagePullPolicy": "Never",
                "command": command,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }
        ],
        "volumes": [{"name": "data", "emptyDir": {}}],
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": on_the_real_node(spec),
    }


def sleeper(name: str, image: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return real_node_pod(name, image, ["sleep", "infinity"], labels)


# One process serving /data on every port given: all are bound before any is served, so the
# last one answering means every one does.
_SERVE = """
import functools, http.server, sys, threading
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory="/data")
servers = [http.server.ThreadingHTTPServer(("", int(p)), handler) for p in sys.argv[1:]]
for server in servers[:-1]:
    threading.Thread(target=server.serve_forever, daemon=True).start()
servers[-1].serve_forever()
"""


def listener(
    name: str, image: str, labels: dict[str, str], ports: Sequence[int] = (8080,)
) -> dict[str, Any]:
    """Serves /data over HTTP on each of ``ports`` (its own name in /data/index.html); Ready
    once the last port answers (a TCP check by the kubelet: no process per check, so nothing
    comes and goes on the node while it runs)."""
    script = f"echo {name} > /data/index.html && exec python3 -c '{_SERVE}' " + " ".join(
        map(str, ports)
    )
    pod = real_node_pod(name, image, ["sh", "-c", script], labels)
    container = pod["spec"]["containers"][0]
    container["readinessProbe"] = {"tcpSocket": {"port": ports[-1]}, "periodSeconds": 1}
    container["ports"] = [{"containerPort": p} for p in ports]
    return pod


def service(name: str, selector: dict[str, str], ports: Iterable[int]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": selector,
            "ports": [{"name": f"p{p}", "port": p, "targetPort": p} for p in ports],
        },
    }


def create_ready(kubectl: KubectlLike, ns: str, *objects: dict[str, Any]) -> dict[str, dict]:
    """Create the objects, wait until each pod among them is Ready; the pods by name."""
    kubectl(
        "apply", "-n", ns, "-f", "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}),
    )  # fmt: skip
    names = [o["metadata"]["name"] for o in objects if o["kind"] == "Pod"]
    kubectl(
        "wait", "-n", ns, "--for=condition=Ready", f"--timeout={READY_TIMEOUT}s",
        *[f"pod/{n}" for n in names],
    )  # fmt: skip
    return {n: kubectl("get", "pod", n, "-n", ns, json_out=True) for n in names}


# Run inside a pod: connect to every "host:port" argument at once and print, as JSON, what
# happened to each. Only the standard library, so any image with python3 can run it.
_PROBE = f"""
import errno, json, socket, sys
from concurrent.futures import ThreadPoolExecutor

def attempt(target):
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host, int(port)), {CONNECT_TIMEOUT}).close()
        return "{OPEN}"
    except socket.gaierror:
        return "{NO_NAME}"
    except ConnectionRefusedError:
        return "{REFUSED}"
    except (TimeoutError, socket.timeout):
        return "{TIMEOUT}"
    except OSError as err:
        if err.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "{UNREACHABLE}"
        return type(err).__name__ + ": " + str(err)

with ThreadPoolExecutor(len(sys.argv) - 1 or 1) as pool:
    print(json.dumps(dict(zip(sys.argv[1:], pool.map(attempt, sys.argv[1:])))))
"""


def probe(
    kubectl: KubectlLike, ns: str, pod: str, targets: Iterable[str], container: str = ""
) -> dict[str, str]:
    """From inside ``pod`` (its ``container``), try a TCP connection to each ``host:port``;
    what happened to each: ``open``, one of ``BLOCKED``, ``no-name`` or an error."""
    where = ["-c", container] if container else []
    argv = ["exec", "-n", ns, pod, *where, "--", "python3", "-c", _PROBE, *targets]
    proc: subprocess.CompletedProcess = kubectl(*argv, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"probing from {ns}/{pod} failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout)
