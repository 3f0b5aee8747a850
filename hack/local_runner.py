#!/usr/bin/env python3
"""Play the kubelet for DevPlane workspace pods on the local control plane.

    .venv/bin/python hack/local_runner.py --namespace devplane-demo [--namespace other ...]

kwok marks pods Running and gives them an IP in 127.20.0.0/16, but runs nothing. This runner
watches Pods labelled `app.kubernetes.io/managed-by: devplane` and starts each one's containers
as local processes bound to the pod's IP, with the pod's environment and mounts
(devplane_dev/localrunner/podspec.py says how images, volumes and the network are emulated).
It stops a pod's processes when the pod goes away or is replaced, and all of them on SIGINT
or SIGTERM.

Logs: <state-dir>/logs/<namespace>/<pod>-<uid>/<container>.log; the running pods, their PIDs,
mounts and log files: <state-dir>/pods.json.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from devplane_dev.localrunner.podspec import Toolchain
from devplane_dev.localrunner.runs import RUN_MARKER_ENV
from devplane_dev.localrunner.supervisor import make_tool_dir, stop_stale, write_state
from devplane_dev.localrunner.watcher import Runner, make_api
from devplane_dev.paths import ROOT


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", type=Path, default=ROOT / ".devcluster" / "kubeconfig")
    parser.add_argument(
        "--namespace", "-n", action="append", required=True, help="namespace to watch (repeatable)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=ROOT / ".devcluster" / "localrunner",
        help="logs, pods.json and the tool directory",
    )
    parser.add_argument(
        "--volume-root",
        type=Path,
        default=ROOT / ".devcluster" / "volumes",
        help="home volumes whose PV has no hostPath live in <volume-root>/<pv-name>",
    )
    return parser.parse_args(argv)


async def amain(args: argparse.Namespace) -> None:
    venv = Path(sys.prefix)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    stop_stale(args.state_dir / "pods.json")
    write_state(args.state_dir / "pods.json", {})  # nothing of ours runs yet
    tools = Toolchain(
        repo=ROOT,
        python=venv / "bin" / "python",
        tool_dir=make_tool_dir(ROOT, venv, args.state_dir / "bin"),
        extra_env={k: v for k, v in os.environ.items() if k == RUN_MARKER_ENV},
    )
    api = await make_api(args.kubeconfig)
    runner = Runner(api, args.namespace, tools, args.state_dir, args.volume_root)
    task = asyncio.create_task(runner.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    logging.getLogger("localrunner").info(
        "watching pods in %s (pid %d)", ", ".join(args.namespace), os.getpid()
    )
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        await api.close()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s local-runner %(levelname)s %(message)s"
    )
    asyncio.run(amain(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
