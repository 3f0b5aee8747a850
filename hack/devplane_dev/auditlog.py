"""Audit events (devplane_api.audit) as a test reads them: JSON lines among a process's output."""

from __future__ import annotations

import json
from typing import Any

from devplane_api.audit import SCHEMA


def audit_events(output: str, event: str | None = None, **fields: Any) -> list[dict[str, Any]]:
    """The audit events in ``output``, in order; only ``event``'s, and only those whose
    ``fields`` have the given values, when said."""
    found = []
    for line in output.splitlines():
        if not line.startswith('{"schema":'):
            continue
        record = json.loads(line)
        if record.get("schema") != SCHEMA or (event is not None and record["event"] != event):
            continue
        if all(record.get(key) == value for key, value in fields.items()):
            found.append(record)
    return found
