"""Fixtures for the end-to-end tests: the local runner as a subprocess, the whole demo stack
(exactly what `make demo` runs), and a headless chromium driven by Playwright."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# hack/ is not a package: make `localrunner` importable and this directory's helpers too.
sys.path.insert(0, str(ROOT / "hack"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
