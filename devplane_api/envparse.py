"""The one reading of a boolean environment variable, shared by the hub, operator and auth proxy.

Strict on purpose: a typo such as ``ture`` must stop the process with a message naming the
variable, not quietly switch a feature (say, admins' access to workspaces) off.
"""

from __future__ import annotations

from collections.abc import Mapping

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
# What to tell someone who wrote something else.
ACCEPTED = "true or false (also 1/0, yes/no, on/off, in any case)"


def parse_bool(value: str, *, name: str) -> bool:
    """``value`` as a boolean; ValueError naming ``name`` and the accepted words otherwise."""
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is not a boolean: use {ACCEPTED}")


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """``env[name]`` as a boolean; unset or empty means ``default``."""
    value = env.get(name, "")
    return parse_bool(value, name=name) if value.strip() else default
