"""DevPlane installed by its chart on the local cluster's real node, as a site installs it.

- **Images** are pushed to the local registry (hack/registry.sh) and pulled by the node's
  containerd through the chart's registry prefix (``global.imageRegistry``), never loaded
  behind the chart's back. containerd runs in the node's network namespace, so the registry's
  port is relayed onto the node's own loopback (``realnode.expose``): only the node's daemons
  see it, as a site's registry is seen by its nodes.
- **The identity provider and the LLM endpoint are outside the cluster**, reached by address,
  which is how a site's IdP and, often, its GPU servers are: each runs on this machine's
  loopback and is relayed to the node's IP. The browser (on the host) and the hub (a pod) call
  the provider by that one issuer URL; the chart derives the hub's and the workspaces'
  egress rules from the addresses in the URLs, as it would for any external endpoint.
- **The public URL** is the proxy's NodePort at the node's IP: the host reaches it through its
  route to the node, the way a user's browser reaches a NodePort or a load balancer.
- Every DevPlane pod carries the real node's selector and toleration (values), and home
  volumes and the hub's database use the node's ``local`` volumes (``node-local``).

``install()`` does it all and runs ``hack/deploy.sh`` (what ``make deploy`` runs) with the
values it wrote; ``Installed.uninstall()`` takes it away again. ``make demo`` and the
end-to-end tests both run it (``hack/demo.py``).

The processes it starts on this machine (the provider, the LLM stand-in or relay, the node's
relays to them) are recorded in ``<work_dir>/services.json``; the next ``install()`` in that
directory stops whatever a run killed outright (``kill -9``, a closed terminal) left there.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from devplane_dev import devcluster, realnode, vllm_stub
from devplane_dev.images import app_version
from devplane_dev.oidc import ADMINS_GROUP, USERS_GROUP, OidcProvider, OidcUser
from devplane_dev.paths import ROOT
from devplane_dev.procs import ManagedProcess, free_port, process_start_time
from devplane_dev.realnode_config import LOCAL_STORAGE_CLASS, NODE_LABEL, NODE_TAINT

IMAGES = ("hub", "operator", "workspace")
NODE_PORT = 30080
MODELS = ("stub-coder", "stub-chat")
OIDC_SECRET = "devplane-oidc"
AUTOMATION_SECRET = "devplane-automation"
LLM_KEY_SECRET = "devplane-llm-key"
SERVICES_FILE = "services.json"


class InstallError(RuntimeError):
    """The installation could not be made; the message says which step and why."""


def _run(argv: Sequence[str], what: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise InstallError(f"{what} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout


@dataclass(frozen=True)
class LlmEndpoint:
    """The workspaces' model: the stand-in (no ``url``) or an OpenAI-compatible endpoint
    elsewhere, e.g. a GPU server's vLLM, which a relay on this machine makes reachable from
    the node's bridge (it has no route outward)."""

    url: str | None = None
    models: tuple[str, ...] = MODELS
    api_key: str | None = None

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("name at least one model the LLM endpoint serves")
        if self.url is None:
            return
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname:
            # The relay forwards TCP: an https endpoint's certificate would not match the
            # node's address the workspaces call it by.
            raise ValueError(
                f"the LLM endpoint must be an http:// URL such as http://gpu-box:8000/v1, "
                f"not {self.url!r} (the node reaches it through a TCP relay on this machine)"
            )

    @property
    def target(self) -> tuple[str, int]:
        parts = urlsplit(self.url or "")
        return parts.hostname or "", parts.port or 80

    @property
    def path(self) -> str:
        return urlsplit(self.url or "").path.rstrip("/") or "/v1"


def push_images(registry: str, version: str) -> None:
    """podman's images (``make images``) into the registry, under ``devplane/``."""
    for name in IMAGES:
        source = f"localhost/devplane/{name}:{version}"
        target = f"{registry}/devplane/{name}:{version}"
        _run(["podman", "push", "--quiet", "--tls-verify=false", source, target],
             f"pushing {source} to {target}")  # fmt: skip


def on_the_node() -> dict[str, Any]:
    return {
        "nodeSelector": {NODE_LABEL[0]: NODE_LABEL[1]},
        "tolerations": [{**NODE_TAINT, "operator": "Equal"}],
    }


