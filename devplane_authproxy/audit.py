"""The auth proxy's audit events (devplane_api.audit, component ``authproxy``)."""

from __future__ import annotations

from typing import Any

from devplane_api import audit

COMPONENT = "authproxy"


def event(name: str, **fields: Any) -> dict[str, Any]:
    return audit.event(name, COMPONENT, **fields)
