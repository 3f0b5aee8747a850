#!/usr/bin/env python3
"""Copy chart/values.yaml's comments into chart/values.schema.json as descriptions.

The comment above a key in values.yaml is where a key is explained, once; the schema's
``description`` (what editors and `helm show` tooling display) is generated from it:

    hack/chart-schema-docs.py            # rewrite the schema's descriptions from the comments
    hack/chart-schema-docs.py --check    # exit 1 if the schema is stale or a key has none

A key's comment is the run of comment lines right above it, at its indentation. Keys that are
not in values.yaml (fields of list items, such as llm.providers[].name) keep the description
written in the schema. --check also fails on any property, anywhere in the schema, that has
no description (tests/chart/test_chart_schema.py runs it).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "chart" / "values.yaml"
SCHEMA = ROOT / "chart" / "values.schema.json"
_KEY = re.compile(r"^( *)([A-Za-z_][A-Za-z0-9_-]*):(?:\s|$)")
# A section rule, "# ----...---- title": a heading, not a key's description.
_RULE = re.compile(r"^#\s*-{10,}")


def comments(text: str) -> dict[tuple[str, ...], str]:
    """(key path) -> the comment that explains that key in values.yaml: the run of comment
    lines right above it at its indentation; for a key right below a commented sibling, with
    no comment or blank line between, that sibling's (one comment for a group, such as
    nodeSelector, tolerations and affinity); for a key right below a section rule
    ("# ---- title"), the title."""
    found: dict[tuple[str, ...], str] = {}
    stack: list[tuple[int, str]] = []  # (indent, key) of the open mappings
    pending: list[str] = []
    pending_indent = -1
    group: tuple[int, str] | None = None  # (indent, comment) the next sibling may share
    in_list_at = -1  # indentation of a block list being skipped (its items are examples)
    for line in text.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if not stripped:
            pending, pending_indent, group = [], -1, None
            continue
        if stripped.startswith("#"):
            rule = _RULE.match(stripped)
            if rule:
                title = stripped[rule.end() :].strip()
                pending, pending_indent = ([title] if title else []), indent
                group = None
                continue
            if pending_indent not in (-1, indent):
                pending = []
            pending.append(stripped.lstrip("#").strip())
            pending_indent = indent
            continue
        if in_list_at >= 0 and indent > in_list_at:
            pending = []
            continue
        in_list_at = -1
        if stripped.startswith("- "):
            in_list_at = indent - 1
            pending, group = [], None
            continue
        match = _KEY.match(line)
        if not match:
            pending = []
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = match.group(2)
        path = (*(k for _, k in stack), key)
        if pending and pending_indent == indent:
            found[path] = " ".join(pending)
            group = (indent, found[path])
        elif group is not None and group[0] == indent:
            found[path] = group[1]
        else:
            group = None
        pending, pending_indent = [], -1
        rest = line[match.end() :].split("#", 1)[0].strip()
        if not rest:  # a mapping (or a list) follows
            stack.append((indent, key))
            group = None
    return found


def _node(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = schema
    for key in path:
        node = (node.get("properties") or {}).get(key) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def undescribed(node: Any, where: str = "$") -> list[str]:
    """Every property under ``node`` (its whole tree, $defs too) without a description."""
    missing: list[str] = []
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            if isinstance(sub, dict) and not sub.get("description"):
                missing.append(f"{where}.{name}")
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                for name, sub in value.items():
                    missing.extend(undescribed(sub, f"{where}.{name}"))
            elif key in ("if", "then", "else", "not"):
                continue  # conditions on keys described where they are defined
            elif isinstance(value, (dict, list)):
                missing.extend(
                    undescribed(value, f"{where}.{key}" if key != "items" else f"{where}[]")
                )
    elif isinstance(node, list):
        for item in node:
            missing.extend(undescribed(item, where))
    return missing


def described(schema: dict[str, Any], notes: dict[tuple[str, ...], str]) -> dict[str, Any]:
    updated = json.loads(json.dumps(schema))
    for path, text in notes.items():
        node = _node(updated, path)
        if node is not None:
            node["description"] = text
    return updated


def main(argv: list[str]) -> int:
    schema = json.loads(SCHEMA.read_text())
    updated = described(schema, comments(VALUES.read_text()))
    missing = sorted(set(undescribed(updated)))
    if "--check" in argv:
        problems = []
        if updated != schema:
            problems.append(
                "chart/values.schema.json's descriptions differ from chart/values.yaml's "
                "comments: run hack/chart-schema-docs.py"
            )
        if missing:
            problems.append(
                "properties without a description (comment the key in chart/values.yaml, or "
                "describe a list item's field in the schema):\n  " + "\n  ".join(missing)
            )
        print("\n".join(problems), file=sys.stderr)
        return 1 if problems else 0
    SCHEMA.write_text(json.dumps(updated, indent=2) + "\n")
    if missing:
        print(f"{len(missing)} properties still have no description:", *missing, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
