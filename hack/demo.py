#!/usr/bin/env python3
"""`make demo`: run the whole of DevPlane on this machine until Ctrl-C.

Brings up the local Kubernetes control plane, the operator, the vLLM stand-in, the OIDC
provider with demo users, configurable-http-proxy and JupyterHub, and the local runner that
starts workspace pods as local processes (devplane_dev/localrunner/stack.py has the details).
Prints the URL and the demo credentials; Ctrl-C (or SIGTERM) stops everything it started.

Settings (environment variables, all optional):
  DEVPLANE_DEMO_PORT            public port of the hub (default 8000)
  DEVPLANE_DEMO_LLM_URL         a real OpenAI-compatible endpoint (.../v1) instead of the stand-in
  DEVPLANE_DEMO_LLM_API_KEY     its API key
  DEVPLANE_DEMO_LLM_MODEL       the model to use there (required with DEVPLANE_DEMO_LLM_URL)
  DEVPLANE_DEMO_NAMESPACE       workspace namespace (default devplane-demo)
  DEVPLANE_DEMO_STATE           state directory (default .devcluster/demo)
  DEVPLANE_DEMO_{PROXY_API,HUB_API,OIDC,LLM}_PORT   the other ports (8001, 8081, 9000, 9100)

The control plane keeps running after the demo stops (`make devcluster-down` removes it),
so the next `make demo` starts in seconds and finds the workspaces and home volumes again.
"""

from __future__ import annotations

import signal
import sys
import threading

from devplane_dev.localrunner.stack import DemoConfig, DemoStack
from devplane_dev.procs import StartError


def banner(stack: DemoStack) -> str:
    cfg = stack.config
    width = max(len(u.username) for u in cfg.users)
    users = "\n".join(
        f"    {u.username:<{width}}  password {u.password}{'   (admin)' if u.admin else ''}"
        for u in cfg.users
    )
    llm = (
        f"{cfg.llm_base_url} model {cfg.model}"
        if cfg.llm_url
        else f"the vLLM stand-in at {cfg.llm_base_url} (model {cfg.model})"
    )
    return f"""
DevPlane is running (ready after {stack.ready_after:.0f}s).

  Open        {cfg.url}/
  Sign in as (on the OIDC provider's login page):
{users}
  Admin panel {cfg.url}/hub/admin
  REST API    {cfg.url}/hub/api   token: {cfg.api_token}
              (try: DEVPLANE_HUB_URL={cfg.url} DEVPLANE_API_TOKEN={cfg.api_token} \\
                    .venv/bin/python examples/rest_workspace.py demo-user)
  AI model    {llm}
  Logs        {stack.logs}/ (hub, proxy, operator, oidc, vllm-stub, local-runner)
              workspace pods: {stack.runner_state}/logs/

Press Ctrl-C to stop everything.
"""


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # While starting, Ctrl-C/SIGTERM abort the start (DemoStack.start stops what it started).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    stack = DemoStack(DemoConfig.from_env())
    print("Starting DevPlane (first run builds the control plane; later runs take seconds)...")
    try:
        stack.start()
    except StartError as err:
        print(f"\nThe demo could not start: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted; everything started so far has been stopped.", file=sys.stderr)
        return 130
    # Running: the handlers only set a flag, and the main thread stops everything in order.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(banner(stack), flush=True)
    status = 0
    while not stop.wait(2.0):
        dead = stack.dead_components()
        if dead:
            names = ", ".join(dead)
            print(f"\n{names} stopped unexpectedly; logs in {stack.logs}/", file=sys.stderr)
            status = 1
            break
    print("\nStopping DevPlane...", flush=True)
    left = stack.stop()
    if left:
        print(f"processes still running after stop: {left}", file=sys.stderr)
        return 1
    print("Stopped; nothing of the demo is left running (the control plane stays up).")
    return status


if __name__ == "__main__":
    sys.exit(main())
