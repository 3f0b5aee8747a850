"""Where the harness ends and the product begins, checked on the checkout (no cluster).

Tests, the demo and the benchmarks import the harness (hack/devplane_dev) as a package; the
product never does, and ships no test helpers.
"""

from __future__ import annotations

import re
import subprocess

from devplane_dev.paths import ROOT

PATH_INSERT = "sys.path" + ".insert("  # spelled apart, so this file does not match itself
PRODUCT = ("devplane_api", "devplane_spawner", "devplane_authproxy", "operator", "hub_config")


def _python_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [p for p in listed if (ROOT / p).exists()]


def test_no_sys_path_insert_outside_conftest_files():
    offenders = [
        p
        for p in _python_files()
        if not p.endswith("conftest.py") and PATH_INSERT in (ROOT / p).read_text()
    ]
    assert offenders == []


def test_the_product_neither_imports_the_harness_nor_holds_test_helpers():
    product = [p for p in _python_files() if p.startswith(PRODUCT)]
    assert product, "no product files found"
    importing = [
        p
        for p in product
        if re.search(r"^\s*(from|import) devplane_dev\b", (ROOT / p).read_text(), re.M)
    ]
    assert importing == []
    assert [p for p in product if p.rsplit("/", 1)[-1] in ("testing.py", "conftest.py")] == []
