"""CPU seconds used by the local control plane's processes (and any others) over a run.

Read from /proc/PID/stat (utime + stime of the process and its reaped children), so it costs
nothing while the benchmark runs. Tells where a run's time went on a 2-core machine: a
component near ``wall x cores`` is the bottleneck, one far below it is waiting.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("DEVCLUSTER_DIR", ROOT / ".devcluster"))
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# The real node's daemons, when the cluster has one: they watch Services, EndpointSlices and
# NetworkPolicies cluster-wide (kube-proxy, kube-router) even for pods on other nodes.
NODE_COMPONENTS = ("kubelet", "containerd", "kube-proxy", "kube-router")
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # fields[0] is field 3 (state): utime, stime, cutime, cstime are fields 14-17.
    return sum(int(v) for v in fields[11:15]) / TICK


def cluster_pids() -> dict[str, int]:
    pids = {}
    for label, pidfile in [
        *((name, STATE / "pids" / f"{name}.pid") for name in COMPONENTS),
        *((f"node/{name}", STATE / "node" / "pids" / f"{name}.pid") for name in NODE_COMPONENTS),
    ]:
        try:
            pids[label] = int(pidfile.read_text())
        except (OSError, ValueError):
            continue
    return pids


class CpuUsage:
    """``start()`` then ``stop()``; ``report()`` says who used how much CPU in between."""

    def __init__(self, extra: dict[str, int] | None = None) -> None:
        self.pids = {**cluster_pids(), **(extra or {})}
        self.before: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> CpuUsage:
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self._machine_before = _machine_busy()
        return self

    def stop(self) -> dict[str, float]:
        # Call it while every process still runs: an exited one reads as 0.
        self.used = {name: cpu_seconds(pid) - self.before[name] for name, pid in self.pids.items()}
        self.machine = _machine_busy() - self._machine_before
        return self.used

    def report(self, wall: float) -> str:
        cores = os.cpu_count() or 1
        parts = ", ".join(
            f"{name} {seconds:.0f}"
            for name, seconds in sorted(self.used.items(), key=lambda i: -i[1])
        )
        return (
            f"CPU seconds over {wall:.0f} s wall ({cores} cores = {wall * cores:.0f} available): "
            f"{parts}; whole machine busy {self.machine:.0f}"
        )


def _machine_busy() -> float:
    """Busy CPU seconds of the whole machine (every process, ours or not) since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    # user nice system idle iowait irq softirq steal: everything but idle and iowait.
    values = [int(v) for v in fields[:8]]
    return (sum(values) - values[3] - values[4]) / TICK
