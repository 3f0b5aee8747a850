"""hack/build-binaries.sh says what it builds while it builds: a cold `make test` compiles
Kubernetes for many minutes, and go build itself prints nothing until it is done."""

from __future__ import annotations

import re
import subprocess

from devplane_dev.paths import ROOT

SCRIPT = ROOT / "hack" / "build-binaries.sh"


def run_watched(command: str, every: int = 1) -> subprocess.CompletedProcess[str]:
    """The script's own `watched` helper (taken out of the script), around ``command``."""
    text = SCRIPT.read_text()
    helper = re.search(r"^watched\(\) \{.*?^\}\n", text, re.S | re.M)
    assert helper, "build-binaries.sh has no watched() helper"
    script = (
        'set -euo pipefail\nlog() { echo "build-binaries: $*" >&2; }\n'
        f"{helper.group(0)}\nwatched kube-demo {command}\n"
    )
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "BUILD_PROGRESS_EVERY": str(every)},
    )  # fmt: skip


def test_a_long_build_is_said_while_it_runs_and_when_it_is_done():
    done = run_watched("sleep 3.5")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    still = [line for line in lines if "kube-demo: still building" in line]
    assert len(still) >= 2, lines  # one a second here; every 30 s in a real build
    assert still[0].endswith("0 min 1 s so far"), still
    assert re.fullmatch(
        r"build-binaries: kube-demo: built in \d+ s \(cached from now on\)", lines[-1]
    )


def test_a_failed_build_keeps_its_exit_status_and_claims_nothing():
    done = run_watched("bash -c 'exit 3'")
    assert done.returncode == 3
    assert "built in" not in done.stderr


def test_every_build_in_the_script_is_watched():
    text = SCRIPT.read_text()
    # Outside the helpers, no go build runs unwatched (it would be silent for minutes).
    body = text.split("in_dir() {", 1)[1]
    for line in body.splitlines():
        if re.search(r"\bgo (build|mod tidy)\b", line) and not line.lstrip().startswith("#"):
            assert "watched " in line or line.lstrip().startswith(
                ("go_build()", "go_tidy_build()")
            ), line
