"""Audit events: one JSON object per line on standard output, nothing else written there.

The schema is versioned (``schema``: ``devplane.audit/v1``) and documented field by field in
docs/audit.md; a field is only ever added within a version. Every event has ``schema``,
``time`` (UTC, ISO 8601 with milliseconds), ``event``, ``component`` and ``user`` (the workspace
owner, whose workspace this is); the rest depends on the event. Prompt and answer text is never
written. The proxy's operational log goes to standard error, so a log shipper can take standard
output as it is.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from typing import Any

SCHEMA = "devplane.audit/v1"
COMPONENT = "authproxy"

_lock = threading.Lock()


def event(name: str, **fields: Any) -> dict[str, Any]:
    """Write the event ``name`` with ``fields``; returns what was written."""
    record = {
        "schema": SCHEMA,
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event": name,
        "component": COMPONENT,
        **fields,
    }
    line = json.dumps(record, separators=(",", ":"), default=str)
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return record
