"""What an admin adds to workspace pods: where they run (nodeSelector, tolerations, affinity),
the Secrets their images are pulled with, extra environment variables and extra volumes.

Each comes from the operator's settings (chart ``workspaces.*``, every workspace) and from the
Workspace's spec (a profile's, set by the hub), merged here (docs/workspace-api.md, "Extras"):

- ``nodeSelector``: the spec's keys over the operator's;
- ``tolerations``, ``imagePullSecrets``: both lists;
- ``affinity``: the spec's when it has one, else the operator's;
- ``extraEnv``, ``extraVolumes``: both, the spec's winning on the same name.

Pure functions. What the CRD's schema cannot say is checked here: an env var the pod itself
sets, a mount over the paths the workspace needs, a volume that reaches another user's home
or a workspace's own objects.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devplane_api.extras import (
    VOLUME_PREFIX,
    VOLUME_SOURCES,
    ExtrasError,
    check_env,
    check_pull_secret,
    check_volume,
)


@dataclass(frozen=True)
class Extras:
    """The merged extras of one Workspace's pod."""

    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    affinity: Mapping[str, Any] = field(default_factory=dict)
    image_pull_secrets: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    volumes: tuple[Mapping[str, Any], ...] = ()

    def pod_fields(self) -> dict[str, Any]:
        """The pod spec's scheduling and pull-secret fields (absent when empty)."""
        fields: dict[str, Any] = {}
        if self.node_selector:
            fields["nodeSelector"] = dict(self.node_selector)
        if self.tolerations:
            fields["tolerations"] = [dict(t) for t in self.tolerations]
        if self.affinity:
            fields["affinity"] = dict(self.affinity)
        if self.image_pull_secrets:
            fields["imagePullSecrets"] = [{"name": n} for n in self.image_pull_secrets]
        return fields

    def pod_volumes(self) -> list[dict[str, Any]]:
        volumes = []
        for volume in self.volumes:
            source = next(s for s in VOLUME_SOURCES if s in volume)
            volumes.append({"name": VOLUME_PREFIX + volume["name"], source: dict(volume[source])})
        return volumes

    def mounts(self) -> list[dict[str, Any]]:
        return [
            {
                "name": VOLUME_PREFIX + volume["name"],
                "mountPath": volume["mountPath"],
                "readOnly": bool(volume.get("readOnly", False)),
            }
            for volume in self.volumes
        ]


def merge(defaults: Extras, spec: Mapping[str, Any]) -> Extras:
    """The Workspace's extras: ``spec`` (its scheduling, imagePullSecrets, extraEnv and
    extraVolumes) merged over the operator's ``defaults``. ExtrasError when one is refused."""
    scheduling = spec.get("scheduling") or {}
    env = dict(defaults.env)
    for index, item in enumerate(spec.get("extraEnv") or []):
        item = item if isinstance(item, Mapping) else {}
        check_env(item.get("name"), item.get("value"), f"spec.extraEnv[{index}]")
        env[item["name"]] = item["value"]
    volumes = {v["name"]: v for v in defaults.volumes}
    for index, volume in enumerate(spec.get("extraVolumes") or []):
        checked = check_volume(volume, f"spec.extraVolumes[{index}]")
        volumes[checked["name"]] = checked
    paths = [posixpath.normpath(v["mountPath"]) for v in volumes.values()]
    if len(set(paths)) != len(paths):
        raise ExtrasError("two extra volumes are mounted at the same path")
    pull = list(defaults.image_pull_secrets)
    for index, name in enumerate(spec.get("imagePullSecrets") or []):
        secret = check_pull_secret((name or {}).get("name"), f"spec.imagePullSecrets[{index}]")
        if secret not in pull:
            pull.append(secret)
    return Extras(
        node_selector={**defaults.node_selector, **(scheduling.get("nodeSelector") or {})},
        tolerations=(*defaults.tolerations, *(scheduling.get("tolerations") or [])),
        affinity=scheduling.get("affinity") or defaults.affinity,
        image_pull_secrets=tuple(pull),
        env=env,
        volumes=tuple(volumes.values()),
    )
