"""Issue 14's figures, one definition each: what is measured, its target, and where from.

Each benchmark ``record()``s the figures it measured; ``make bench`` starts with ``reset()``
and ends with ``python bench/figures.py``, which prints every figure of the table beside its
target, in the issue's order. A figure no benchmark recorded in this run is printed as
"not measured", with the reason its benchmark gave, or where it comes from: a miss is never
hidden by leaving a row out.

The records are JSON lines in build/bench/figures.jsonl (the last record of a figure wins).
"""

from __future__ import annotations

import json
import math
import operator
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDS = Path(os.environ.get("DEVPLANE_BENCH_FIGURES", ROOT / "build" / "bench" / "figures.jsonl"))


@dataclass(frozen=True)
class Figure:
    label: str
    unit: str
    target: float | None  # None: the issue asks for the figure, without a target
    better: Callable[[float, float], bool]  # better(value, target): the target is met
    source: str  # the benchmark that measures it

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "(none)"
        sign = {operator.le: "<=", operator.ge: ">=", operator.eq: "="}[self.better]
        return f"{sign} {self.target:g}{self.unit}"


_OPS = "bench/operator_scale.py"
# On a cluster of its own, without the real node (the Makefile's bench-10k says why); `make
# bench` runs it last unless BENCH_10K=0.
_OPS_10K = "bench/operator_scale.py --count 10000 (make bench-10k)"
_SPAWN = "bench/spawn_latency.py"
_SPAWN_REAL = "bench/spawn_latency.py --real-node"
_TERM = "bench/terminal_overhead.py"
FIGURES: dict[str, Figure] = {
    "scale_ratio": Figure(
        "1,000 Workspaces to Ready, DevPlane / cluster floor", "", 1.6, operator.le, _OPS
    ),
    "writes_per_workspace": Figure(
        "API writes per Workspace until Ready, all clients", "", 16, operator.le, _OPS
    ),
    "rss_1000": Figure("operator peak RSS at 1,000 Workspaces", " MiB", 200, operator.le, _OPS),
    "rss_10000": Figure(
        "operator peak RSS at 10,000 Workspaces", " MiB", 400, operator.le, _OPS_10K
    ),
    "resync_writes": Figure(
        "operator writes in a resync of unchanged Workspaces", "", 0, operator.eq, _OPS
    ),
    "resync_writes_10000": Figure(
        "operator writes in a resync of 10,000 unchanged Workspaces", "", 0, operator.eq, _OPS_10K
    ),
    "resync_seconds_10000": Figure(
        "time for a resync of 10,000 Workspaces", " s", None, operator.le, _OPS_10K
    ),
    # The spawn targets hold in the chart's default routing (service): measured with
    # the real node, where Service names resolve. The pod-ip rows are kwok's, kept beside them.
    "spawn_p50_ratio_service": Figure(
        "spawn p50, DevPlane / KubeSpawner, service routing", "", 1.0, operator.le, _SPAWN_REAL
    ),
    "spawn_p95_ratio_service": Figure(
        "spawn p95, DevPlane / KubeSpawner, service routing", "", 1.0, operator.le, _SPAWN_REAL
    ),
    "spawn_p50_ratio_pod-ip": Figure(
        "spawn p50, DevPlane / KubeSpawner, pod-ip routing", "", 1.0, operator.le, _SPAWN
    ),
    "spawn_p95_ratio_pod-ip": Figure(
        "spawn p95, DevPlane / KubeSpawner, pod-ip routing", "", 1.0, operator.le, _SPAWN
    ),
    "spawn_raw_floor_ratio": Figure(
        "spawn p50, DevPlane / raw API floor", "", 1.3, operator.le, _SPAWN
    ),
    "concurrent_devplane": Figure(
        "100 concurrent spawns, DevPlane: share ready", "", 1.0, operator.ge, _SPAWN
    ),
    "concurrent_kubespawner": Figure(
        "100 concurrent spawns, KubeSpawner: share ready", "", 1.0, operator.ge, _SPAWN
    ),
    "concurrent_wall_ratio": Figure(
        "100 concurrent spawns, wall time DevPlane / KubeSpawner", "", None, operator.le, _SPAWN
    ),
    "proxy_echo_p50": Figure(
        "auth proxy's added echo latency, p50", " ms", 0.15, operator.le, _TERM
    ),
    "proxy_echo_p95": Figure(
        "auth proxy's added echo latency, p95", " ms", 0.3, operator.le, _TERM
    ),
    "proxy_throughput": Figure(
        "terminal throughput, auth proxy / CHP alone", "", 0.9, operator.ge, _TERM
    ),
    "warm_start": Figure(
        "local cluster warm start to usable, with the real node",
        " s",
        15,
        operator.le,
        "bench/devcluster_startup.py --real-node",
    ),
}


def reset() -> None:
    RECORDS.unlink(missing_ok=True)


def record(key: str, value: float | None, note: str = "") -> bool:
    """Record figure ``key`` (``None``: not measured, ``note`` says why); True if its
    target is met."""
    figure = FIGURES[key]  # a KeyError here is a typo in a benchmark
    RECORDS.parent.mkdir(parents=True, exist_ok=True)
    with RECORDS.open("a") as out:
        out.write(json.dumps({"key": key, "value": value, "note": note}) + "\n")
    return value is not None and met(figure, value)


def met(figure: Figure, value: float) -> bool:
    """Whether ``value`` meets the figure's target; a figure without a target is only
    reported, and never counts as missed (unless it could not be computed)."""
    if math.isnan(value):
        return False
    if figure.target is None:
        return True
    return figure.better(round(value, 6), figure.target)


def read() -> dict[str, dict]:
    if not RECORDS.exists():
        return {}
    found = {}
    for line in RECORDS.read_text().splitlines():
        item = json.loads(line)
        found[item["key"]] = item
    return found


def table(records: dict[str, dict]) -> tuple[list[str], int, int]:
    """The table's lines, how many figures missed their target, and how many no benchmark of
    this run measured (those are printed with the reason, and never counted as met)."""
    width = max(len(f.label) for f in FIGURES.values())
    lines = [f"{'figure':<{width}}  {'value':>10}  {'target':<10}  result"]
    misses = unmeasured = 0
    for key, figure in FIGURES.items():
        item = records.get(key) or {}
        value = item.get("value")
        if value is None:
            unmeasured += 1
            why = item.get("note") or f"not run ({figure.source})"
            lines.append(f"{figure.label:<{width}}  {'-':>10}  {figure.target_text:<10}  "
                         f"NOT MEASURED: {why}")  # fmt: skip
            continue
        ok = met(figure, value)
        misses += not ok
        note = f"  ({item['note']})" if item.get("note") else ""
        result = "MISSED" if not ok else "reported" if figure.target is None else "met"
        lines.append(f"{figure.label:<{width}}  {value:>10.3g}  {figure.target_text:<10}  "
                     f"{result}{note}")  # fmt: skip
    return lines, misses, unmeasured


def main() -> int:
    """Exit 1 when a measured figure missed its target. Figures no benchmark of this run
    measured (e.g. `make bench BENCH_10K=0`, or a benchmark run alone) are listed as not
    measured, not as misses."""
    lines, misses, unmeasured = table(read())
    print("\n== issue 14's figures, each beside its target (this run)")
    print("\n".join(lines))
    met = len(FIGURES) - misses - unmeasured
    print(
        f"{met} met (or reported, where the issue sets no target), {misses} missed, "
        f"{unmeasured} not measured in this run"
    )
    return 0 if misses == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