def build_values(
    registry: str,
    public_url: str,
    oidc: OidcProvider,
    llm_base_url: str,
    models: Sequence[str] = MODELS,
    llm_key: bool = False,
) -> dict[str, Any]:
    """The chart's values for this cluster: a pure function of the addresses chosen."""
    node = on_the_node()
    # Always: a developer rebuilds the images under the same tag (the chart's appVersion),
    # and the node must run what was just built, not what it pulled last time.
    always = {"pullPolicy": "Always"}
    return {
        "global": {"imageRegistry": registry},
        "hub": {
            "image": always,
            "publicURL": public_url,
            "namedServers": {"enabled": True},
            # Two profiles, so people get the spawn form; the second starts on the other model.
            "profiles": [
                {"slug": "standard", "display_name": "Standard", "default": True},
                *(
                    [{"slug": "chat", "display_name": "Chat model", "model": models[1]}]
                    if len(models) > 1
                    else []
                ),
            ],
            "oidc": {
                "clientId": oidc.client_id,
                "clientSecret": {"existingSecret": OIDC_SECRET},
                "issuer": oidc.issuer,
                # The test provider sends the groups claim only for this scope, as many do.
                "scopes": ["openid", "profile", "email", "groups"],
                "allowedGroups": [USERS_GROUP],
                "adminGroups": [ADMINS_GROUP],
                "loginService": "the test identity provider",
            },
            "db": {"pvc": {"storageClassName": LOCAL_STORAGE_CLASS}},
            "automationToken": {"existingSecret": AUTOMATION_SECRET},
            **node,
        },
        "proxy": {"image": always, "service": {"type": "NodePort", "nodePort": NODE_PORT}, **node},
        "operator": {"image": always, **node},
        "workspaces": {
            "image": always,
            **node,
            "storage": {"storageClassName": LOCAL_STORAGE_CLASS, "size": "1Gi"},
        },
        "llm": {
            "providers": [
                {
                    "name": "vllm",
                    "baseURL": llm_base_url,
                    "models": list(models),
                    **(
                        {"apiKeySecretRef": {"name": LLM_KEY_SECRET, "key": "api-key"}}
                        if llm_key
                        else {}
                    ),
                }
            ],
            "defaultModel": models[0],
        },
        "networkPolicy": {"oidc": {"ports": [int(oidc.issuer.rsplit(":", 1)[1])]}},
    }


