"""The pinned kubectl against one cluster: the one way tests and benchmarks call it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

# Namespace labels: Pod Security `restricted` enforced, as production namespaces are; and the
# mark of a test's namespace (left behind only by a test run that was killed).
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
TEST_NAMESPACE = {"devplane.io/test": "true"}


class KubectlError(AssertionError):
    """kubectl failed. An AssertionError, so a test that meets it fails rather than errors."""


class Kubectl:
    """``kubectl("get", "pods", "-n", ns)`` returns stdout; ``check=False`` returns the
    CompletedProcess instead of raising on a non-zero exit; ``json_out=True`` parses -o json.
    ``argv`` is the command itself, for helpers that take one (``install_crd``)."""

    def __init__(self, bin_dir: Path, kubeconfig: Path) -> None:
        self.kubeconfig = str(kubeconfig)
        self.argv = [str(bin_dir / "kubectl"), "--kubeconfig", self.kubeconfig]

    def __call__(
        self, *args: str, stdin: str | None = None, check: bool = True, json_out: bool = False
    ) -> Any:
        argv = [*self.argv, *args, *(["-o", "json"] if json_out else [])]
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True)
        if not check:
            return proc
        if proc.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)} failed: {proc.stderr}")
        return json.loads(proc.stdout) if json_out else proc.stdout

    def create_namespace(self, name: str, labels: dict[str, str]) -> str:
        """Create (or update) namespace ``name`` and wait for its default ServiceAccount,
        which pod admission needs and the controller manager creates a moment later."""
        manifest = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        manifest["metadata"]["labels"] = labels
        self("apply", "-f", "-", stdin=json.dumps(manifest))
        self("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
        return name


def service_account_kubeconfig(
    kubectl: Kubectl, admin_kubeconfig: Path, namespace: str, account: str, out: Path
) -> Path:
    """A kubeconfig at ``out`` that logs in as the new service account ``account`` of
    ``namespace``, which has no rights at all: how a hub or an operator whose RBAC is missing
    meets the API server."""
    kubectl("create", "serviceaccount", account, "-n", namespace)
    token = kubectl("create", "token", account, "-n", namespace).strip()
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]
    out.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [
                    {"name": account, "context": {"cluster": cluster["name"], "user": account}}
                ],
                "current-context": account,
            }
        )
    )
    return out
