"""Every file the docs and the comments point a reader at exists.

Files get renamed (tests/chart/test_rbac.py became test_chart_rbac.py) and the prose that
cites them goes stale silently. Read here:

* every text file of the repository outside .venv, node_modules and the like: Markdown, YAML,
  templates, shell, Dockerfiles, the Makefile, and Python, whose comments and docstrings are
  read but not its other string literals (those are data: a test may name a file that must
  not exist);
* a citation is a path starting with ``tests/``, ``docs/``, ``hack/`` or ``bench/`` (anywhere
  in the text), a bare test module name such as ``test_op_lifecycle.py``, or a relative link
  target in Markdown (``[contracts.md](contracts.md)``, resolved from the page's folder);
* a citation holding a placeholder (``<``, ``*``, ``{``, ``$``) is a pattern, not a file.
"""

from __future__ import annotations

import io
import os
import re
import tokenize
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {
    ".git",
    ".venv",
    "node_modules",
    ".devcluster",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    ".devplane-setup",
    "test-artifacts",
    "__pycache__",
    # Build output (.gitignore'd): the images' wheel and the binaries staged for them.
    "build",
}
TEXT_SUFFIXES = {
    ".md", ".py", ".yaml", ".yml", ".tpl", ".txt", ".sh", ".toml", ".cfg", ".json", ".env",
    ".mjs", ".conf", "",
}  # fmt: skip
SKIP_FILES = {"package-lock.json"}

PATH = re.compile(r"(?<![\w./-])((?:tests|docs|hack|bench)/[\w./-]*[\w/])")
TEST_MODULE = re.compile(r"(?<![\w/])(test_\w+\.py)\b")
MD_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
PLACEHOLDER = re.compile(r"[<*{$]")


def text_files() -> Iterator[Path]:
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = Path(top, name)
            if (
                path.suffix in TEXT_SUFFIXES
                and name not in SKIP_FILES
                and not path.is_symlink()
                and path != Path(__file__)
            ):
                yield path


def prose(path: Path) -> str:
    """The text a reader reads: all of it, or a Python file's comments and docstrings."""
    text = path.read_text(errors="replace")
    if path.suffix != ".py":
        return text
    parts: list[str] = []
    previous = tokenize.INDENT
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            parts.append(token.string)
        elif token.type == tokenize.STRING and previous in (
            tokenize.INDENT,
            tokenize.NEWLINE,
            tokenize.NL,
            tokenize.DEDENT,
        ):
            parts.append(token.string)  # a string statement: a docstring
        if token.type not in (tokenize.COMMENT,):
            previous = token.type
    return "\n".join(parts)


@cache
def _test_modules() -> frozenset[str]:
    return frozenset(p.name for p in (ROOT / "tests").rglob("test_*.py"))


def citations(rel: str, text: str) -> Iterator[tuple[str, Path | None]]:
    """(citation, the file it must be) for each citation in ``text``; None: any test module."""
    for match in PATH.finditer(text):
        cited = match.group(1).rstrip(".")
        if not PLACEHOLDER.search(cited):
            yield cited, ROOT / cited
    for match in TEST_MODULE.finditer(text):
        yield match.group(1), None
    if rel.endswith(".md"):
        for match in MD_LINK.finditer(text):
            target = match.group(1)
            if "://" not in target and not target.startswith("mailto:"):
                yield target, (ROOT / rel).parent / target


@cache
def stale() -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for path in text_files():
        rel = path.relative_to(ROOT).as_posix()
        for cited, target in citations(rel, prose(path)):
            exists = cited in _test_modules() if target is None else target.exists()
            if not exists:
                found[(rel, cited)] = found.get((rel, cited), 0) + 1
    return found


def test_every_cited_file_exists():
    missing = sorted(stale())
    assert not missing, "cited but missing:\n" + "\n".join(
        f"  {rel}: {cited}" for rel, cited in missing
    )


def test_the_reader_finds_each_kind_of_citation(tmp_path):
    md = "See tests/chart/test_nope.py, test_nope_either.py and [x](nope.md#a); docs/<name>.md."
    assert [c for c, _ in citations("docs/x.md", md)] == [
        "tests/chart/test_nope.py",
        "test_nope_either.py",
        "nope.md",
    ]
    source = '"""Docstring: hack/nope.py."""\n# comment: bench/nope.py\nDATA = "tests/nope.py"\n'
    path = tmp_path / "example.py"
    path.write_text(source)
    text = prose(path)
    assert "hack/nope.py" in text and "bench/nope.py" in text and "tests/nope.py" not in text
