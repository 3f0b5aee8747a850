"""DNS-safe, collision-free Kubernetes names for users and their servers.

The scheme follows kubespawner's "safe slug" idea:

* a name that is already a valid DNS label (lower-case alphanumerics and single ``-``),
  short enough, and free of ``--`` is kept verbatim, so ``alice`` stays ``alice``;
* anything else becomes a stripped, lower-cased form plus ``---`` and 8 hex digits of a
  SHA-256 of the original, so ``Alice@example.com`` becomes ``alice-example-com---1f3a...``.

Why this is collision-free: a kept name never contains ``--``; a hashed name always ends in
``---`` + hash of its exact input; a user and server are joined with ``--``. So two different
inputs can only map to the same name through a hash collision (2**-32 per pair).

These functions are pure and **must never change their output for an existing input**:
the home volume's name is derived from them, and kubespawner users lost their volumes when
its naming changed across an upgrade. tests/spawner/test_spawner_naming.py pins known outputs.
"""

from __future__ import annotations

import hashlib
import re

# The Workspace name is used inside child names such as "ws-<name>-opencode" and
# "home-<name>", which must fit a 63-character DNS label.
MAX_NAME_LENGTH = 50
_HASH_LENGTH = 8
_SEPARATOR = "--"
_VALID_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_INVALID_RUN = re.compile(r"[^a-z0-9]+")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_LENGTH]


def _hashed(raw: str, key: str, max_length: int) -> str:
    """Stripped form of ``raw`` (truncated) + ``---`` + hash of ``key``."""
    stripped = _INVALID_RUN.sub("-", raw.lower()).strip("-")
    room = max_length - len("---") - _HASH_LENGTH
    stripped = stripped[:room].rstrip("-") or "x"
    return f"{stripped}---{_digest(key)}"


def is_valid_label(name: str, max_length: int = 63) -> bool:
    """True for a DNS-1123 label of at most ``max_length`` characters."""
    return 0 < len(name) <= max_length and bool(_VALID_LABEL.fullmatch(name))


def safe_slug(name: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """A DNS label for ``name``: ``name`` itself when already safe, else stripped + hash."""
    if is_valid_label(name, max_length) and _SEPARATOR not in name:
        return name
    return _hashed(name, name, max_length)


def workspace_name(owner: str, server_name: str = "") -> str:
    """Name of the Workspace (and the stem of its children) for a user's server.

    ``server_name`` is "" for the user's default server.
    """
    if not owner:
        raise ValueError("owner must be a non-empty JupyterHub user name")
    user = safe_slug(owner)
    if not server_name:
        return user
    joined = f"{user}{_SEPARATOR}{safe_slug(server_name)}"
    if len(joined) <= MAX_NAME_LENGTH:
        return joined
    # Too long together: hash the pair. "\0" cannot occur in either name, so the hashed key
    # of a (user, server) pair never equals the key of a lone user name.
    return _hashed(f"{owner}-{server_name}", f"{owner}\0{server_name}", MAX_NAME_LENGTH)


def pvc_name(owner: str, server_name: str = "") -> str:
    """Name of the home PersistentVolumeClaim; stable so a re-created user gets it back."""
    return f"home-{workspace_name(owner, server_name)}"


# Every child's name starts with it, so no other object in a workspace namespace should: the
# operator refuses an API-key Secret named so (it could be a workspace's hub Secret).
CHILD_PREFIX = "ws-"


def child_name(workspace: str, suffix: str = "") -> str:
    """Name of a child object (Pod, Service, ConfigMap, Secret, NetworkPolicy)."""
    return f"{CHILD_PREFIX}{workspace}{'-' + suffix if suffix else ''}"
