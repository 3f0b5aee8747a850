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
values it wrote; ``Installed.uninstall()`` takes it away again.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from devplane_dev import devcluster, realnode, vllm_stub
from devplane_dev.images import app_version
from devplane_dev.oidc import ADMINS_GROUP, USERS_GROUP, OidcProvider, OidcUser
from devplane_dev.paths import ROOT
from devplane_dev.procs import ManagedProcess, free_port
from devplane_dev.realnode_config import LOCAL_STORAGE_CLASS, NODE_LABEL, NODE_TAINT

IMAGES = ("hub", "operator", "workspace")
NODE_PORT = 30080
MODELS = ("stub-coder", "stub-chat")
OIDC_SECRET = "devplane-oidc"
AUTOMATION_SECRET = "devplane-automation"


class InstallError(RuntimeError):
    """The installation could not be made; the message says which step and why."""


def _run(argv: Sequence[str], what: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise InstallError(f"{what} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout


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
    registry: str, public_url: str, oidc: OidcProvider, llm_base_url: str
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
                {"slug": "chat", "display_name": "Chat model", "model": MODELS[1]},
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
            "providers": [{"name": "vllm", "baseURL": llm_base_url, "models": list(MODELS)}],
            "defaultModel": MODELS[0],
        },
        "networkPolicy": {"oidc": {"ports": [int(oidc.issuer.rsplit(":", 1)[1])]}},
    }


@dataclass
class Installed:
    """A running installation: where to reach it and what it was made with."""

    url: str
    namespace: str
    workspace_namespace: str
    release: str
    oidc: OidcProvider
    llm: ManagedProcess
    bin_dir: Path
    api_token: str = field(repr=False, default="")
    users: dict[str, OidcUser] = field(default_factory=dict)

    def kubectl(self, *args: str) -> str:
        return devcluster.kubectl(self.bin_dir, *args)

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The hub's REST API as automation uses it (the chart's automation token)."""
        headers = {"Authorization": f"token {self.api_token}"}
        return requests.request(method, f"{self.url}/hub/api{path}", headers=headers,
                                timeout=30, **kwargs)  # fmt: skip

    def uninstall(self) -> None:
        """The release, its namespaces and the out-of-cluster services go."""
        remove_release(self.bin_dir, self.release, self.namespace, wait=False)
        self.oidc.stop()
        self.llm.stop()


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
) -> Installed:
    """Install DevPlane on the running local cluster's real node (module docstring)."""
    if not realnode.up_started():
        raise InstallError("the local cluster has no real node: start it without "
                           "DEVCLUSTER_REAL_NODE=0")  # fmt: skip
    work_dir.mkdir(parents=True, exist_ok=True)
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
    oidc_port = free_port()
    oidc = OidcProvider(
        work_dir / "oidc",
        f"{public_url}/hub/oauth_callback",
        users,
        port=oidc_port,
        issuer=f"http://{node_ip}:{oidc_port}",
    )
    llm_port = free_port()
    llm = vllm_stub.launch(work_dir / "vllm.log", llm_port, MODELS, api_key=None)
    try:
        realnode.expose(oidc_port, on_node_ip=True)
        realnode.expose(llm_port, on_node_ip=True)
        installed = Installed(
            url=public_url,
            namespace=namespace,
            workspace_namespace=f"{namespace}-workspaces",
            release=release,
            oidc=oidc,
            llm=llm,
            bin_dir=bin_dir,
            api_token=secrets.token_hex(32),
            users={u.username: u for u in users},
        )
        # The hub's database and every home volume are `local` volumes of the node.
        realnode.ensure_local_volumes(lay, bin_dir, available=8)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": OIDC_SECRET, "namespace": namespace},
            "stringData": {"client-secret": oidc.client_secret},
        }
        namespace_manifest = {"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": namespace}}  # fmt: skip
        automation = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": AUTOMATION_SECRET, "namespace": namespace},
            "stringData": {"token": installed.api_token},
        }
        for obj in (namespace_manifest, secret, automation):
            devcluster.kubectl(bin_dir, "apply", "-f", "-", stdin=json.dumps(obj))
        values = build_values(registry, public_url, oidc, f"http://{node_ip}:{llm_port}/v1")
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
    except BaseException:
        oidc.stop()
        llm.stop()
        raise
    return installed
