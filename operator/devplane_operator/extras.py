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

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Volume sources a workspace may mount: those Pod Security `restricted` admits that carry no
# credentials of their own (no secret: the namespace holds other users' hub Secrets).
VOLUME_SOURCES = ("configMap", "persistentVolumeClaim", "emptyDir")
# Where nothing may be mounted: the paths the workspace's own volumes and files live at.
_RESERVED_MOUNTS = ("/home/dev", "/tmp", "/run/devplane", "/etc/opencode", "/etc/devplane")
# Objects of the workspaces themselves: ws-<workspace>[-...] and home-<workspace>.
_OWN_PREFIXES = ("ws-", "home-")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
# The pod's volumes are named by the builder (home, tmp, run, ...); extra ones get this prefix.
VOLUME_PREFIX = "extra-"
# Environment the workspace container gets from DevPlane (builders._workspace_env; a test
# keeps the two in step): an extra may not replace it. Its settings say how to change it.
RESERVED_ENV = frozenset(
    {
        "HOME", "USER", "SHELL", "npm_config_offline", "npm_config_registry", "PIP_INDEX_URL",
        "PIP_NO_INDEX", "PIP_TRUSTED_HOST", "PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "NODE_EXTRA_CA_CERTS",
    }
)  # fmt: skip
RESERVED_ENV_PREFIXES = ("DEVPLANE_", "OPENCODE_", "GIT_CONFIG_")


class ExtrasError(ValueError):
    """An extra the operator will not add; the message names it and says why."""


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


def check_volume(volume: Any, where: str) -> dict[str, Any]:
    """One extra volume, ``{name, mountPath, readOnly?, <one source>}``; ExtrasError if not."""
    if not isinstance(volume, Mapping):
        raise ExtrasError(f"{where} must be an object")
    unknown = sorted(set(volume) - {"name", "mountPath", "readOnly", *VOLUME_SOURCES})
    if unknown:
        raise ExtrasError(
            f"{where} has unknown keys {unknown}; a volume's source is one of "
            f"{', '.join(VOLUME_SOURCES)} (a shared NFS or other share: a PersistentVolumeClaim "
            "bound to it)"
        )
    name = volume.get("name")
    if not isinstance(name, str) or not _DNS_LABEL.fullmatch(name) or len(name) > 57:
        raise ExtrasError(f"{where}.name {name!r} must be a DNS label of at most 57 characters")
    path = volume.get("mountPath")
    if not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/"):
        raise ExtrasError(f"{where}.mountPath {path!r} must be an absolute path without '..'")
    clean = "/" + path.strip("/")
    for reserved in _RESERVED_MOUNTS:
        if clean == reserved or (reserved != "/home/dev" and clean.startswith(reserved + "/")):
            raise ExtrasError(
                f"{where}.mountPath {path!r} is where the workspace keeps its own files "
                f"({reserved}); mount it elsewhere (below /home/dev is fine, e.g. /home/dev/data)"
            )
    if clean == "/":
        raise ExtrasError(f"{where}.mountPath may not be /")
    sources = [s for s in VOLUME_SOURCES if s in volume]
    if len(sources) != 1:
        raise ExtrasError(f"{where} needs exactly one source of {', '.join(VOLUME_SOURCES)}")
    source = volume[sources[0]]
    if not isinstance(source, Mapping):
        raise ExtrasError(f"{where}.{sources[0]} must be an object")
    referenced = source.get("name") or source.get("claimName")
    if sources[0] != "emptyDir":
        if not isinstance(referenced, str) or not _DNS_NAME.fullmatch(referenced):
            key = "claimName" if sources[0] == "persistentVolumeClaim" else "name"
            raise ExtrasError(f"{where}.{sources[0]}.{key} must name an object")
        if referenced.startswith(_OWN_PREFIXES):
            raise ExtrasError(
                f"{where}.{sources[0]} names {referenced!r}, a workspace's own object (names "
                f"starting with {' or '.join(_OWN_PREFIXES)} are the workspaces' homes and "
                "children, other users' among them); name a shared one of your own"
            )
    return dict(volume)


def check_env(name: Any, value: Any, where: str) -> None:
    if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
        raise ExtrasError(f"{where}: {name!r} is not an environment variable name")
    if not isinstance(value, str):
        raise ExtrasError(f"{where}: {name}'s value must be a string")
    if name.startswith(RESERVED_ENV_PREFIXES) or name in RESERVED_ENV:
        raise ExtrasError(
            f"{where}: {name} is set by DevPlane itself (the workspace's environment, "
            "docs/contracts.md); choose another name, or use the setting that controls it "
            "(mirrors, caBundle, ...)"
        )


def check_pull_secret(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _DNS_NAME.fullmatch(name):
        raise ExtrasError(f"{where}: {name!r} is not a Secret name")
    if name.startswith(_OWN_PREFIXES):
        raise ExtrasError(f"{where}: {name!r} is a workspace's own object, not a pull Secret")
    return name


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
    paths = [v["mountPath"].rstrip("/") for v in volumes.values()]
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
