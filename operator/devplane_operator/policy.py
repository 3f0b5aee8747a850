"""What a Workspace may reference: its own hub Secret, allow-listed API-key Secrets, and images
from the allowed registries (docs/operator.md, "What a Workspace may reference").

Whoever can write a Workspace chooses these references, and the pod hands what they name to
its containers: the hub Secret to the auth proxy, an API key to the user's shell, the image to
run as the user's container. So the operator checks each one against what it knows to be this
Workspace's own, or what the admin allowed, before a pod is built. Pure functions; each
refusal says what is wrong and how to fix it.
"""

from __future__ import annotations

from typing import Any

from devplane_api import naming
from devplane_api.v1alpha1 import API_VERSION, KIND

from .endpoint import Endpoint
from .model import Refused, Workspace
from .settings import Settings


def check_spec(ws: Workspace, settings: Settings) -> None:
    """Refuse a spec that names another hub Secret, an API-key Secret not on the allow-list,
    or an image from elsewhere."""
    own = naming.child_name(ws.name, "hub")
    if ws.hub_secret != own:
        raise Refused(
            f"spec.hubSecretRef.name is {ws.hub_secret!r}, but a Workspace may use only its own "
            f"hub Secret, {own!r}; set spec.hubSecretRef.name to {own!r} (the hub does so when "
            "it starts the server)"
        )
    allowed = settings.allowed_api_key_secrets
    for index, provider in enumerate(ws.ai.get("providers", [])):
        _check_endpoint(ws, index, Endpoint.of(provider["baseURL"]))
        name = (provider.get("apiKeySecretRef") or {}).get("name")
        if name and name not in allowed:
            offered = ", ".join(sorted(allowed)) or "none"
            raise Refused(
                f"spec.ai.providers[{index}].apiKeySecretRef names the Secret {name!r}, which is "
                f"not an allowed API-key Secret (allowed: {offered}); use one of those, or ask "
                "the admin to add it to DEVPLANE_API_KEY_SECRETS (chart: llm.apiKeySecrets)"
            )
    if not settings.allows_image(ws.image):
        raise Refused(
            f"the image {ws.image!r} is not from an allowed registry "
            f"({', '.join(settings.allowed_image_registries)}); use an image from one of them, "
            "or ask the admin to add its registry to DEVPLANE_ALLOWED_IMAGE_REGISTRIES "
            "(chart: workspaces.allowedImageRegistries)"
        )


def _check_endpoint(ws: Workspace, index: int, endpoint: Endpoint) -> None:
    """Refuse an LLM endpoint in the workspace namespace itself: egress there would reach
    other users' workspace pods (netpol.py never opens it)."""
    if endpoint.namespace == "":
        where = f"{endpoint.host!r} is a bare name, which resolves in the workspace namespace"
    elif endpoint.namespace == ws.namespace:
        where = f"{endpoint.host!r} is in the workspace namespace {ws.namespace}"
    else:
        return
    raise Refused(
        f"spec.ai.providers[{index}].baseURL: {where}, which workspaces may not reach; name "
        "the LLM's Service in its own namespace, <service>.<namespace>.svc"
    )


def check_hub_secret(ws: Workspace, secret: dict[str, Any] | None) -> None:
    """Refuse a hub Secret that this Workspace does not own.

    ``secret`` is the Secret's metadata (its data is never read), or None when it does not
    exist yet: the spawner writes it just after the Workspace, and the kubelet starts the
    containers only once it exists. Only whoever may write Secrets could then create it
    under this name, and they could read any Secret anyway.
    """
    if secret is None:
        return
    refs = (secret.get("metadata") or {}).get("ownerReferences") or []
    if any(
        r.get("uid") == ws.uid and r.get("kind") == KIND and r.get("apiVersion") == API_VERSION
        for r in refs
    ):
        return
    raise Refused(
        f"the hub Secret {ws.hub_secret!r} does not belong to this Workspace: it has no "
        f"ownerReference to Workspace {ws.name!r} (uid {ws.uid}), as the hub writes it; delete "
        "the Secret and start the server again from the hub, which writes it afresh"
    )
