#!/usr/bin/env python3
"""Measure the local control plane: warm start-up time and resident memory at rest.

Starts a private control plane (own state dir and ports, so a running `make devcluster` is
untouched) RUNS times from the cached binaries, and prints for each run the seconds until the
API server is ready and until the cluster is usable (node Ready, default ServiceAccount), then
the resident memory (RSS) of each process after SETTLE seconds at rest.

    .venv/bin/python bench/devcluster_startup.py [--runs 3] [--settle 30]

Cold build time is not measured here (it needs an empty cache): `time hack/build-binaries.sh`
with DEVPLANE_CACHE pointing at an empty directory measures it.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    kib = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
    return kib / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle", type=float, default=30.0)
    args = parser.parse_args()

    bin_dir = subprocess.run(
        [str(ROOT / "hack" / "build-binaries.sh"), "etcd", "kwok", "kubernetes"],
        capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    base_env = {
        **os.environ,
        "DEVCLUSTER_BIN_DIR": bin_dir,
        "DEVCLUSTER_ETCD_PORT": "52379",
        "DEVCLUSTER_ETCD_PEER_PORT": "52380",
        "DEVCLUSTER_APISERVER_PORT": "56443",
        "DEVCLUSTER_KCM_PORT": "50257",
        "DEVCLUSTER_SCHEDULER_PORT": "50259",
        "DEVCLUSTER_KWOK_PORT": "50247",
    }
    api_ready, usable = [], []
    memory: dict[str, float] = {}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**base_env, "DEVCLUSTER_DIR": str(Path(tmp) / "c")}
            t0 = time.monotonic()
            proc = subprocess.run(
                [sys.executable, str(ROOT / "hack" / "devcluster.py"), "up"],
                capture_output=True, text=True, env=env,
            )  # fmt: skip
            total = time.monotonic() - t0
            try:
                if proc.returncode != 0:
                    print(proc.stderr, file=sys.stderr)
                    return 1
                m = re.search(r"API server ready after ([\d.]+)s", proc.stderr)
                api_ready.append(float(m.group(1)))
                usable.append(total)
                print(f"run {run + 1}: API server ready {api_ready[-1]:.1f}s, usable {total:.1f}s")
                if run == args.runs - 1:
                    time.sleep(args.settle)
                    for pidfile in sorted((Path(tmp) / "c" / "pids").glob("*.pid")):
                        memory[pidfile.stem] = rss_mib(int(pidfile.read_text()))
            finally:
                subprocess.run(
                    [sys.executable, str(ROOT / "hack" / "devcluster.py"), "down"],
                    capture_output=True, env=env,
                )  # fmt: skip
    print()
    print(f"warm start, API server ready: median {statistics.median(api_ready):.1f}s "
          f"(max {max(api_ready):.1f}s) over {len(api_ready)} runs")  # fmt: skip
    print(f"warm start, cluster usable:   median {statistics.median(usable):.1f}s "
          f"(max {max(usable):.1f}s); target: healthy in <= 20 s")  # fmt: skip
    print(f"resident memory after {args.settle:.0f}s at rest:")
    for name, mib in memory.items():
        print(f"  {name:25s} {mib:7.1f} MiB")
    print(f"  {'total':25s} {sum(memory.values()):7.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
