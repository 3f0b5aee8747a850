"""Each fact of the Workspace contract is defined once, in devplane_api, and imports point at it.

The facts: the API version ``devplane.io/v1alpha1``, the group ``devplane.io`` (also as the
resource name ``workspaces.devplane.io``), the plural ``workspaces``, the auth proxy's port
8888 and its module ``devplane_authproxy``, the label keys (``app.kubernetes.io/managed-by``,
``devplane.io/workspace``, ``/owner``, ``/server``), the phases, the stuck reasons and the
naming functions. devplane_api/v1alpha1.py and devplane_api/naming.py define them.

The rule, precisely:

* Every Python file of the repository is read (product packages, hub_config/, hack/, bench/,
  examples/, tests/), and in it the literals of code: strings (f-string parts too) and numbers.
  Comments, docstrings and other bare string statements are prose and may name anything.
* devplane_api/ may spell every fact out: it is the definition.
* In tests/, a literal inside an ``assert`` statement or a comparison may spell a fact out:
  there it pins the value on the wire, which the CRD, the chart templates, the docs and
  deployed clients spell out too, so changing the definition must fail a test. A literal that
  *builds* something (a manifest, a URL, a command, an expectation table) imports the name.
* Files that cannot import Python are not read here: the CRD (chart/crds/), the chart
  templates, config/samples/, Dockerfiles, shell scripts, docs/ and README.md. The chart's
  values are checked by the chart tests' assertions on what it renders.
* Specific forms: the plural is a literal equal to ``workspaces`` that is not a dict key (the
  chart's values have a ``workspaces:`` section, which is not the resource); the phases are a
  tuple, list or set display holding three or more phase names; the stuck reasons are a
  display holding two or more of them (a single reason set or compared is a use, not a copy);
  the auth proxy's module is a command line that runs it (``-m devplane_authproxy``, in one
  string or as two items of a list), not a list of folders that names the package;
  in the product packages, any ``devplane.io/`` key (an annotation, a finalizer) is built from
  GROUP; naming is a module-level ``def`` of one of devplane_api.naming's functions anywhere
  outside tests, or an f-string that starts ``ws-`` or ``home-`` in the product packages.

Imports follow the layout (docs/architecture.md, "Layout"): devplane_api imports only the
standard library; the spawner, the operator and the auth proxy import devplane_api and never
each other; no product package imports the development harness (devplane_dev) or tests; and
devplane_spawner is imported only by hub_config/, the harness, and the tests of the spawner
and its hub settings.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import os
import re
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from devplane_api import naming, v1alpha1

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".git", ".venv", "node_modules", ".devcluster", ".pytest_cache", ".ruff_cache"}
PRODUCT = ("devplane_api/", "devplane_spawner/", "devplane_authproxy/", "operator/", "hub_config/")

PHASE_NAMES = frozenset(v1alpha1.PHASES)
STUCK_NAMES = frozenset(v1alpha1.STUCK_REASONS)
NAMING_FUNCTIONS = frozenset(
    name
    for name, obj in vars(naming).items()
    if inspect.isfunction(obj) and obj.__module__ == naming.__name__ and not name.startswith("_")
)

STRING_FACTS = {
    "api version": re.compile(re.escape(v1alpha1.API_VERSION)),
    "group": re.compile(
        rf"^{re.escape(v1alpha1.GROUP)}$|^{v1alpha1.PLURAL}\.{re.escape(v1alpha1.GROUP)}(?:/\w+)?$"
    ),
    "proxy port": re.compile(rf"(?<![\d.]){v1alpha1.PROXY_PORT}(?!\d)"),
    "managed-by label": re.compile(re.escape(v1alpha1.MANAGED_BY)),
    "label key": re.compile(
        rf"(?<![\w.-]){re.escape(v1alpha1.GROUP)}/(?:workspace|owner|server)(?![\w-])"
    ),
    "authproxy module": re.compile(rf"-m {v1alpha1.AUTHPROXY_MODULE}\b"),
}
PRODUCT_GROUP_KEY = re.compile(rf"(?<![\w.-]){re.escape(v1alpha1.GROUP)}/")


def python_files() -> Iterator[Path]:
    """The repository's Python files, without links (chart/files/ points into hub_config/)
    and without this test, whose examples are copies on purpose."""
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = Path(top, name)
            if name.endswith(".py") and not path.is_symlink() and path != Path(__file__):
                yield path


def _prose(tree: ast.AST) -> set[int]:
    """ids of docstrings and other bare string statements."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def _checks(tree: ast.AST) -> set[int]:
    """ids of every node inside an assert statement or a comparison."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert | ast.Compare):
            inside.update(id(child) for child in ast.walk(node))
    return inside


def _dict_keys(tree: ast.AST) -> set[int]:
    return {id(k) for node in ast.walk(tree) if isinstance(node, ast.Dict) for k in node.keys if k}


def _runs_module(elements: list[ast.expr | None], module: str) -> bool:
    """A command line ``[..., "-m", module, ...]`` (a list of folders naming it is not)."""
    values = [e.value if isinstance(e, ast.Constant) else None for e in elements]
    return any(a == "-m" and b == module for a, b in itertools.pairwise(values))


def _constants(elements: list[ast.expr]) -> set[str]:
    return {e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)}


def violations_in(rel: str, tree: ast.AST) -> Iterator[tuple[str, int]]:
    """(fact, line) for every literal in ``tree`` that re-defines a fact of the contract."""
    product = rel.startswith(PRODUCT)
    in_tests = rel.startswith("tests/")
    exempt = _prose(tree) | (_checks(tree) if in_tests else set())
    keys = _dict_keys(tree)
    for node in ast.walk(tree):
        if id(node) in exempt:
            continue
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            for fact, pattern in STRING_FACTS.items():
                if pattern.search(node.value):
                    yield fact, line
            if node.value == v1alpha1.PLURAL and id(node) not in keys:
                yield "plural", line
            if product and PRODUCT_GROUP_KEY.search(node.value):
                yield "group-prefixed key", line
        elif isinstance(node, ast.Constant) and type(node.value) is int:
            if node.value == v1alpha1.PROXY_PORT:
                yield "proxy port", line
        elif isinstance(node, ast.Tuple | ast.List | ast.Set | ast.Dict):
            elements = node.keys if isinstance(node, ast.Dict) else node.elts
            names = _constants([e for e in elements if e is not None])
            if len(names & PHASE_NAMES) >= 3:
                yield "phases", line
            if len(names & STUCK_NAMES) >= 2:
                yield "stuck reasons", line
            if _runs_module(elements, v1alpha1.AUTHPROXY_MODULE):
                yield "authproxy module", line
        elif isinstance(node, ast.JoinedStr) and product and node.values:
            first = node.values[0]
            if isinstance(first, ast.Constant) and str(first.value).startswith(("ws-", "home-")):
                yield "naming", line
    if not in_tests:
        for node in getattr(tree, "body", []):
            if isinstance(node, ast.FunctionDef) and node.name in NAMING_FUNCTIONS:
                yield "naming", node.lineno


def imported_modules(tree: ast.AST) -> Iterator[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno


# Who may import a package: (package, the paths allowed to import it).
SPAWNER_IMPORTERS = (
    "devplane_spawner/",
    "hub_config/",
    "hack/devplane_dev/",
    "tests/spawner/",
    "tests/hub/",
    "tests/chart/test_chart_settings_contract.py",
)
# What each product package must not import.
FORBIDDEN_IMPORTS = {
    "devplane_spawner/": ("devplane_operator", "devplane_authproxy", "devplane_dev", "tests"),
    "devplane_authproxy/": ("devplane_spawner", "devplane_operator", "devplane_dev", "tests"),
    "operator/devplane_operator/": (
        "devplane_spawner",
        "devplane_authproxy",
        "devplane_dev",
        "tests",
    ),
    "hub_config/": ("devplane_operator", "devplane_authproxy", "devplane_dev", "tests"),
}


def import_violations(rel: str, tree: ast.AST) -> Iterator[tuple[str, int]]:
    for module, line in imported_modules(tree):
        top = module.split(".")[0]
        if rel.startswith("devplane_api/") and top not in sys.stdlib_module_names | {
            "devplane_api"
        }:
            yield f"devplane_api imports {module}", line
        for package, forbidden in FORBIDDEN_IMPORTS.items():
            if rel.startswith(package) and top in forbidden:
                yield f"{package} imports {module}", line
        if top == "devplane_spawner" and not rel.startswith(SPAWNER_IMPORTERS):
            yield "imports devplane_spawner", line


@cache
def _scan() -> dict[tuple[str, str], list[int]]:
    found: dict[tuple[str, str], list[int]] = {}
    for path in python_files():
        rel = path.relative_to(ROOT).as_posix()
        tree = ast.parse(path.read_text(), filename=rel)
        facts = [] if rel.startswith("devplane_api/") else list(violations_in(rel, tree))
        for fact, line in [*facts, *import_violations(rel, tree)]:
            found.setdefault((rel, fact), []).append(line)
    return found


def _listing(pairs: dict[tuple[str, str], list[int]]) -> str:
    return "\n".join(
        f"  {rel}:{','.join(map(str, sorted(set(lines))))}: {fact}"
        for (rel, fact), lines in sorted(pairs.items())
    )


def test_each_fact_of_the_contract_is_defined_only_in_devplane_api():
    found = _scan()
    assert not found, (
        "the Workspace contract is spelled out instead of imported from devplane_api "
        f"(see this test's docstring for the rule):\n{_listing(found)}"
    )


def test_the_scan_sees_a_copy_of_each_fact():
    """The detector itself: each form of copy is caught, and prose and checks are not."""
    copy = f'''
"""Docstring naming {v1alpha1.API_VERSION} and port {v1alpha1.PROXY_PORT} freely."""
A = "{v1alpha1.API_VERSION}"
G, P = "{v1alpha1.GROUP}", "{v1alpha1.PLURAL}"
RBAC = "{v1alpha1.PLURAL}.{v1alpha1.GROUP}/status"
PORT = {v1alpha1.PROXY_PORT}
URL = f"http://{{ip}}:{v1alpha1.PROXY_PORT}/api"
LABELS = {{"{v1alpha1.MANAGED_BY}": "devplane", "{v1alpha1.OWNER_LABEL}": "x"}}
ALL = {v1alpha1.PHASES[:3]!r}
STUCK = {{"ImagePullFailed", "Unschedulable"}}
CMD = ["python3", "-m", "{v1alpha1.AUTHPROXY_MODULE}"]
VALUES = {{"{v1alpha1.PLURAL}": {{"namespace": "ws"}}}}
def safe_slug(name): ...
PACKAGES = ("devplane_api", "{v1alpha1.AUTHPROXY_MODULE}")
'''
    tree = ast.parse(copy)
    facts = {fact for fact, _ in violations_in("hack/example.py", tree)}
    assert facts == {
        "api version",
        "group",
        "plural",
        "proxy port",
        "managed-by label",
        "label key",
        "phases",
        "stuck reasons",
        "authproxy module",
        "naming",
    }
    lines = {line for _, line in violations_in("hack/example.py", tree)}
    assert 2 not in lines, "a docstring is prose"
    assert 12 not in lines, "a values key named like the plural is not the plural"
    assert 14 not in lines, "a list of packages is not a command that runs one"
    check = f'assert url == "http://x:{v1alpha1.PROXY_PORT}"\nok = port == {v1alpha1.PROXY_PORT}\n'
    assert not list(violations_in("tests/test_x.py", ast.parse(check)))
    assert list(violations_in("hack/x.py", ast.parse(check)))
