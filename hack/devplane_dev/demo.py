"""`make demo`: DevPlane installed by its chart on the local cluster's real node, for people.

What it installs is ``devplane_dev.installed`` (the end-to-end tests' system too): the chart's
hub, proxy and operator pods, and each user's workspace as a real pod from DevPlane's images,
running as uid 1000 under the NetworkPolicies kube-router enforces. This module holds what is
the demo's own: its users, its settings (environment variables) and its banner.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devplane_dev.installed import MODELS, Installed, LlmEndpoint
from devplane_dev.oidc import ADMINS_GROUP, USERS_GROUP, OidcUser
from devplane_dev.paths import ROOT

USERS = (
    OidcUser("alice", "alice-demo"),
    OidcUser("bob", "bob-demo"),
    OidcUser("admin", "admin-demo", (USERS_GROUP, ADMINS_GROUP)),
)
DEFAULT_NAMESPACE = "devplane"
DEFAULT_STATE = ROOT / ".devcluster" / "demo"
# Settings of the process-runner demo that have no meaning on the real node: the hub is the
# proxy's NodePort at the node's address, and every service has a port of its own choosing.
RETIRED = (
    "DEVPLANE_DEMO_PORT",
    "DEVPLANE_DEMO_PROXY_API_PORT",
    "DEVPLANE_DEMO_HUB_API_PORT",
    "DEVPLANE_DEMO_OIDC_PORT",
    "DEVPLANE_DEMO_LLM_PORT",
)


class SettingsError(ValueError):
    """A demo setting is wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class DemoSettings:
    namespace: str
    state: Path
    llm: LlmEndpoint

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> DemoSettings:
        retired = [name for name in RETIRED if env.get(name)]
        if retired:
            raise SettingsError(
                f"{', '.join(retired)} no longer apply: the demo runs on the cluster's real node "
                "and prints the address to open. Unset them."
            )
        url = env.get("DEVPLANE_DEMO_LLM_URL") or None
        names = [m.strip() for m in env.get("DEVPLANE_DEMO_LLM_MODEL", "").split(",") if m.strip()]
        if url and not names:
            raise SettingsError(
                "DEVPLANE_DEMO_LLM_URL needs DEVPLANE_DEMO_LLM_MODEL: the model name(s) that "
                "endpoint serves, comma-separated (the first is the default)"
            )
        if names and not url:
            raise SettingsError(
                "DEVPLANE_DEMO_LLM_MODEL applies to DEVPLANE_DEMO_LLM_URL only; the stand-in "
                f"serves {', '.join(MODELS)}. Set the URL or unset the model."
            )
        try:
            llm = LlmEndpoint(
                url=url,
                models=tuple(names) if url else MODELS,
                api_key=env.get("DEVPLANE_DEMO_LLM_API_KEY") or None,
            )
        except ValueError as err:
            raise SettingsError(f"DEVPLANE_DEMO_LLM_URL: {err}") from None
        return cls(
            namespace=env.get("DEVPLANE_DEMO_NAMESPACE") or DEFAULT_NAMESPACE,
            state=Path(env.get("DEVPLANE_DEMO_STATE") or DEFAULT_STATE),
            llm=llm,
        )


def banner(installed: Installed, settings: DemoSettings, ready_after: float) -> str:
    width = max(len(u.username) for u in USERS)
    users = "\n".join(
        f"    {u.username:<{width}}  password {u.password}"
        f"{'   (admin)' if ADMINS_GROUP in u.groups else ''}"
        for u in USERS
    )
    models = ", ".join(settings.llm.models)
    llm = (
        f"{settings.llm.url} ({models}), relayed to the node"
        if settings.llm.url
        else f"the vLLM stand-in ({models})"
    )
    ws = installed.workspace_namespace
    return f"""
DevPlane is running on the cluster's real node (ready after {ready_after:.0f}s).

  Open        {installed.url}/
  Sign in as (on the OIDC provider's login page):
{users}
  Admin panel {installed.url}/hub/admin
  REST API    {installed.url}/hub/api   token: {installed.api_token}
              (try: DEVPLANE_HUB_URL={installed.url} DEVPLANE_API_TOKEN={installed.api_token} \\
                    .venv/bin/python examples/rest_workspace.py dana)
  AI model    {llm}
  Pods        kubectl --kubeconfig .devcluster/kubeconfig get pods -n {installed.namespace}
              (workspaces: -n {ws})
  Logs        {settings.state}/ (oidc, vllm), and kubectl logs for the pods

Press Ctrl-C to stop: the release, its namespaces and home volumes go; the cluster stays.
"""
