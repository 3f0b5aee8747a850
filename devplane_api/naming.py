"""DNS-safe, collision-free Kubernetes names for users and their servers.

The scheme follows kubespawner's "safe slug" idea:

* a name that is already a valid DNS label (lower-case alphanumerics and single ``-``),
  short enough, and free of ``--`` is kept verbatim, so ``alice`` stays ``alice``;
* anything else becomes a stripped, lower-cased form plus ``---`` and 24 hex digits of a
  SHA-256 of the original, so ``Alice@example.com`` becomes ``alice-example-com---cdbc73c2...``.

Why this is collision-free: a kept name never contains ``--``; a hashed name always ends in
``---`` + hash of its exact input; a user and server are joined with ``--``. So two different
inputs can only map to the same name through a hash collision. The hash is 96 bits because
the inputs are chosen by users: whoever controls a user name (or a named server's name) can
try variants (case, separators) whose stripped form matches someone else's name, and a name
match hands them that person's Workspace and home volume. Finding a second input for a given
96-bit hash takes about 2**96 SHA-256 evaluations (2**83 against 10,000 targets at once):
millions of GPU-years. The 32 bits used before took minutes.

These functions are pure and **must never change their output for an existing input**: the
home volume's name is derived from them, and kubespawner users lost their volumes when its
naming changed across an upgrade. The one change so far (8 -> 24 hex digits) keeps every
name that has no hash, and ``legacy_workspace_name``/``legacy_pvc_name`` give the names made
before it, so the spawner and the operator find those objects again (docs/contracts.md).
tests/spawner/test_spawner_naming.py pins known outputs of both.
"""

from __future__ import annotations

import hashlib
import re

# The Workspace name is used inside child names such as "ws-<name>-opencode" and
# "home-<name>", which must fit a 63-character DNS label.
MAX_NAME_LENGTH = 50
HASH_LENGTH = 24
# Names made before the hash was widened; only ever used to find objects made then.
LEGACY_HASH_LENGTH = 8
_SEPARATOR = "--"
_VALID_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_INVALID_RUN = re.compile(r"[^a-z0-9]+")


def _digest(text: str, hash_length: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:hash_length]


def _hashed(raw: str, key: str, max_length: int, hash_length: int) -> str:
    """Stripped form of ``raw`` (truncated) + ``---`` + hash of ``key``."""
    stripped = _INVALID_RUN.sub("-", raw.lower()).strip("-")
    room = max_length - len("---") - hash_length
    stripped = stripped[:room].rstrip("-") or "x"
    return f"{stripped}---{_digest(key, hash_length)}"


def is_valid_label(name: str, max_length: int = 63) -> bool:
    """True for a DNS-1123 label of at most ``max_length`` characters."""
    return 0 < len(name) <= max_length and bool(_VALID_LABEL.fullmatch(name))


def safe_slug(
    name: str, max_length: int = MAX_NAME_LENGTH, *, hash_length: int = HASH_LENGTH
) -> str:
    """A DNS label for ``name``: ``name`` itself when already safe, else stripped + hash."""
    if is_valid_label(name, max_length) and _SEPARATOR not in name:
        return name
    return _hashed(name, name, max_length, hash_length)


def workspace_name(owner: str, server_name: str = "", *, hash_length: int = HASH_LENGTH) -> str:
    """Name of the Workspace (and the stem of its children) for a user's server.

    ``server_name`` is "" for the user's default server.
    """
    if not owner:
        raise ValueError("owner must be a non-empty JupyterHub user name")
    user = safe_slug(owner, hash_length=hash_length)
    if not server_name:
        return user
    joined = f"{user}{_SEPARATOR}{safe_slug(server_name, hash_length=hash_length)}"
    if len(joined) <= MAX_NAME_LENGTH:
        return joined
    # Too long together: hash the pair. "\0" cannot occur in either name, so the hashed key
    # of a (user, server) pair never equals the key of a lone user name.
    return _hashed(
        f"{owner}-{server_name}", f"{owner}\0{server_name}", MAX_NAME_LENGTH, hash_length
    )


def legacy_workspace_name(owner: str, server_name: str = "") -> str:
    """The name ``workspace_name`` gave before its hash was widened (8 hex digits).

    Equal to ``workspace_name`` for every name without a hash. Only for finding a Workspace
    or home volume made then, after checking that it belongs to ``owner``: a 32-bit hash can
    be matched on purpose.
    """
    return workspace_name(owner, server_name, hash_length=LEGACY_HASH_LENGTH)


def pvc_name(owner: str, server_name: str = "") -> str:
    """Name of the home PersistentVolumeClaim; stable so a re-created user gets it back."""
    return f"home-{workspace_name(owner, server_name)}"


def legacy_pvc_name(owner: str, server_name: str = "") -> str:
    """The home volume's name before the hash was widened (see ``legacy_workspace_name``)."""
    return f"home-{legacy_workspace_name(owner, server_name)}"


# Every child's name starts with it, so no other object in a workspace namespace should: the
# operator refuses an API-key Secret named so (it could be a workspace's hub Secret).
CHILD_PREFIX = "ws-"


def child_name(workspace: str, suffix: str = "") -> str:
    """Name of a child object (Pod, Service, ConfigMap, Secret, NetworkPolicy)."""
    return f"{CHILD_PREFIX}{workspace}{'-' + suffix if suffix else ''}"
