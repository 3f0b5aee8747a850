"""Fixtures shared by every test: the local Kubernetes control plane and namespaces on it.

Thin wrappers over the development harness (hack/devplane_dev), which the demo and the
benchmarks use the same way.

The control plane is real (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kwok), built from the pins in versions.env by hack/build-binaries.sh. A test that needs it
and cannot get it fails with the reason; nothing here ever skips.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from devplane_dev import devcluster
from devplane_dev.kubectl import RESTRICTED, TEST_NAMESPACE, Kubectl
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``real_node`` need the cluster's real node, which it has unless
    ``DEVCLUSTER_REAL_NODE=0`` says this machine cannot run one (docs/devcluster.md); then
    they are deselected, so the run reports them as not collected rather than as skipped.
    Otherwise they run, and fail when a part of the node is missing."""
    if devcluster.real_node_wanted():
        return
    kept = [item for item in items if item.get_closest_marker("real_node") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    """Path to the admin kubeconfig of a running local control plane.

    Reuses a cluster started with `make devcluster`; otherwise starts one (and leaves it
    running for the next session, so a warm `make test` does not pay the start-up again).
    """
    try:
        path = devcluster.run_cli("up")
    except devcluster.DevclusterError as err:
        pytest.fail(f"the local control plane could not be started: {err}", pytrace=False)
    os.environ["KUBECONFIG"] = str(path)
    return path


@pytest.fixture(scope="session")
def bin_dir() -> Path:
    """Directory of the pinned binaries (kubectl, helm, ...)."""
    proc = subprocess.run(
        [str(ROOT / "hack" / "build-binaries.sh")], capture_output=True, text=True, cwd=ROOT
    )
    if proc.returncode != 0:
        pytest.fail(f"building the pinned binaries failed:\n{proc.stderr[-4000:]}", pytrace=False)
    return Path(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path, bin_dir: Path) -> Kubectl:
    """The pinned kubectl against the local control plane (devplane_dev.kubectl.Kubectl)."""
    return Kubectl(bin_dir, kubeconfig)


@pytest_asyncio.fixture(scope="session")
async def api_client(kubeconfig: Path) -> AsyncIterator[k8s.ApiClient]:
    """A kubernetes_asyncio ApiClient logged in as the cluster admin."""
    configuration = k8s.Configuration()
    await k8s_config.load_kube_config(
        config_file=str(kubeconfig), client_configuration=configuration
    )
    async with k8s.ApiClient(configuration) as api:
        yield api


@pytest.fixture
def make_namespace(kubectl) -> Iterator:
    """Factory for throw-away namespaces, deleted after the test.

    ``make_namespace(restricted=True)`` labels it to enforce Pod Security `restricted`.
    Waits until the namespace's default ServiceAccount exists, since pod admission needs it.
    """
    created: list[str] = []

    def make(prefix: str = "t", restricted: bool = False, labels: dict | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        created.append(name)
        all_labels = TEST_NAMESPACE | (RESTRICTED if restricted else {}) | (labels or {})
        return kubectl.create_namespace(name, all_labels)

    yield make
    for name in created:
        kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def namespace(make_namespace) -> str:
    """A fresh namespace for one test, deleted afterwards."""
    return make_namespace()
