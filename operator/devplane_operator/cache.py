"""In-memory view of Workspaces and their children, fed by kopf's watch events.

This is the operator's informer cache: reconcile reads the *actual* state from here instead
of GETting five objects per Workspace, so a resync of 1,000 unchanged Workspaces costs no API
call at all. Only the fields reconcile looks at are kept (``project``), which keeps memory
small. Writes are written through (the API's response replaces the cached copy), so the next
reconcile does not act on a copy older than its own write.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from devplane_api.v1alpha1 import API_VERSION, KIND, MANAGED_BY, MANAGED_BY_VALUE, WORKSPACE_LABEL

Key = tuple[str, str]  # (namespace, name)
Obj = dict[str, Any]

_META_FIELDS = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "labels",
    "annotations",
    "ownerReferences",
    "deletionTimestamp",
    "creationTimestamp",
)


def _pick(source: dict[str, Any] | None, fields: tuple[str, ...]) -> dict[str, Any]:
    source = source or {}
    return {f: source[f] for f in fields if f in source}


class SharedValues:
    """One copy of each value that many cached objects hold alike.

    Every Workspace of one configuration has the same NetworkPolicy rules, opencode and
    gateway files, containers and Service ports: kept once each instead of once per
    Workspace. Safe because nothing mutates a cached object (reconcile only reads it and
    builds new ones). Only values expected to repeat are offered (never a name or a uid), and
    the table stops growing at ``limit`` distinct values, so an unusual cluster costs memory,
    never correctness.
    """

    def __init__(self, limit: int = 512) -> None:
        self.limit = limit
        self._values: dict[str, Any] = {}
        self.ids: set[int] = set()  # of the values kept: compact() leaves them as they are

    def __call__(self, value: Any) -> Any:
        if not value:
            return value
        key = repr(value)  # the API server writes an object's keys in one order
        shared = self._values.get(key)
        if shared is not None:
            return shared
        if len(self._values) >= self.limit:
            return value
        shared = self._values[key] = compact(value)
        self.ids.add(id(shared))
        return shared

    def __len__(self) -> int:
        return len(self._values)


_shared = SharedValues()


# Values that never repeat across objects: interning them would only add table entries.
_UNIQUE_VALUES = frozenset(
    ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "lastTransitionTime",
     "podIP", "message")
)  # fmt: skip


def compact(value: Any, key: str = "") -> Any:
    """``value`` with its keys and its short repeated strings interned.

    A decoded watch event has its own copy of every key ("metadata", a label's name) and of
    every value ("True", a phase, the namespace, the owner's name on each of a Workspace's six
    objects): much of what a small projected object weighs when thousands are cached (at
    10,000 Workspaces, interning values as well as keys saved 55 MiB). Values that never repeat
    (``_UNIQUE_VALUES``) are left alone.
    """
    if isinstance(value, dict):
        if id(value) in _shared.ids:
            return value
        return {sys.intern(k): compact(v, k) for k, v in value.items()}
    if isinstance(value, list):
        if id(value) in _shared.ids:
            return value
        return [compact(v, key) for v in value]
    if isinstance(value, str) and len(value) <= 64 and key not in _UNIQUE_VALUES:
        return sys.intern(value)
    return value


def _project_pod(body: Obj) -> Obj:
    spec, status = body.get("spec") or {}, body.get("status") or {}
    return {
        "spec": {
            "containers": _shared(
                [_pick(c, ("name", "image")) for c in spec.get("containers") or []]
            ),
            **_pick(spec, ("activeDeadlineSeconds", "nodeName")),
            "tolerations": _shared(spec.get("tolerations") or []),
        },
        "status": {
            **_pick(status, ("phase", "podIP", "reason", "message")),
            "conditions": [
                _pick(c, ("type", "status", "reason", "message"))
                for c in status.get("conditions") or []
            ],
            "containerStatuses": [
                _pick(c, ("name", "ready", "state")) for c in status.get("containerStatuses") or []
            ],
        },
    }


def project(kind: str, body: Obj) -> Obj:
    """The part of ``body`` the operator compares or reports on."""
    result: Obj = {"metadata": _pick(body.get("metadata"), _META_FIELDS)}
    if kind == "Pod":
        result |= _project_pod(body)
    elif kind == "PersistentVolumeClaim":
        spec = body.get("spec") or {}
        result["spec"] = {
            "resources": {"requests": _shared((spec.get("resources") or {}).get("requests") or {})},
            **_pick(spec, ("storageClassName", "volumeName")),
        }
        result["status"] = _pick(body.get("status"), ("phase",))
    elif kind == "Service":
        spec = _pick(body.get("spec"), ("type", "selector", "ports"))
        if "ports" in spec:
            spec["ports"] = _shared(spec["ports"])
        result["spec"] = spec
    elif kind == "ConfigMap":
        result |= {k: _shared(v) for k, v in _pick(body, ("data", "binaryData")).items()}
    elif kind == "NetworkPolicy":
        # The podSelector names the Workspace; the rules are the configuration's.
        result["spec"] = {k: v if k == "podSelector" else _shared(v)
                          for k, v in (body.get("spec") or {}).items()}  # fmt: skip
    elif kind == KIND:
        result |= _pick(body, ("spec", "status"))
        if "spec" in result:
            spec = result["spec"] = dict(result["spec"])
            for common in ("ai", "resources", "image"):
                if common in spec:
                    spec[common] = _shared(spec[common])
    return compact(result)


def workspace_of(body: Obj) -> str | None:
    """Name of the Workspace a child belongs to: its controller reference, else its label."""
    meta = body.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == KIND and ref.get("apiVersion") == API_VERSION:
            return ref.get("name")
    labels = meta.get("labels") or {}
    if labels.get(MANAGED_BY) == MANAGED_BY_VALUE and labels.get(WORKSPACE_LABEL):
        return labels[WORKSPACE_LABEL]
    return None


def _rv(obj: Obj) -> int | None:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


# Deleted incarnations remembered per name: late copies arrive within seconds, so a few do.
_GONE_KEPT = 4


class Cache:
    """Objects by kind and (namespace, name), plus which Workspace each child belongs to."""

    def __init__(self) -> None:
        self._objects: dict[str, dict[Key, Obj]] = {}
        self._owner: dict[tuple[str, Key], str] = {}
        # The uids of the last few incarnations deleted under each name: a copy of one that
        # comes later (the response to our own DELETE, which can arrive after the watch's
        # DELETED event) must not bring a deleted object back into the cache, where it would
        # stay until a resync (a stopped Workspace then read "Stopping" again).
        self._gone: dict[tuple[str, Key], list[str]] = {}

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._objects.get(kind, {}).get((namespace, name))

    def workspaces(self) -> Iterator[Key]:
        return iter(list(self._objects.get(KIND, {})))

    def count(self, kind: str) -> int:
        return len(self._objects.get(kind, {}))

    def owner_of(self, kind: str, key: Key) -> str | None:
        return self._owner.get((kind, key))

    def put(self, kind: str, body: Obj, owner: str | None = None) -> bool:
        """Store ``body`` unless the cached copy is newer; True when it was news.

        News means the cache did not already hold this very version: the watch event that
        echoes the operator's own write (whose response was stored first) is not news, and
        reconciling again for it would only find nothing to do (with 400 Workspaces starting,
        skipping those cut the reconciles by a quarter to a third; docs/operator.md).

        resourceVersions are opaque by contract but etcd's are increasing integers; comparing
        them keeps a late watch event from overwriting the newer copy a write returned.
        """
        meta = body.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if meta.get("uid") in self._gone.get((kind, key), ()):
            return False  # a late copy of an object already deleted
        store = self._objects.setdefault(kind, {})
        old = store.get(key)
        if owner:
            self._owner[(kind, key)] = owner
        if old is not None and old["metadata"].get("uid") == meta.get("uid"):
            old_rv, new_rv = _rv(old), _rv(body)
            if old_rv is not None and new_rv is not None and new_rv <= old_rv:
                # Older, or this very version (an echo): nothing to store, not even to
                # project (about half of all events are echoes).
                return False
        store[key] = project(kind, body)
        return True

    def remove(self, kind: str, namespace: str, name: str, uid: str | None = None) -> None:
        """Forget an object (if ``uid`` is given, only that incarnation of it)."""
        store = self._objects.get(kind, {})
        old = store.get((namespace, name))
        gone = uid or (old["metadata"].get("uid") if old is not None else None)
        if gone:
            uids = self._gone.setdefault((kind, (namespace, name)), [])
            if gone not in uids:
                uids.append(gone)
                del uids[:-_GONE_KEPT]
        if old is None or (uid and old["metadata"].get("uid") != uid):
            return
        del store[(namespace, name)]
        self._owner.pop((kind, (namespace, name)), None)
