"""Audit events: one JSON object per line on standard output, nothing else written there.

The schema is a contract (docs/audit.md documents it field by field), so it is defined here,
once, for every component that writes events: the auth proxy and the hub. It is versioned
(``schema``: ``devplane.audit/v1``); a field is only ever added within a version. Every event
has ``schema``, ``time`` (UTC, ISO 8601 with milliseconds), ``event``, ``component`` and ``user``
(whose workspace or account the event is about); the rest depends on the event. Prompt and
answer text, tokens and keys are never written. Operational logs go to standard error, so a
log shipper can take standard output as it is.
"""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from typing import Any

SCHEMA = "devplane.audit/v1"

_lock = threading.Lock()


def event(name: str, component: str, **fields: Any) -> dict[str, Any]:
    """Write the event ``name`` of ``component`` with ``fields``; returns what was written."""
    record = {
        "schema": SCHEMA,
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event": name,
        "component": component,
        **fields,
    }
    line = json.dumps(record, separators=(",", ":"), default=str)
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return record
