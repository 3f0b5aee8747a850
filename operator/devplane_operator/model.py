"""The operator's view of one Workspace: parsed once, validated beyond what the CRD can check.

The CRD's schema and CEL rules reject almost every bad spec at the API server. What is left
here needs the operator's settings or the naming scheme (e.g. a Workspace without ``spec.ai``
when the operator has no default providers). Such a spec cannot fix itself, so it raises
SpecError, which reconcile reports as phase Failed (a permanent error, no retry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from devplane_api import naming
from devplane_api.extras import ExtrasError
from devplane_api.v1alpha1 import API_VERSION, KIND

from .endpoint import Endpoint
from .extras import Extras
from .extras import merge as merge_extras
from .opencode_config import build_opencode_config
from .quantity import parse_quantity
from .settings import Settings


class SpecError(ValueError):
    """The Workspace spec cannot be realised; the message says which field and why."""


class Refused(SpecError):
    """The Workspace references what it may not (policy.py); the message says what and how
    to fix it. Reported with the Ready reason Refused, and its pod is removed."""


@dataclass(frozen=True)
class Workspace:
    """A validated Workspace: identity plus the effective (defaulted) spec."""

    name: str
    namespace: str
    uid: str
    generation: int
    owner: str
    server_name: str
    started: bool
    image: str
    service_prefix: str
    resources: dict[str, dict[str, str]]
    storage_size: str
    storage_class: str
    reclaim_policy: str
    ai: dict[str, Any]
    hub_secret: str
    # spec.gitIdentity: the owner's name and email from the identity provider, or {}.
    git_identity: dict[str, str] = field(default_factory=dict)
    # Scheduling, pull Secrets, extra env and volumes: the operator's merged with the spec's.
    extras: Extras = field(default_factory=Extras)
    # A home volume an older release named (reconcile.Controller._home_volume), else "".
    legacy_home: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def pvc_name(self) -> str:
        return self.legacy_home or naming.pvc_name(self.owner, self.server_name)

    @property
    def child_name(self) -> str:
        return naming.child_name(self.name)

    @property
    def configmap_name(self) -> str:
        return naming.child_name(self.name, "opencode")

    def owner_reference(self) -> dict[str, Any]:
        """The controller reference every owned child carries (GC deletes them with us)."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def default_service_prefix(owner: str, server_name: str) -> str:
    """JupyterHub's default prefix for a server: /user/<name>/ or /user/<name>/<server>/."""
    prefix = f"/user/{quote(owner, safe='')}/"
    if server_name:
        prefix += f"{quote(server_name, safe='')}/"
    return prefix


def _merge_resources(
    defaults: dict[str, dict[str, str]], override: dict[str, Any] | None
) -> dict[str, dict[str, str]]:
    merged = {part: dict(values) for part, values in defaults.items()}
    for part, values in (override or {}).items():
        merged.setdefault(part, {}).update({k: str(v) for k, v in (values or {}).items()})
    return merged


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


def parse_workspace(body: dict[str, Any], settings: Settings) -> Workspace:
    """Validate ``body`` (a Workspace object) against ``settings``; raise SpecError if hopeless."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    owner = spec.get("owner") or ""
    server_name = spec.get("serverName") or ""
    if not owner:
        raise SpecError("spec.owner is empty")
    # Any Workspace name is accepted: its children are named after it. The spawner names
    # Workspaces with devplane_api.naming.workspace_name(owner, serverName), and the home
    # PVC is always named from the owner and server, never from metadata.name, so a Workspace
    # created later for the same user and server finds the same home volume whatever it is
    # called. (Hence: one Workspace per owner and server in a namespace, or they share it.)
    if not meta.get("name"):
        raise SpecError("metadata.name is empty")

    ai = spec.get("ai")
    if not ai:
        if not settings.llm_providers:
            raise SpecError(
                "spec.ai is not set and the operator has no default LLM providers "
                "(DEVPLANE_LLM_PROVIDERS); set spec.ai.providers"
            )
        # networkPolicy is for the egress rules (netpol.py), not for opencode.
        ai = {"providers": [_without(p, "networkPolicy") for p in settings.llm_providers]}
        if settings.llm_default_model:
            ai["defaultModel"] = settings.llm_default_model
    try:
        build_opencode_config(ai)  # the same checks the ConfigMap build will make
    except (ValueError, KeyError) as err:
        raise SpecError(f"spec.ai: {err}") from None
    for index, provider in enumerate(ai.get("providers", [])):
        try:
            Endpoint.of(provider["baseURL"])  # what the egress rules will read
        except ValueError as err:
            raise SpecError(f"spec.ai.providers[{index}].baseURL: {err}") from None

    resources = _merge_resources(settings.workspace_resources, spec.get("resources"))
    for resource, request in resources.get("requests", {}).items():
        limit = resources.get("limits", {}).get(resource)
        if limit is not None and parse_quantity(request) > parse_quantity(limit):
            raise SpecError(
                f"spec.resources.requests.{resource} ({request}) is above the limit {limit} "
                f"(the operator's default); set spec.resources.limits.{resource} too"
            )

    try:
        extras = merge_extras(settings.workspace_extras, spec)
    except ExtrasError as err:
        raise SpecError(str(err)) from None

    storage = spec.get("storage") or {}
    return Workspace(
        name=meta["name"],
        namespace=meta.get("namespace", ""),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation") or 0),
        owner=owner,
        server_name=server_name,
        started=bool(spec.get("started", True)),
        image=spec.get("image") or settings.workspace_image,
        service_prefix=spec.get("servicePrefix") or default_service_prefix(owner, server_name),
        resources=resources,
        storage_size=str(storage.get("size") or settings.storage_size),
        storage_class=storage.get("storageClassName") or settings.storage_class,
        reclaim_policy=storage.get("reclaimPolicy") or "Retain",
        ai=ai,
        hub_secret=(spec.get("hubSecretRef") or {}).get("name", ""),
        git_identity={
            key: str(value)
            for key, value in (spec.get("gitIdentity") or {}).items()
            if key in ("name", "email") and value
        },
        extras=extras,
    )
