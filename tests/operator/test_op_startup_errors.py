"""An operator that cannot do its work says why and exits, instead of a stack trace or
silence (docs/troubleshooting.md quotes these lines)."""

from __future__ import annotations

import pytest
from devplane_dev.kubectl import service_account_kubeconfig
from devplane_dev.operator_process import OperatorProcess
from devplane_operator.kube import KubeError
from devplane_operator.reconcile import Controller, StartupError

pytestmark = pytest.mark.cluster


def test_an_operator_without_rights_exits_saying_what_it_needs(
    kubeconfig, kubectl, make_namespace, tmp_path
):
    namespace = make_namespace("opr")
    config = service_account_kubeconfig(kubectl, kubeconfig, namespace, "op", tmp_path / "kc")
    operator = OperatorProcess(config, [namespace], log_path=tmp_path / "operator.log").start()
    try:
        assert operator.proc.wait(timeout=60) == 1
    finally:
        operator.stop()
    log = (tmp_path / "operator.log").read_text()
    assert f"cannot start: not allowed to list workspaces in namespace {namespace}" in log, log
    assert "needs the chart's operator Role in every namespace it watches" in log
    assert "Traceback" not in log


class NoSuchType:
    """The API server's answer to a LIST of a type it does not serve (no CRD)."""

    async def list(self, kind, namespace, selector=""):
        raise KubeError(404, "NotFound", "the server could not find the requested resource")


async def test_a_missing_crd_is_named_when_the_operator_starts():
    controller = Controller.__new__(Controller)
    controller.kube = NoSuchType()
    with pytest.raises(StartupError, match=r"the CRD workspaces\.devplane\.io is not installed"):
        await controller._list("Workspace", "ws")
