"""The oldest Kubernetes DevPlane claims (Chart.yaml kubeVersion; versions.env
COMPAT_KUBERNETES_VERSION): its own API server, built from its Go module, takes the CRD and
refuses bad Workspaces in the same words as the pinned one, takes every object of the chart,
and serves the operator.

It runs bare beside the local cluster (devplane_dev.compat): no scheduler or node, so pods stay
Pending; what is under test is what the API server decides.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import uuid

import pytest
import yaml
from devplane_dev.compat import OldestApiServer, compat_bin_dir
from devplane_dev.devcluster import read_versions
from devplane_dev.kubectl import Kubectl
from devplane_dev.operator_process import OperatorProcess, install_crd
from devplane_dev.paths import ROOT
from devplane_dev.poll import wait_for
from op_helpers import apply, get, workspace
from test_op_validation import INVALID_CREATES, INVALID_UPDATES, create_refused

from devplane_api.v1alpha1 import PLURAL

pytestmark = pytest.mark.cluster
VERSION = read_versions()["COMPAT_KUBERNETES_VERSION"]


@pytest.fixture(scope="module")
def oldest(bin_dir):
    with OldestApiServer(compat_bin_dir() / "kube-apiserver", bin_dir / "etcd") as api:
        yield api


@pytest.fixture(scope="module")
def old_kubectl(oldest, bin_dir) -> Kubectl:
    kubectl = Kubectl(bin_dir, oldest.kubeconfig)
    install_crd(kubectl.argv)
    return kubectl


@pytest.fixture(scope="module")
def old_namespace(old_kubectl) -> str:
    name = f"compat-{uuid.uuid4().hex[:6]}"
    old_kubectl("create", "namespace", name)
    return name


def test_it_is_the_version_the_chart_claims(oldest):
    assert oldest.version() == VERSION
    chart = yaml.safe_load((ROOT / "chart" / "Chart.yaml").read_text())
    oldest_minor = re.fullmatch(r"v1\.(\d+)\.\d+", VERSION).group(1)
    assert chart["kubeVersion"] == f">=1.{oldest_minor}.0-0"


@pytest.mark.parametrize("case", sorted(INVALID_CREATES))
def test_bad_workspaces_are_refused_in_the_same_words(case, old_kubectl, old_namespace):
    stderr, expected = create_refused(old_kubectl, old_namespace, case)
    assert expected in stderr, stderr


def test_update_rules_hold(old_kubectl, old_namespace):
    storage = {"size": "5Gi", "storageClassName": "std"}
    apply(old_kubectl, old_namespace, workspace("ulla", storage=storage))
    for case, (patch, expected) in INVALID_UPDATES.items():
        proc = old_kubectl(
            "patch", PLURAL, "ulla", "-n", old_namespace, "--type=merge",
            "-p", json.dumps(patch), check=False,
        )  # fmt: skip
        assert proc.returncode != 0, f"{case}: accepted by {VERSION}"
        assert expected in proc.stderr, f"{case}: {proc.stderr}"


def render(bin_dir, value_set: str, namespace: str) -> list[dict]:
    """`helm template` as for the oldest version (its kubeVersion check included), with the
    API server's address a render without a cluster must be given (tests/chart)."""
    values = ["--values", str(ROOT / "tests" / "chart" / "no-cluster-values.yaml")]
    if value_set != "defaults":
        values += ["--values", str(ROOT / "chart" / "ci" / f"{value_set}-values.yaml")]
    done = subprocess.run(
        [str(bin_dir / "helm"), "template", "devplane", str(ROOT / "chart"),
         "--namespace", namespace, "--kube-version", VERSION.lstrip("v"), *values],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


@pytest.mark.parametrize("value_set", ["defaults", "airgapped", "z2jh-migration"])
def test_every_chart_object_is_accepted(value_set, bin_dir, old_kubectl):
    """Server-side validation of each object the chart renders, field by field (strict)."""
    release = f"compat-rel-{uuid.uuid4().hex[:6]}"
    docs = render(bin_dir, value_set, release)
    namespaces = {release} | {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    for name in namespaces:
        old_kubectl("create", "namespace", name, check=False)
    listing = {"apiVersion": "v1", "kind": "List", "items": copy.deepcopy(docs)}
    proc = old_kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-",
        stdin=json.dumps(listing), check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_the_operator_works_against_it(oldest, old_kubectl, tmp_path):
    namespace = f"compat-op-{uuid.uuid4().hex[:6]}"
    old_kubectl("create", "namespace", namespace)
    # What the controller-manager (not running here) would make: pods need it to be admitted.
    old_kubectl("create", "serviceaccount", "default", "-n", namespace)
    log_path = tmp_path / "op.log"
    with OperatorProcess(oldest.kubeconfig, [namespace], log_path=log_path) as operator:
        operator.wait_ready()
        apply(old_kubectl, namespace, workspace("olli"))

        def children() -> bool:
            kinds = ("persistentvolumeclaim", "configmap", "service", "networkpolicy", "pod")
            names = ("home-olli", "ws-olli-opencode", "ws-olli", "ws-olli", "ws-olli")
            return all(get(old_kubectl, namespace, k, n) for k, n in zip(kinds, names, strict=True))

        try:
            wait_for("every child of olli's Workspace", children, 60)
        except TimeoutError:
            raise AssertionError(log_path.read_text()[-3000:]) from None

        def reported() -> dict | None:
            ws = get(old_kubectl, namespace, PLURAL, "olli")
            status = ws.get("status") or {}
            return ws if status.get("observedGeneration") == ws["metadata"]["generation"] else None

        ws = wait_for("the operator's status on olli's Workspace", reported, 60)
    # No scheduler here: the pod waits, and the status says so in its own words.
    assert ws["status"]["phase"] in ("Pending", "Starting"), ws["status"]
    log = log_path.read_text()
    assert "Traceback" not in log, log[-4000:]
