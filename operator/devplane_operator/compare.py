"""Pure comparison of a desired child with the live one: what, if anything, to write.

Only the fields the operator owns are compared; everything the API server or other
controllers add (defaults, clusterIP, volumeName, status, extra labels) is left alone. A
comparison that flagged server-side defaults would patch forever, so the tests check that a
freshly created object compares equal to its own manifest.

The child-reconcile policy (docs/operator.md):
* metadata (our labels and annotations, the ownerReference) is patched back in place;
* Service, ConfigMap and NetworkPolicy specs are patched back in place;
* a Pod's spec is mostly immutable. A hand-changed container image is patched back (images are
  mutable; the container restarts). Anything else that differs from what we want — our spec
  hash changed (the Workspace or the settings changed), an added toleration or
  activeDeadlineSeconds, a finished pod — means delete it and create a new one;
* the home PVC is never deleted or recreated: only its labels, ownerReference and (growing)
  size are patched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devplane_api.v1alpha1 import GROUP, KIND

from .builders import SPEC_HASH_ANNOTATION
from .quantity import QuantityError, parse_quantity

Obj = dict[str, Any]


@dataclass
class Action:
    """What to do for one child: nothing, create, patch (a merge patch) or recreate."""

    verb: str  # "none" | "create" | "patch" | "recreate" | "wait"
    patch: Obj = field(default_factory=dict)
    why: str = ""
    strategic: bool = False  # send as a strategic merge patch (lists merged by key)


NOTHING = Action("none")


def normalize(value: Any) -> Any:
    """Drop empty maps/lists and None, recursively: the API server omits them on storage."""
    if isinstance(value, dict):
        items = {k: normalize(v) for k, v in value.items()}
        return {k: v for k, v in items.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def replacing_patch(actual: Any, desired: Any) -> Any:
    """A JSON merge patch that turns ``actual`` into exactly ``desired`` (keys removed: None)."""
    if not isinstance(actual, dict) or not isinstance(desired, dict):
        return desired
    patch = {k: None for k in actual if k not in desired}
    for key, value in desired.items():
        if key not in actual or normalize(actual[key]) != normalize(value):
            patch[key] = replacing_patch(actual.get(key), value)
    return patch


def _is_our_ref(ref: Obj) -> bool:
    return ref.get("kind") == KIND and ref.get("apiVersion", "").startswith(f"{GROUP}/")


def metadata_patch(desired: Obj, actual: Obj) -> Obj:
    """Patch restoring our labels, annotations and ownerReference (others' keys are kept)."""
    want, have = desired["metadata"], actual.get("metadata") or {}
    patch: Obj = {}
    for part in ("labels", "annotations"):
        current = have.get(part) or {}
        missing = {k: v for k, v in (want.get(part) or {}).items() if current.get(k) != v}
        if missing:
            patch[part] = missing
    refs = have.get("ownerReferences") or []
    others = [r for r in refs if not _is_our_ref(r)]
    ours = want.get("ownerReferences") or []
    if [r for r in refs if _is_our_ref(r)] != ours:
        patch["ownerReferences"] = others + ours
    return {"metadata": patch} if patch else {}


def _ports(ports: list[Obj] | None) -> list[Obj]:
    keys = ("name", "port", "targetPort", "protocol")
    return [{k: p.get(k) for k in keys} for p in ports or []]


def compare_service(desired: Obj, actual: Obj) -> Action:
    patch = metadata_patch(desired, actual)
    want, have = desired["spec"], actual.get("spec") or {}
    spec_patch: Obj = {}
    if (have.get("selector") or {}) != want["selector"]:
        spec_patch["selector"] = replacing_patch(have.get("selector") or {}, want["selector"])
    if _ports(have.get("ports")) != _ports(want["ports"]) or have.get("type") != want["type"]:
        spec_patch |= {"ports": want["ports"], "type": want["type"]}
    if spec_patch:
        patch["spec"] = spec_patch
    return Action("patch", patch, "service drifted") if patch else NOTHING


def compare_configmap(desired: Obj, actual: Obj) -> Action:
    patch = metadata_patch(desired, actual)
    if (actual.get("data") or {}) != desired["data"]:
        patch["data"] = replacing_patch(actual.get("data") or {}, desired["data"])
    if actual.get("binaryData"):
        patch["binaryData"] = None
    return Action("patch", patch, "configmap drifted") if patch else NOTHING


def compare_networkpolicy(desired: Obj, actual: Obj) -> Action:
    patch = metadata_patch(desired, actual)
    if normalize(actual.get("spec") or {}) != normalize(desired["spec"]):
        patch["spec"] = replacing_patch(actual.get("spec") or {}, desired["spec"])
    return Action("patch", patch, "networkpolicy drifted") if patch else NOTHING


def compare_pvc(desired: Obj, actual: Obj) -> Action:
    patch = metadata_patch(desired, actual)
    want = desired["spec"]["resources"]["requests"]["storage"]
    have = (((actual.get("spec") or {}).get("resources") or {}).get("requests") or {}).get(
        "storage"
    )
    try:
        grow = have is None or parse_quantity(want) > parse_quantity(have)
    except QuantityError:
        grow = False
    if grow:  # never shrink: the API server refuses, and the data must not be at risk
        patch["spec"] = {"resources": {"requests": {"storage": want}}}
    return Action("patch", patch, "pvc drifted") if patch else NOTHING


def _tolerated_by_default(toleration: Obj) -> bool:
    """Tolerations the DefaultTolerationSeconds admission plugin adds to every pod."""
    return (
        toleration.get("key")
        in (
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        )
        and toleration.get("effect") == "NoExecute"
    )


def compare_pod(desired: Obj, actual: Obj) -> Action:
    have_meta = actual.get("metadata") or {}
    if have_meta.get("deletionTimestamp"):
        return Action("wait", why="pod is terminating")
    spec, status = actual.get("spec") or {}, actual.get("status") or {}
    if status.get("phase") in ("Failed", "Succeeded"):
        return Action("recreate", why=f"pod phase is {status['phase']}")
    want_hash = desired["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    have_hash = (have_meta.get("annotations") or {}).get(SPEC_HASH_ANNOTATION)
    if have_hash != want_hash:
        return Action("recreate", why="pod spec differs from the Workspace's (spec hash)")
    if spec.get("activeDeadlineSeconds") is not None:
        return Action("recreate", why="activeDeadlineSeconds was set on the pod")
    added = [t for t in spec.get("tolerations") or [] if not _tolerated_by_default(t)]
    if added != desired["spec"].get("tolerations", []):
        # Tolerations are the one scheduling field that can be added to a running pod: one we
        # did not ask for could keep it on a node that should not run it.
        return Action("recreate", why="tolerations were added to the pod")
    want_images = {c["name"]: c["image"] for c in desired["spec"]["containers"]}
    have_images = {c.get("name"): c.get("image") for c in spec.get("containers") or []}
    if set(want_images) != set(have_images):
        return Action("recreate", why="pod containers differ")
    patch = metadata_patch(desired, actual)
    if want_images != have_images:
        # A strategic merge patch matches containers by name and changes only their image,
        # the one container field the API server lets us change in place.
        patch["spec"] = {"containers": [{"name": n, "image": i} for n, i in want_images.items()]}
    return Action("patch", patch, "pod drifted", strategic=True) if patch else NOTHING


COMPARERS = {
    "Service": compare_service,
    "ConfigMap": compare_configmap,
    "NetworkPolicy": compare_networkpolicy,
    "PersistentVolumeClaim": compare_pvc,
    "Pod": compare_pod,
}


def compare(kind: str, desired: Obj, actual: Obj | None) -> Action:
    """The action that brings ``actual`` (None = missing) in line with ``desired``."""
    if actual is None:
        return Action("create", why=f"{kind} is missing")
    return COMPARERS[kind](desired, actual)
