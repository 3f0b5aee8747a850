"""checkov over everything the chart renders: no failed check but the justified exceptions.

checkov is pinned and installed in a virtualenv of its own by tests/chart/setup-checkov.sh
(created on first use; `make setup` runs it). The exceptions live, with their reasons, in
tests/chart/checkov-exceptions.yaml and docs/install.md.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from chart_helpers import CHART, ROOT, VALUE_SETS, values_file

SETUP = Path(__file__).with_name("setup-checkov.sh")
EXCEPTIONS = yaml.safe_load(Path(__file__).with_name("checkov-exceptions.yaml").read_text())
INSTALL_DOC = ROOT / "docs" / "install.md"


@pytest.fixture(scope="module")
def checkov() -> str:
    proc = subprocess.run([str(SETUP)], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"installing checkov failed:\n{proc.stderr[-3000:]}", pytrace=False)
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def scan(helm, checkov, tmp_path_factory) -> dict:
    """checkov's JSON report over the defaults and every value set, rendered into one dir."""
    out = tmp_path_factory.mktemp("rendered")
    for value_set in VALUE_SETS:
        result = helm(
            "template", "devplane", str(CHART), "--namespace", "devplane",
            *values_file(value_set),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        (out / f"{value_set}.yaml").write_text(result.stdout)
    proc = subprocess.run(
        [checkov, "-d", str(out), "--framework", "kubernetes", "--output", "json",
         "--compact", "--skip-download"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    # Exit 1 means "some check failed", which the test judges itself; anything else is a crash.
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    return report[0] if isinstance(report, list) else report


def test_scan_covered_every_rendered_object(scan) -> None:
    summary = scan["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= 60, summary
    assert summary["passed"] > 1000, summary
    scanned = {c["resource"] for c in scan["results"]["passed_checks"]}
    for kind in ("Deployment", "Role", "RoleBinding", "ServiceAccount", "Secret", "Ingress"):
        assert any(r.startswith(f"{kind}.") for r in scanned), f"no {kind} was scanned"


def test_no_failed_check_but_the_documented_exceptions(scan) -> None:
    failed = {(c["check_id"], c["resource"]) for c in scan["results"]["failed_checks"]}
    allowed = {(e["check"], r) for e in EXCEPTIONS for r in e["resources"]}
    unexpected = sorted(failed - allowed)
    details = {
        (c["check_id"], c["resource"]): c["check_name"] for c in scan["results"]["failed_checks"]
    }
    assert unexpected == [], "\n".join(f"{c} {r}: {details[(c, r)]}" for c, r in unexpected)
    stale = sorted(allowed - failed)
    assert stale == [], f"exceptions that no longer fail; remove them: {stale}"


def test_every_exception_is_justified_in_the_install_guide() -> None:
    doc = INSTALL_DOC.read_text()
    for entry in EXCEPTIONS:
        assert len(entry["reason"]) > 80, entry["check"]
        assert re.search(rf"\b{entry['check']}\b", doc), f"{entry['check']} not in install.md"
