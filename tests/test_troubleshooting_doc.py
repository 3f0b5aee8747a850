"""docs/troubleshooting.md quotes DevPlane's own words: every quoted line must be one the code
can print.

A quoted line is a blockquote ("> ...") line; `<placeholders>` stand for what varies. The code's
messages are read as a reader would see them printed: Python string literals (adjacent ones
joined, as Python joins them) with each f-string field or %-format as a gap, and the text of
the shell scripts and chart templates. A quote matches when each of its fixed parts is made of
pieces of those messages (produced() says exactly how), so a line one function prefixes to
another's detail matches too, and a made-up one does not.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from devplane_api import v1alpha1

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "troubleshooting.md"
PYTHON = ("devplane_spawner", "devplane_authproxy", "devplane_api", "operator", "hub_config")
TEXT = (
    ROOT / "images" / "workspace" / "devplane-workspace",
    *sorted(ROOT.glob("chart/templates/*")),
)
GAP = "\x00"
_PLACEHOLDER = re.compile(r"<[^<>]+>")
_PERCENT = re.compile(r"%[-0-9.]*[sdrfi]")
# Parts shorter than this are too common to show a quote comes from the code.
MIN_PART = 12


# The contract's words (devplane_api.v1alpha1) are printed as their values.
CONSTANTS = {k: v for k, v in vars(v1alpha1).items() if k.isupper() and isinstance(v, str)}


def _field(part: ast.expr) -> str:
    if isinstance(part, ast.Constant):
        return str(part.value)
    if (
        isinstance(part, ast.FormattedValue)
        and isinstance(part.value, ast.Name)
        and part.value.id in CONSTANTS
    ):
        return CONSTANTS[part.value.id]
    return GAP


def _python_messages(path: Path) -> list[str]:
    messages = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.JoinedStr):
            messages.append("".join(_field(part) for part in node.values))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            messages.append(_PERCENT.sub(GAP, node.value))
    return messages


@cache
def code_messages() -> tuple[str, ...]:
    found: list[str] = []
    for package in PYTHON:
        for path in sorted((ROOT / package).rglob("*.py")):
            found += _python_messages(path)
    for path in TEXT:
        text = path.read_text()
        # Shell and template variables are gaps too; continuation lines are joined.
        text = re.sub(r"\\\n\s*", "", text)
        found.append(re.sub(r"\$\{?\w+\}?|\{\{[^}]*\}\}", GAP, text))
    return tuple(found)


def quoted_lines() -> list[str]:
    return [
        line.strip()[2:].strip()
        for line in DOC.read_text().splitlines()
        if line.strip().startswith("> ")
    ]


def fixed_parts(quote: str) -> list[str]:
    return [part for part in _PLACEHOLDER.split(quote) if part.strip()]


@cache
def code_text() -> str:
    """Every literal piece of every message, one text (gaps and messages split by \x01)."""
    return "\x01".join(m.replace(GAP, "\x01") for m in code_messages())


def _longest_piece(part: str, start: int, text: str) -> int:
    """The end of the longest part[start:end] that the code's text holds (start if none)."""
    low, high = start, len(part)
    while low < high:
        middle = (low + high + 1) // 2
        if part[start:middle] in text:
            low = middle
        else:
            high = middle - 1
    return low


def produced(quote: str, text: str) -> bool:
    """Whether each fixed part of ``quote`` is a run of pieces of the code's messages, every
    piece but a part's last at least MIN_PART long: a message, or a prefix from one place and a
    detail from another (the spawner's "Your workspace cannot start: " and the operator's
    cause), each as the code words it."""
    for part in fixed_parts(quote):
        at = 0
        while at < len(part):
            end = _longest_piece(part, at, text)
            if end == at or (end < len(part) and end - at < MIN_PART):
                return False
            at = end
    return True


def test_the_doc_quotes_lines() -> None:
    assert len(quoted_lines()) >= 15


@pytest.mark.parametrize("quote", quoted_lines())
def test_every_quoted_line_is_one_the_code_prints(quote: str) -> None:
    assert produced(quote, code_text()), (
        f"docs/troubleshooting.md quotes a line no code prints:\n  {quote}\n"
        "Quote the message as the code words it, with <placeholders> for what varies."
    )


def test_a_made_up_line_is_caught() -> None:
    made_up = "Your workspace cannot start: the moon is in the wrong phase for <user>"
    assert not produced(made_up, code_text())
