"""Content key of one image build: a hash of everything the build reads.

    image-key.py --engine podman --context . --dockerfile images/hub/Dockerfile \
        [--build-arg NAME=VALUE]... [--extra TEXT]...     -> prints the key
    image-key.py --dockerfile images/hub/Dockerfile --bases [--build-arg ...]
                                                          -> prints the FROM images, one a line

hack/build-images.sh labels each image with its key and skips the build when an image with that
label already exists, so a warm `make images` with nothing changed costs a few inspects.

The inputs are read from the Dockerfile itself, so a new COPY line is covered without editing
this list: the Dockerfile, every file its COPY/ADD lines (not --from a stage) and its
RUN --mount=type=bind lines take from the context, the image id of each FROM that is not a
stage, the build arguments, and --extra (what else the caller knows matters, e.g. the platform).
Not in the key: the CA bundle (it only lets the build fetch, it never reaches the image).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) pairs, continuation lines joined, comments dropped."""
    out, buf = [], ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def substitute(text: str, args: dict[str, str]) -> str:
    return _VAR.sub(lambda m: args.get(m.group(1) or m.group(2), ""), text)


def parse(dockerfile: Path, build_args: dict[str, str]) -> tuple[list[str], list[str]]:
    """The external FROM images and the context paths the Dockerfile reads."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    bases: list[str] = []
    sources: list[str] = []
    seen_from = False
    for word, rest in instructions(dockerfile):
        if word == "ARG" and not seen_from:
            name, _, default = rest.partition("=")
            args[name] = build_args.get(name, default.strip("\"'"))
        elif word == "FROM":
            seen_from = True
            tokens = [t for t in shlex.split(rest) if not t.startswith("--")]
            image = substitute(tokens[0], args)
            if image not in stages and image != "scratch":
                bases.append(image)
            if len(tokens) >= 3 and tokens[1].lower() == "as":
                stages.add(tokens[2])
        elif word in ("COPY", "ADD"):
            tokens = shlex.split(rest)
            if any(t.startswith("--from") for t in tokens):
                continue
            paths = [t for t in tokens if not t.startswith("--")]
            sources += paths[:-1]
        elif word == "RUN":
            for mount in re.findall(r"--mount=(\S+)", rest):
                opts = dict(kv.partition("=")[::2] for kv in mount.split(","))
                if opts.get("type") == "bind" and "from" not in opts:
                    sources.append(opts.get("source", opts.get("src", ".")))
    return bases, sources


def hash_sources(context: Path, sources: list[str], digest: hashlib._Hash) -> None:
    files: set[Path] = set()
    for source in sources:
        matches = sorted(context.glob(source.lstrip("/").rstrip("/") or "."))
        if not matches:
            sys.exit(f"image-key: {source} (read by the Dockerfile) is not in {context}")
        for match in matches:
            if match.is_dir():
                files.update(p for p in match.rglob("*") if p.is_file())
            else:
                files.add(match)
    for path in sorted(files):
        rel = path.relative_to(context)
        if "__pycache__" in rel.parts:
            continue
        mode = "x" if path.stat().st_mode & 0o111 else "-"
        digest.update(f"{rel} {mode} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())


def image_id(engine: str, ref: str) -> str:
    done = subprocess.run(
        [engine, "image", "inspect", "--format", "{{.Id}}", ref],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"image-key: base image {ref} is not in {engine}'s store (build or pull it first)")
    return done.stdout.strip()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dockerfile", type=Path, required=True)
    parser.add_argument("--context", type=Path, default=Path("."))
    parser.add_argument("--engine", default="podman")
    parser.add_argument("--build-arg", action="append", default=[])
    parser.add_argument("--extra", action="append", default=[])
    parser.add_argument("--bases", action="store_true", help="print the FROM images and stop")
    opts = parser.parse_args(argv)
    build_args = dict(a.partition("=")[::2] for a in opts.build_arg)
    bases, sources = parse(opts.dockerfile, build_args)
    if opts.bases:
        print("\n".join(dict.fromkeys(bases)))
        return 0
    digest = hashlib.sha256()
    digest.update(opts.dockerfile.read_bytes())
    for name in sorted(build_args):
        digest.update(f"arg {name}={build_args[name]}\n".encode())
    for extra in opts.extra:
        digest.update(f"extra {extra}\n".encode())
    for base in dict.fromkeys(bases):
        digest.update(f"from {base} {image_id(opts.engine, base)}\n".encode())
    hash_sources(opts.context, sources, digest)
    print(digest.hexdigest())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
