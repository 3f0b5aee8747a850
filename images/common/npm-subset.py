"""Write a package.json + package-lock.json holding only some packages of the project's lock.

    python3 npm-subset.py package-lock.json OUTDIR NAME [NAME...]

Each image needs one or two of the project's node packages (the hub: configurable-http-proxy;
the workspace: opencode's native binary package), at exactly the versions and integrity hashes
package-lock.json pins. `npm ci` on the whole lock installs everything (the test-only OIDC
provider too) and refuses the lock anyway, because the lock holds only this platform's opencode
package. So the build takes the dependency closure of NAME... out of the lock, unchanged, and
runs `npm ci` on that: npm still checks every tarball against the pinned integrity.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def resolve(packages: dict, from_path: str, name: str) -> str | None:
    """The lock key npm would load `name` from when required by the package at `from_path`."""
    base = from_path
    while True:
        key = f"{base}/node_modules/{name}" if base else f"node_modules/{name}"
        if key in packages:
            return key
        if not base:
            return None
        # Walk up one node_modules level: a/node_modules/b -> a; node_modules/a -> "".
        cut = base.rfind("/node_modules/")
        base = base[:cut] if cut >= 0 else ""


def closure(packages: dict, names: list[str]) -> dict[str, dict]:
    chosen: dict[str, dict] = {}
    todo: list[tuple[str, str, bool]] = [("", n, False) for n in names]
    while todo:
        parent, name, optional = todo.pop()
        key = resolve(packages, parent, name)
        if key is None:
            if optional:
                continue  # another platform's optional package: not in this lock, not needed
            sys.exit(f"npm-subset: {name} (needed by {parent or 'the image'}) is not in the lock")
        if key in chosen:
            continue
        entry = dict(packages[key])
        # Flags describe the entry's role under the project's root; under the subset's root
        # every chosen package is a production dependency, and npm recomputes them anyway.
        for flag in ("dev", "optional", "devOptional", "peer"):
            entry.pop(flag, None)
        chosen[key] = entry
        for field, opt in (("dependencies", False), ("optionalDependencies", True)):
            for dep in entry.get(field, {}):
                todo.append((key, dep, opt))
        for dep in entry.get("peerDependencies", {}):
            todo.append((key, dep, True))
    return chosen


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        sys.exit(__doc__)
    lock = json.loads(Path(argv[0]).read_text())
    out, names = Path(argv[1]), argv[2:]
    packages = lock["packages"]
    chosen = closure(packages, names)
    deps = {}
    for n in names:
        key = resolve(packages, "", n)
        if key is None:
            sys.exit(f"npm-subset: {n} is not a top-level package of the lock")
        deps[n] = packages[key]["version"]
    root = {"name": "devplane-image-node", "version": "0.0.0", "dependencies": deps}
    subset = {
        "name": root["name"],
        "version": root["version"],
        "lockfileVersion": 3,
        "requires": True,
        "packages": {"": root, **dict(sorted(chosen.items()))},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "package.json").write_text(json.dumps({**root, "private": True}, indent=2) + "\n")
    (out / "package-lock.json").write_text(json.dumps(subset, indent=2) + "\n")
    print(" ".join(f"{n}@{v}" for n, v in deps.items()), f"+ {len(chosen) - len(names)} deps")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
