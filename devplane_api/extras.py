"""The Workspace contract's rules for extras (spec.extraEnv, .extraVolumes, .imagePullSecrets):
what the API server's schema cannot say, checked wherever extras are written, by the hub for
its profiles (at start-up) and by the operator for every Workspace (docs/workspace-api.md).

Pure functions; each refusal names the field and says why.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
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
    if not isinstance(path, str) or not path.startswith("/"):
        raise ExtrasError(f"{where}.mountPath {path!r} must be an absolute path")
    clean = posixpath.normpath(path)
    if clean != path.rstrip("/") or path.startswith("//"):
        # /home//dev or /run/devplane/. would name a reserved path in other words (the
        # container runtime cleans the path; the checks below compare it as written).
        raise ExtrasError(f"{where}.mountPath {path!r} is not a clean path: write {clean!r}")
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
