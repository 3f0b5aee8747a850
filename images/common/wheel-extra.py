"""Print the requirements one extra of a wheel adds, one a line, markers dropped.

    python3 wheel-extra.py dist/devplane-0.1.0-py3-none-any.whl operator

The operator image installs DevPlane's wheel without its base dependencies (JupyterHub and
the rest of the hub's stack, ~65 MB it never imports) and then only what the `operator`
extra declares in pyproject.toml, so that list is kept in one place.
"""

from __future__ import annotations

import re
import sys
import zipfile
from email.parser import Parser


def extra_requirements(wheel: str, extra: str) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(zf.read(name).decode())
    wanted = []
    for requirement in metadata.get_all("Requires-Dist") or []:
        spec, _, marker = requirement.partition(";")
        if re.search(rf"""extra\s*==\s*["']{re.escape(extra)}["']""", marker):
            wanted.append(spec.strip())
    if not wanted:
        sys.exit(f"wheel-extra: {wheel} declares no requirements for the extra {extra!r}")
    return wanted


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print("\n".join(extra_requirements(sys.argv[1], sys.argv[2])))
