#!/usr/bin/env python3
"""`make demo`: DevPlane installed by its chart on the local cluster's real node, until Ctrl-C.

Starts the local cluster with its real node (or reuses it), pushes the images `make images`
built to the local registry, starts the OIDC provider with demo users and the vLLM stand-in
on this machine, installs the chart (hack/deploy.sh, as `make deploy` does) and prints the
address to open and the demo credentials. Every workspace is a real pod from the workspace
image: uid 1000, read-only root, NetworkPolicies enforced (docs/demo.md).

Ctrl-C (or SIGTERM) uninstalls the release, deletes its namespaces (the workspaces and their
home volumes with them) and stops the provider and the stand-in; the cluster stays up, so the
next `make demo` starts in well under a minute. A run killed outright is cleaned up by the next.

Settings (environment variables, all optional):
  DEVPLANE_DEMO_LLM_URL         an OpenAI-compatible http endpoint (.../v1) instead of the
                                stand-in; a relay on this machine makes it reachable from the node
  DEVPLANE_DEMO_LLM_MODEL       the model name(s) it serves, comma-separated (required with the URL)
  DEVPLANE_DEMO_LLM_API_KEY     its API key (a Secret in the workspace namespace)
  DEVPLANE_DEMO_NAMESPACE       the release namespace (default devplane; workspaces in
                                <namespace>-workspaces)
  DEVPLANE_DEMO_STATE           state directory (default .devcluster/demo)
"""

from __future__ import annotations

import signal
import sys
import threading
import time

from devplane_dev import devcluster
from devplane_dev.demo import USERS, DemoSettings, SettingsError, banner
from devplane_dev.installed import InstallError, install, uninstall
from devplane_dev.procs import StartError


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    try:
        settings = DemoSettings.from_env()
    except SettingsError as err:
        print(f"make demo: {err}", file=sys.stderr)
        return 2
    # While starting, Ctrl-C/SIGTERM abort the start (install() stops what it started).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    started = time.monotonic()
    print("Starting DevPlane on the local cluster's real node...", flush=True)
    try:
        kubeconfig = devcluster.run_cli("up", progress=True)
        print(f"Cluster up ({kubeconfig}); installing the chart...", flush=True)
        installed, services = install(
            settings.state,
            devcluster.binary_dir(),
            USERS,
            namespace=settings.namespace,
            llm=settings.llm,
        )
    except (devcluster.DevclusterError, InstallError, StartError) as err:
        print(f"\nThe demo could not start: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted; what had started has been stopped.", file=sys.stderr)
        return 130
    installed.save(settings.state / "installed.json")
    # Running: the handlers only set a flag, and the main thread stops everything in order.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(banner(installed, settings, time.monotonic() - started), flush=True)
    status = 0
    while not stop.wait(2.0):
        dead = services.dead()
        if dead:
            print(f"\n{', '.join(dead)} stopped unexpectedly; logs in {settings.state}/",
                  file=sys.stderr)  # fmt: skip
            status = 1
            break
    print("\nStopping DevPlane (uninstalling the release and deleting its namespaces)...",
          flush=True)  # fmt: skip
    # A second Ctrl-C while stopping must not leave half of it behind.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    uninstall(installed, services, wait=True)
    (settings.state / "installed.json").unlink(missing_ok=True)
    left = [
        ns
        for ns in (installed.namespace, installed.workspace_namespace)
        if devcluster.kubectl(installed.bin_dir, "get", "namespace", ns, "--ignore-not-found")
    ]
    if left or services.alive():
        print(f"still there after stop: {left + services.alive()}", file=sys.stderr)
        return 1
    print("Stopped; nothing of the demo is left (the cluster stays up: make devcluster-down).")
    return status


if __name__ == "__main__":
    sys.exit(main())
