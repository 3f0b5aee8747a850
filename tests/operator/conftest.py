"""Fixtures for the operator tests: the CRD installed, the real operator as a subprocess.

Thin wrappers over the harness's devplane_dev.operator_process, which other suites, the demo
and the benchmarks use directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from devplane_dev.operator_process import OperatorProcess, install_crd


@pytest.fixture(scope="session")
def crd(kubeconfig: Path, bin_dir: Path) -> None:
    """The Workspace CRD from chart/crds/, applied (idempotently) and Established."""
    install_crd([str(bin_dir / "kubectl"), "--kubeconfig", str(kubeconfig)])


@pytest.fixture
def run_operator(
    crd: None, kubeconfig: Path, tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    """Factory: ``run_operator(namespace, **env)`` starts the operator and waits until ready.

    Each operator gets its own metrics port and log file (shown when a test fails); all are
    stopped at the end of the test.
    """
    started: list[OperatorProcess] = []

    def start(
        *namespaces: str, wait: bool = True, leader_election: bool = False, **env: str
    ) -> OperatorProcess:
        op = OperatorProcess(
            kubeconfig,
            list(namespaces),
            env=env,
            log_path=tmp_path / f"operator-{len(started)}.log",
            leader_election=leader_election,
        ).start()
        started.append(op)
        if wait:
            op.wait_ready()
        return op

    yield start
    for op in started:
        op.stop()


@pytest.fixture
def ws_namespace(make_namespace, run_operator) -> tuple[str, OperatorProcess]:
    """A fresh namespace with an operator watching it."""
    ns = make_namespace("op")
    return ns, run_operator(ns)
