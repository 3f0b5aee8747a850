"""bench/figures.py: every figure of issue 14's table is printed beside its target, and a
miss or a figure nobody measured counts against the run (it is never left out)."""

from __future__ import annotations

import importlib.util
import sys

import pytest
from devplane_dev.paths import ROOT

# bench/ is a directory of scripts, not a package: load the one under test by its path.
_spec = importlib.util.spec_from_file_location("figures", ROOT / "bench" / "figures.py")
assert _spec is not None and _spec.loader is not None
figures = importlib.util.module_from_spec(_spec)
sys.modules["figures"] = figures  # its dataclasses look their module up there
_spec.loader.exec_module(figures)


@pytest.fixture
def records(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "RECORDS", tmp_path / "figures.jsonl")
    return tmp_path / "figures.jsonl"


def test_met_missed_and_unmeasured_figures_are_all_printed(records):
    assert figures.record("rss_1000", 155.4)
    assert not figures.record("scale_ratio", 3.05)
    assert figures.record("resync_writes", 0)
    assert not figures.record("resync_writes", 2)  # the last record of a figure wins
    assert not figures.record("concurrent_kubespawner", None, "run with --real-node only")
    assert figures.record("proxy_throughput", 0.9)  # the target itself is met

    lines, misses, unmeasured = figures.table(figures.read())

    rows = {line.split("  ")[0].strip(): line for line in lines[1:]}
    assert len(rows) == len(figures.FIGURES)
    assert rows["operator peak RSS at 1,000 Workspaces"].endswith("met")
    assert "MISSED" in rows["1,000 Workspaces to Ready, DevPlane / cluster floor"]
    assert "MISSED" in rows["operator writes in a resync of unchanged Workspaces"]
    assert (
        "NOT MEASURED: run with --real-node only"
        in rows["100 concurrent spawns, KubeSpawner: share ready"]
    )
    assert (
        "NOT MEASURED: not run (bench/terminal_overhead.py)"
        in rows["auth proxy's added echo latency, p50"]
    )
    assert (misses, unmeasured) == (2, len(figures.FIGURES) - 4)
    assert figures.main() == 1


def test_unmeasured_figures_are_listed_but_do_not_fail_the_run(records):
    figures.record("rss_1000", 150)
    figures.record("warm_start", None, "run without --real-node")
    _, misses, unmeasured = figures.table(figures.read())
    assert (misses, unmeasured) == (0, len(figures.FIGURES) - 1)
    assert figures.main() == 0


def test_a_run_that_meets_every_target_passes(records):
    for key, figure in figures.FIGURES.items():
        figures.record(key, 1.0 if figure.target is None else figure.target)
    assert figures.table(figures.read())[1:] == (0, 0)
    assert figures.main() == 0


def test_a_figure_that_is_not_a_number_is_a_miss(records):
    figures.record("rss_1000", float("nan"))
    lines, *_ = figures.table(figures.read())
    assert any("operator peak RSS at 1,000" in line and "MISSED" in line for line in lines)


def test_a_figure_without_a_target_is_reported_never_missed(records):
    assert figures.record("concurrent_wall_ratio", 1.7, "17.0 s / 10.0 s")
    lines, misses, unmeasured = figures.table(figures.read())
    row = next(line for line in lines if line.startswith("100 concurrent spawns, wall time"))
    assert "(none)" in row and "reported  (17.0 s / 10.0 s)" in row
    assert (misses, unmeasured) == (0, len(figures.FIGURES) - 1)
    assert not figures.record("concurrent_wall_ratio", float("nan"))  # not computed: a miss