@dataclass
class Installed:
    """A running installation: where to reach it and what it was made with. ``save()`` and
    ``load()`` carry it to another process (the tests read what ``make demo`` installed)."""

    url: str
    namespace: str
    workspace_namespace: str
    release: str
    bin_dir: Path
    models: tuple[str, ...] = MODELS
    api_token: str = field(repr=False, default="")

    def kubectl(self, *args: str) -> str:
        return devcluster.kubectl(self.bin_dir, *args)

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The hub's REST API as automation uses it (the chart's automation token)."""
        headers = {"Authorization": f"token {self.api_token}"}
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers,
                                timeout=30, **kwargs)  # fmt: skip

    def save(self, path: Path) -> None:
        path.touch(mode=0o600)  # it holds the automation token
        path.write_text(json.dumps({**asdict(self), "bin_dir": str(self.bin_dir)}, indent=2))

    @classmethod
    def load(cls, path: Path) -> Installed:
        data = json.loads(path.read_text())
        return cls(**{**data, "bin_dir": Path(data["bin_dir"]), "models": tuple(data["models"])})


class Services:
    """The processes an installation runs on this machine, recorded in ``services.json`` so
    that a run killed outright is cleaned up by the next one (``stop_leftovers``)."""

    def __init__(self, work_dir: Path) -> None:
        self.record = work_dir / SERVICES_FILE
        self.processes: list[ManagedProcess] = []
        self.relays: list[int] = []

    def started(self, process: ManagedProcess) -> ManagedProcess:
        self.processes.append(process)
        self._write()
        return process

    def expose(self, port: int, on_node_ip: bool) -> None:
        self.relays.append(port)
        self._write()
        realnode.expose(port, on_node_ip)

    def _write(self) -> None:
        processes = [
            {"name": p.name, "pid": p.pid, "started": process_start_time(p.pid)}
            for p in self.processes
        ]
        self.record.write_text(json.dumps({"processes": processes, "relays": self.relays}))

    def alive(self) -> list[str]:
        return [p.name for p in self.processes if p.alive()]

    def dead(self) -> list[str]:
        return [p.name for p in self.processes if not p.alive()]

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        for port in self.relays:
            realnode.unexpose(port)
        self.record.unlink(missing_ok=True)


def stop_leftovers(work_dir: Path) -> list[str]:
    """Stop what an earlier run in ``work_dir`` recorded and left running; their names."""
    record = work_dir / SERVICES_FILE
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return []
    stopped = []
    for entry in data.get("processes", []):
        pid = int(entry["pid"])
        # Only that very process (its start time), never a later one that reused the pid.
        if entry.get("started") and process_start_time(pid) == entry["started"]:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # a ManagedProcess leads its own group
            stopped.append(entry["name"])
    if realnode.up_started():
        for port in data.get("relays", []):
            realnode.unexpose(int(port))
    record.unlink(missing_ok=True)
    return stopped


def uninstall(installed: Installed, services: Services, wait: bool = False) -> None:
    """The release, its namespaces (with ``wait``, until they are gone) and the services on
    this machine go."""
    try:
        remove_release(installed.bin_dir, installed.release, installed.namespace, wait)
    finally:
        services.stop()


def remove_release(bin_dir: Path, release: str, namespace: str, wait: bool) -> None:
    """Uninstall ``release`` and delete its namespaces (the workspaces' too), if there."""
    kubeconfig = str(devcluster.STATE / "kubeconfig")
    subprocess.run([str(bin_dir / "helm"), "uninstall", release, "-n", namespace, "--wait",
                    "--ignore-not-found", "--kubeconfig", kubeconfig],
                   capture_output=True)  # fmt: skip
    for ns in (f"{namespace}-workspaces", namespace):
        subprocess.run([str(bin_dir / "kubectl"), "--kubeconfig", kubeconfig, "delete",
                        "namespace", ns, f"--wait={str(wait).lower()}", "--timeout=180s",
                        "--ignore-not-found"], capture_output=True)  # fmt: skip


def install(
    work_dir: Path,
    bin_dir: Path,
    users: Sequence[OidcUser],
    namespace: str = "devplane",
    release: str = "devplane",
    llm: LlmEndpoint = LlmEndpoint(),
) -> tuple[Installed, Services]:
    """Install DevPlane on the running local cluster's real node (module docstring). The
    caller stops the returned services (after ``remove_release``) when it is done."""
    if not realnode.up_started():
        raise InstallError("the local cluster has no real node: start it without "
                           "DEVCLUSTER_REAL_NODE=0")  # fmt: skip
    work_dir.mkdir(parents=True, exist_ok=True)
    stop_leftovers(work_dir)
    # A fresh system every time: what an earlier, interrupted run left would carry its users'
    # servers and database into this one.
    remove_release(bin_dir, release, namespace, wait=True)
    lay = realnode.layout()
    node_ip = lay.node_ip
    version = app_version()

    registry = _run([str(ROOT / "hack" / "registry.sh"), "up"], "starting the registry").strip()
    push_images(registry, version)
    realnode.expose(int(registry.rsplit(":", 1)[1]), on_node_ip=False)

    public_url = f"http://{node_ip}:{NODE_PORT}"
    services = Services(work_dir)
    try:
        oidc_port = free_port()
        oidc = OidcProvider(
            work_dir / "oidc",
            f"{public_url}/hub/oauth_callback",
            users,
            port=oidc_port,
            issuer=f"http://{node_ip}:{oidc_port}",
        )
        services.started(oidc.process)
        services.expose(oidc_port, on_node_ip=True)
        llm_port = free_port()
        # The stand-in wants a key, as a shared GPU server does: only the workspaces' LLM
        # gateways hold it (the Secret below), never a user's shell.
        api_key = llm.api_key or (secrets.token_hex(16) if llm.url is None else None)
        if llm.url is None:
            services.started(vllm_stub.launch(work_dir / "vllm.log", llm_port, llm.models,
                                              api_key=api_key))  # fmt: skip
        else:
            host, port = llm.target
            relay = ["socat", f"TCP-LISTEN:{llm_port},bind=127.0.0.1,fork,reuseaddr",
                     f"TCP:{host}:{port}"]  # fmt: skip
            services.started(ManagedProcess(relay, work_dir / "llm-relay.log", name="llm-relay"))
        services.expose(llm_port, on_node_ip=True)
        installed = Installed(
            url=public_url,
            namespace=namespace,
            workspace_namespace=f"{namespace}-workspaces",
            release=release,
            bin_dir=bin_dir,
            models=llm.models,
            api_token=secrets.token_hex(32),
        )
        # The hub's database and every home volume are `local` volumes of the node.
        realnode.ensure_local_volumes(lay, bin_dir, available=8)
        namespace_manifest = {"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": namespace}}  # fmt: skip
        for obj in (
            namespace_manifest,
            _secret(OIDC_SECRET, namespace, {"client-secret": oidc.client_secret}),
            _secret(AUTOMATION_SECRET, namespace, {"token": installed.api_token}),
        ):
            devcluster.kubectl(bin_dir, "apply", "-f", "-", stdin=json.dumps(obj))
        llm_url = f"http://{node_ip}:{llm_port}{llm.path if llm.url else '/v1'}"
        values = build_values(registry, public_url, oidc, llm_url, llm.models, bool(api_key))
        values_file = work_dir / "values.json"
        values_file.write_text(json.dumps(values, indent=2))
        env = {
            **os.environ,
            "KUBECONFIG": str(devcluster.STATE / "kubeconfig"),
            "VALUES": str(values_file),
            "NAMESPACE": namespace,
            "RELEASE": release,
            # Everything is local: a release not ready in 5 minutes will not be.
            "HELM_ARGS": "--timeout 5m",
        }
        _run([str(ROOT / "hack" / "deploy.sh")], "hack/deploy.sh (helm upgrade --install)", env)
        if api_key:
            # In the workspace namespace, which the chart made; no workspace has started yet.
            key = _secret(LLM_KEY_SECRET, installed.workspace_namespace, {"api-key": api_key})
            devcluster.kubectl(bin_dir, "apply", "-f", "-", stdin=json.dumps(key))
    except BaseException:
        # What reached the cluster goes too: a release half installed would hold the node's
        # NodePort and volumes until the next run.
        remove_release(bin_dir, release, namespace, wait=False)
        services.stop()
        raise
    return installed, services


def _secret(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }
