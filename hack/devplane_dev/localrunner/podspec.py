"""Translate a workspace Pod into local processes: pure functions, no I/O.

A real kubelet gives each container its image's root filesystem, the pod's volumes at their
mount paths and the pod's network namespace. Here every container is a plain process on this
machine, so we emulate the parts DevPlane relies on:

* **commands** — the image's binaries are mapped to their local equivalents (the repo's
  workspace entrypoint, the virtualenv's Python, ttyd and opencode from a tool directory put
  first on PATH);
* **volumes** — each mount becomes a local directory, and every occurrence of a mount path in
  the container's arguments and environment is rewritten to it. docs/contracts.md promises
  that every path a DevPlane process uses comes from an env var, which is what makes this
  enough;
* **network** — the pod IP is a loopback address (127.20.0.0/16), so a process binding it is
  reachable exactly where the cluster says the pod is. DEVPLANE_PROXY_IP is pinned to it,
  because "0.0.0.0" would make every pod's proxy fight over the same port.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from devplane_api.v1alpha1 import AUTHPROXY_MODULE

Pod = dict[str, Any]

# What the workspace and hub images put at these paths, mapped to this checkout.
WORKSPACE_ENTRYPOINT = "/usr/local/bin/devplane-workspace"
PYTHON_NAMES = {"python", "python3"}
# Containers the operator may start without a command (the image's ENTRYPOINT).
DEFAULT_COMMANDS = {
    "workspace": [WORKSPACE_ENTRYPOINT],
    "authproxy": ["python3", "-m", AUTHPROXY_MODULE],
}
# Set in every process we start, so a process that escaped its process group (tmux's server
# daemonises with setsid) can still be found and stopped by scanning /proc/*/environ.
POD_MARKER_ENV = "DEVPLANE_LOCALRUNNER_POD"


class PodSpecError(ValueError):
    """The pod uses something the local runner cannot emulate; the message says what."""


@dataclass(frozen=True)
class Toolchain:
    """Where this machine keeps what the images would carry."""

    repo: Path
    python: Path
    tool_dir: Path  # holds ttyd, opencode, devplane-workspace (see supervisor.make_tool_dir)
    system_path: str = "/usr/local/bin:/usr/bin:/bin"
    # Added to every process (the demo's run marker, so its clean-up finds pod processes too).
    extra_env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class References:
    """Objects the pod refers to, fetched by the caller (see `referenced_names`)."""

    secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> decoded data
    configmaps: dict[str, dict[str, str]] = field(default_factory=dict)
    claim_dirs: dict[str, Path] = field(default_factory=dict)  # PVC name -> local directory


@dataclass(frozen=True)
class ProcessSpec:
    container: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    mounts: dict[str, Path]  # container path -> local directory


@dataclass(frozen=True)
class PodPlan:
    uid: str
    namespace: str
    name: str
    pod_ip: str
    processes: list[ProcessSpec]
    dirs: list[Path]  # created before start (emptyDirs, volume roots)
    files: dict[Path, bytes]  # ConfigMap/Secret volume content, written before start
    scratch: Path  # per-pod directory removed when the pod goes (emptyDir semantics)


def is_runnable(pod: Pod) -> bool:
    """A pod the real kubelet would be running: scheduled, Running, has an IP, not deleting."""
    status = pod.get("status") or {}
    meta = pod.get("metadata") or {}
    return (
        status.get("phase") == "Running"
        and bool(status.get("podIP"))
        and not meta.get("deletionTimestamp")
    )


def referenced_names(pod: Pod) -> tuple[set[str], set[str], set[str]]:
    """(Secrets, ConfigMaps, PVCs) the pod needs, so the caller fetches only those."""
    secrets: set[str] = set()
    configmaps: set[str] = set()
    claims: set[str] = set()
    spec = pod.get("spec") or {}
    for volume in spec.get("volumes") or []:
        if "secret" in volume:
            secrets.add(volume["secret"]["secretName"])
        elif "configMap" in volume:
            configmaps.add(volume["configMap"]["name"])
        elif "persistentVolumeClaim" in volume:
            claims.add(volume["persistentVolumeClaim"]["claimName"])
    for container in spec.get("containers") or []:
        for entry in container.get("env") or []:
            source = entry.get("valueFrom") or {}
            if "secretKeyRef" in source:
                secrets.add(source["secretKeyRef"]["name"])
            if "configMapKeyRef" in source:
                configmaps.add(source["configMapKeyRef"]["name"])
        for entry in container.get("envFrom") or []:
            if "secretRef" in entry:
                secrets.add(entry["secretRef"]["name"])
            if "configMapRef" in entry:
                configmaps.add(entry["configMapRef"]["name"])
    return secrets, configmaps, claims


def decode_secret(secret: dict[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


def rewrite_paths(value: str, mounts: dict[str, Path]) -> str:
    """Replace each mount path inside ``value`` with its local directory.

    Matches whole path components only ("/tmp" but not "/tmpfoo"), anywhere in the value, so
    ``unix:/run/devplane/ttyd.sock`` and PATH-like lists are rewritten too. Longest mount path
    first, so ``/home/dev/.cache`` wins over ``/home/dev``.
    """
    if not mounts:
        return value
    # One pass over one alternation: rewriting mount by mount would rewrite again a local
    # directory that happens to lie under another mount path (the scratch dir is in /tmp).
    paths = {p.rstrip("/") or "/": str(local) for p, local in mounts.items()}
    alternation = "|".join(re.escape(p) for p in sorted(paths, key=len, reverse=True))
    pattern = re.compile(r"(?<![\w.\-/])(" + alternation + r")(?![\w.\-])")
    return pattern.sub(lambda m: paths[m.group(1)], value)


_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand_refs(value: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known variables are substituted, unknown ones kept."""
    return _VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def _field_value(pod: Pod, path: str) -> str:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    values = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": status.get("podIP", ""),
        "status.hostIP": status.get("hostIP", ""),
    }
    if path not in values:
        raise PodSpecError(f"env fieldRef {path!r} is not supported by the local runner")
    return values[path]


def _lookup(kind: str, store: dict[str, dict[str, str]], ref: dict[str, Any]) -> str | None:
    data = store.get(ref["name"])
    if data is None or ref["key"] not in data:
        if ref.get("optional"):
            return None
        raise PodSpecError(f"{kind} {ref['name']!r} key {ref['key']!r} does not exist")
    return data[ref["key"]]


def container_env(pod: Pod, container: dict[str, Any], refs: References) -> dict[str, str]:
    """The container's environment as the kubelet computes it (envFrom, then env in order)."""
    env: dict[str, str] = {}
    for entry in container.get("envFrom") or []:
        prefix = entry.get("prefix", "")
        for kind, store, key in (
            ("Secret", refs.secrets, "secretRef"),
            ("ConfigMap", refs.configmaps, "configMapRef"),
        ):
            if key not in entry:
                continue
            data = store.get(entry[key]["name"])
            if data is None:
                if entry[key].get("optional"):
                    continue
                raise PodSpecError(f"{kind} {entry[key]['name']!r} (envFrom) does not exist")
            env.update({prefix + k: v for k, v in data.items()})
    for entry in container.get("env") or []:
        source = entry.get("valueFrom")
        if source is None:
            env[entry["name"]] = expand_refs(entry.get("value", ""), env)
            continue
        if "secretKeyRef" in source:
            value = _lookup("Secret", refs.secrets, source["secretKeyRef"])
        elif "configMapKeyRef" in source:
            value = _lookup("ConfigMap", refs.configmaps, source["configMapKeyRef"])
        elif "fieldRef" in source:
            value = _field_value(pod, source["fieldRef"]["fieldPath"])
        else:
            raise PodSpecError(f"env {entry['name']!r}: unsupported valueFrom {sorted(source)}")
        if value is not None:
            env[entry["name"]] = value
    return env


def _volume_files(volume: dict[str, Any], refs: References, root: Path) -> dict[Path, bytes]:
    """Files a ConfigMap or Secret volume projects (all keys, or the listed items)."""
    if "configMap" in volume:
        source, store, kind = volume["configMap"], refs.configmaps, "ConfigMap"
        name = source["name"]
    else:
        source, store, kind = volume["secret"], refs.secrets, "Secret"
        name = source["secretName"]
    data = store.get(name)
    if data is None:
        if source.get("optional"):
            return {}
        raise PodSpecError(f"{kind} {name!r} (volume {volume['name']!r}) does not exist")
    items = source.get("items") or [{"key": k, "path": k} for k in data]
    return {root / i["path"]: data[i["key"]].encode() for i in items if i["key"] in data}


def map_command(argv: list[str], tools: Toolchain) -> list[str]:
    """Replace image binaries with their local counterparts."""
    head, rest = argv[0], argv[1:]
    base = PurePosixPath(head).name
    if head == WORKSPACE_ENTRYPOINT or base == "devplane-workspace":
        return [str(tools.repo / "images" / "workspace" / "devplane-workspace"), *rest]
    if base in PYTHON_NAMES:
        return [str(tools.python), *rest]
    if base == "devplane-authproxy":
        return [str(tools.python), "-m", AUTHPROXY_MODULE, *rest]
    if (tools.tool_dir / base).exists():
        return [str(tools.tool_dir / base), *rest]
    return [base, *rest]  # found on PATH (bash, tmux, ...) or fails visibly in the pod's log


def plan_pod(pod: Pod, refs: References, tools: Toolchain, scratch: Path) -> PodPlan:
    """Everything needed to run ``pod`` locally; ``scratch`` is its per-pod directory.

    ``scratch`` should be a short path: ttyd's unix socket lives in an emptyDir below it and
    Linux limits socket paths to 107 bytes.
    """
    meta, spec, status = pod["metadata"], pod["spec"], pod["status"]
    pod_ip = status["podIP"]
    volume_dirs: dict[str, Path] = {}
    files: dict[Path, bytes] = {}
    dirs: list[Path] = []
    for volume in spec.get("volumes") or []:
        name = volume["name"]
        if "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            if claim not in refs.claim_dirs:
                raise PodSpecError(f"PVC {claim!r} is not bound to a volume yet")
            volume_dirs[name] = refs.claim_dirs[claim]
        elif "hostPath" in volume:
            volume_dirs[name] = Path(volume["hostPath"]["path"])
        elif "emptyDir" in volume or "configMap" in volume or "secret" in volume:
            volume_dirs[name] = scratch / "volumes" / name
            if "emptyDir" not in volume:
                files.update(_volume_files(volume, refs, volume_dirs[name]))
        else:
            raise PodSpecError(f"volume {name!r}: only PVC, hostPath, emptyDir, ConfigMap, Secret")
        dirs.append(volume_dirs[name])

    processes = []
    for container in spec["containers"]:
        cname = container["name"]
        mounts: dict[str, Path] = {}
        for mount in container.get("volumeMounts") or []:
            local = volume_dirs[mount["name"]]
            if mount.get("subPath"):
                local = local / mount["subPath"]
                dirs.append(local)
            mounts[mount["mountPath"]] = local
        # The pod's own variables get their mount paths rewritten; ours are local already.
        pod_env = container_env(pod, container, refs)
        if "/tmp" in mounts:
            # A container's /tmp is private; tmux keeps its server socket under $TMUX_TMPDIR
            # (default /tmp), so without this every local pod would share one tmux server.
            pod_env = {"TMPDIR": "/tmp", "TMUX_TMPDIR": "/tmp", **pod_env}
        if "DEVPLANE_PROXY_IP" in pod_env:
            pod_env["DEVPLANE_PROXY_IP"] = pod_ip
        env = {
            "PATH": f"{tools.tool_dir}:{tools.system_path}",
            "LANG": "C.UTF-8",
            "HOSTNAME": meta["name"],
            "PYTHONUNBUFFERED": "1",
            POD_MARKER_ENV: meta["uid"],
            **tools.extra_env,
            **{k: rewrite_paths(v, mounts) for k, v in pod_env.items()},
        }
        if env.get("SHELL") in ("/bin/bash", "/usr/bin/bash"):
            # tmux would start it as a login shell, which resets PATH (supervisor.py explains).
            env["SHELL"] = str(tools.tool_dir / "devplane-shell")
        command = container.get("command") or DEFAULT_COMMANDS.get(cname)
        if not command:
            raise PodSpecError(f"container {cname!r} has no command and no local default")
        argv = [expand_refs(a, env) for a in [*command, *(container.get("args") or [])]]
        argv = map_command([rewrite_paths(a, mounts) for a in argv], tools)
        workdir = container.get("workingDir")
        cwd = Path(rewrite_paths(workdir, mounts)) if workdir else scratch
        processes.append(ProcessSpec(cname, argv, env, cwd, mounts))
    return PodPlan(
        uid=meta["uid"],
        namespace=meta["namespace"],
        name=meta["name"],
        pod_ip=pod_ip,
        processes=processes,
        dirs=dirs,
        files=files,
        scratch=scratch,
    )
