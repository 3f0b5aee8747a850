"""Fixtures for the Helm chart tests: the pinned helm, rendering, and real installs.

Every helm call uses the helm built from versions.env (the `bin_dir` fixture builds it when it
is missing). Installs go to throw-away namespaces on the local control plane, one pair per
release (release namespace + workspace namespace), and are removed afterwards. The CRD is
shared with the other tests and is never deleted.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chart_helpers import (
    ADMIN_MADE_NAMESPACE,
    CHART,
    KUBE_VERSION,
    NO_CLUSTER_VALUES,
    ROOT,
    HelmResult,
    Release,
    api_server_values,
    make_test_namespace,
    uncounted,
    values_file,
)
from devplane_dev.poll import wait_for


@pytest.fixture(scope="session")
def helm(bin_dir: Path):
    """Run the pinned helm: ``helm("template", ...)`` -> HelmResult (never raises).

    `template` and `lint` render without a cluster and would assume helm's built-in default
    Kubernetes version (v1.20 unless helm was linked with the real one), which the chart's
    kubeVersion constraint refuses; they get the version the project runs instead. Nor can
    they look up the API server's address, which the chart's NetworkPolicies need: they get
    NO_CLUSTER_VALUES first, so that a value set (or a test's --set) still decides.
    """
    binary = bin_dir / "helm"
    if not binary.exists():
        pytest.fail(f"{binary} is missing: hack/build-binaries.sh helm did not build it")

    def run(*args: str, kubeconfig: Path | None = None, timeout: float = 300) -> HelmResult:
        argv = [str(binary), *args]
        if args and args[0] in ("template", "lint"):
            argv[2:2] = ["--values", str(NO_CLUSTER_VALUES)]
            if "--kube-version" not in args:
                argv += ["--kube-version", KUBE_VERSION]
        if kubeconfig is not None:
            argv += ["--kubeconfig", str(kubeconfig)]
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
        return HelmResult(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture(scope="session")
def render(helm):
    """``render(value_set, *extra_args, namespace="devplane")`` -> parsed manifests.

    Fails the test with helm's message when rendering fails. Results are cached: several
    tests read the same rendering.
    """
    cache: dict[tuple, list[dict[str, Any]]] = {}

    def run(value_set: str, *extra: str, namespace: str = "devplane", crds: bool = False):
        key = (value_set, extra, namespace, crds)
        if key not in cache:
            args = ["template", "devplane", str(CHART), "--namespace", namespace]
            args += values_file(value_set) + list(extra)
            if crds:
                args.append("--include-crds")
            result = helm(*args)
            if result.returncode != 0:
                pytest.fail(f"helm template ({value_set}) failed:\n{result.stderr}")
            cache[key] = result.docs
        return cache[key]

    return run


@pytest.fixture(scope="session")
def install(helm, kubectl, kubeconfig: Path, tmp_path_factory) -> Iterator:
    """``install(value_set, *extra_args)`` -> Release, installed with `helm install --wait`.

    The release namespace enforces PodSecurity `restricted` (like the workspace namespace the
    chart makes), so every chart pod must be admitted under it. Each release gets fresh
    namespaces; a value set installed without extra arguments is installed once per session
    and shared (installs are the slow part). Everything is uninstalled and deleted at the end.
    The local API server listens on loopback, which it does not publish as an endpoint for the
    chart to look up: its address is given, before the value set's own values.
    """
    releases: list[Release] = []
    shared: dict[str, Release] = {}
    api_server = tmp_path_factory.mktemp("values") / "api-server.yaml"
    api_server.write_text(json.dumps(api_server_values(kubeconfig)))

    def run(value_set: str, *extra: str) -> Release:
        if not extra and value_set in shared:
            return shared[value_set]
        suffix = uuid.uuid4().hex[:6]
        rel = Release(
            name=f"r{suffix}",
            namespace=f"chart-{suffix}",
            workspace_namespace=f"chart-{suffix}-ws",
            value_set=value_set,
        )
        make_test_namespace(kubectl, rel.namespace)
        if value_set in ADMIN_MADE_NAMESPACE:
            make_test_namespace(kubectl, rel.workspace_namespace)
        releases.append(rel)
        result = helm(
            "install", rel.name, str(CHART),
            "--namespace", rel.namespace,
            "--set", f"workspaces.namespace.name={rel.workspace_namespace}",
            "--values", str(api_server), *values_file(value_set), *extra,
            "--wait", "--timeout", "300s",
            kubeconfig=kubeconfig,
        )  # fmt: skip
        if result.returncode != 0:
            events = kubectl("get", "events", "-A", "--field-selector", "type=Warning", check=False)
            pytest.fail(
                f"helm install ({value_set}) failed:\n{result.stderr}\n"
                f"warning events:\n{getattr(events, 'stdout', events)[-3000:]}"
            )
        # `helm --wait` does not wait for a ResourceQuota's first status, and until the quota
        # controller writes it the API server refuses every object the quota counts ("status
        # unknown for quota"): a Workspace created at once was refused in a clean run.
        try:
            namespaces = (rel.namespace, rel.workspace_namespace)
            wait_for("the release's quotas to count",
                     lambda: not uncounted(kubectl, namespaces), 120)  # fmt: skip
        except TimeoutError:
            pytest.fail(f"quotas still not counting: {uncounted(kubectl, namespaces)}",
                        pytrace=False)  # fmt: skip
        got = helm("get", "manifest", rel.name, "-n", rel.namespace, kubeconfig=kubeconfig)
        rel.manifest = got.docs
        rel.notes = result.stdout
        if not extra:
            shared[value_set] = rel
        return rel

    yield run
    # Deleting the two namespaces removes every object of a release (the chart makes nothing
    # cluster-wide but the workspace Namespace, and Helm keeps its release records in the
    # release namespace); test_chart_scripts.py exercises `helm uninstall` itself.
    for rel in releases:
        for ns in (rel.workspace_namespace, rel.namespace):
            kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
