#!/usr/bin/env python3
"""Find the retained home volumes whose owners are gone, and reclaim them.

Under `reclaimPolicy: Retain` (the default) a home volume outlives its Workspace, so a user
deleted and re-created in the hub gets their files back. Nothing ever deletes it, so the volumes
of people who left pile up. This lists every home volume of a workspace namespace with its
owner (the `devplane.io/owner` annotation the operator writes), whether a Workspace still uses
it and, given the hub's URL and an admin token, whether the hub still knows the owner. With
`--delete` it deletes the volumes that no Workspace uses and whose owner the hub no longer
knows — never one whose owner still exists (they get their files back at their next start).

  .venv/bin/python hack/home-volumes.py -n devplane-workspaces
  .venv/bin/python hack/home-volumes.py -n devplane-workspaces \\
      --hub-url https://devplane.example.internal --hub-token-file token.txt [--delete]

Needs a Python with DevPlane's `devplane_api` (a checkout's .venv after `make setup-python`, or
wherever the devplane wheel is installed: names are computed as the operator computes them)
and kubectl with access to the namespace; the token is
the hub's automation token or any token allowed to read users. docs/admin-guide.md,
"Reclaiming home volumes", explains it and gives the same by hand with kubectl.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from devplane_api import naming
from devplane_api.v1alpha1 import (
    GROUP,
    MANAGED_BY_SELECTOR,
    OWNER_ANNOTATION,
    PLURAL,
    SERVER_LABEL,
)

IN_USE = "in use"
KEPT = "kept: the owner still exists"
RECLAIMABLE = "reclaimable: no Workspace, owner gone"
UNKNOWN = "no Workspace (owner not checked: give --hub-url)"


class Refusal(Exception):
    """Something the admin must fix; the message says what."""


@dataclass(frozen=True)
class Volume:
    name: str
    owner: str
    server: str
    size: str
    created: str
    state: str


def kubectl(args: argparse.Namespace, *command: str) -> str:
    argv = [args.kubectl, *(["--kubeconfig", args.kubeconfig] if args.kubeconfig else [])]
    proc = subprocess.run([*argv, "-n", args.namespace, *command], capture_output=True, text=True)
    if proc.returncode != 0:
        raise Refusal(f"kubectl {' '.join(command)} failed: {proc.stderr.strip()}")
    return proc.stdout


def volumes_in_use(args: argparse.Namespace) -> set[str]:
    """The home volumes the namespace's Workspaces use (named from owner and server, as the
    operator names them, whatever the Workspace is called)."""
    listing = json.loads(kubectl(args, "get", f"{PLURAL}.{GROUP}", "-o", "json"))
    return {
        naming.pvc_name(ws["spec"]["owner"], ws["spec"].get("serverName") or "")
        for ws in listing["items"]
    }


def owner_exists(args: argparse.Namespace, token: str, owner: str) -> bool:
    url = f"{args.hub_url.rstrip('/')}/hub/api/users/{quote(owner, safe='')}"
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30):
            return True
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return False
        raise Refusal(
            f"the hub answered {err.code} for user {owner!r} at {url}: check --hub-url (with the "
            "hub's base URL) and that the token may read users"
        ) from None
    except urllib.error.URLError as err:
        raise Refusal(f"cannot reach the hub at {url}: {err.reason}") from None


def survey(args: argparse.Namespace, token: str | None) -> list[Volume]:
    claims = json.loads(kubectl(args, "get", "pvc", "-l", MANAGED_BY_SELECTOR, "-o", "json"))
    used = volumes_in_use(args)
    result = []
    for claim in claims["items"]:
        meta = claim["metadata"]
        owner = (meta.get("annotations") or {}).get(OWNER_ANNOTATION, "")
        if not owner:
            continue  # not a home volume the operator made
        if meta["name"] in used:
            state = IN_USE
        elif token is None:
            state = UNKNOWN
        else:
            state = KEPT if owner_exists(args, token, owner) else RECLAIMABLE
        result.append(
            Volume(
                name=meta["name"],
                owner=owner,
                server=(meta.get("labels") or {}).get(SERVER_LABEL, ""),
                size=claim["spec"]["resources"]["requests"].get("storage", ""),
                created=meta.get("creationTimestamp", ""),
                state=state,
            )
        )
    return sorted(result, key=lambda v: v.name)


def table(volumes: list[Volume]) -> str:
    rows = [("VOLUME", "OWNER", "SERVER", "SIZE", "CREATED", "STATE")]
    rows += [(v.name, v.owner, v.server or "-", v.size, v.created, v.state) for v in volumes]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        padded = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*padded, row[-1]]))
    return "\n".join(lines)


def reclaim(args: argparse.Namespace, volumes: list[Volume]) -> list[str]:
    """Delete the reclaimable volumes; each is looked at again just before, so a Workspace
    created in the meantime keeps its volume."""
    deleted = []
    for volume in volumes:
        if volume.state != RECLAIMABLE:
            continue
        if volume.name in volumes_in_use(args):
            print(f"skipped {volume.name}: a Workspace uses it now", file=sys.stderr)
            continue
        kubectl(args, "delete", "pvc", volume.name, "--wait=false")
        deleted.append(volume.name)
    return deleted


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="home-volumes.py",
        description="List the home volumes of a workspace namespace; reclaim those whose "
        "Workspace and owner are gone.",
    )
    parser.add_argument("-n", "--namespace", required=True, help="the workspace namespace")
    parser.add_argument("--kubectl", default="kubectl", help="the kubectl command")
    parser.add_argument("--kubeconfig", default="", help="kubectl's --kubeconfig")
    parser.add_argument("--hub-url", default="", help="the hub's URL, with its base URL")
    parser.add_argument("--hub-token-file", default="", help="a file holding a hub API token")
    parser.add_argument(
        "--delete", action="store_true", help="delete the reclaimable volumes (needs --hub-url)"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        if bool(args.hub_url) != bool(args.hub_token_file):
            raise Refusal("--hub-url and --hub-token-file go together: give both or neither")
        if args.delete and not args.hub_url:
            raise Refusal(
                "--delete needs --hub-url and --hub-token-file: a volume is deleted only when "
                "the hub no longer knows its owner"
            )
        token = Path(args.hub_token_file).read_text().strip() if args.hub_token_file else None
        volumes = survey(args, token)
        print(table(volumes))
        if args.delete:
            for name in reclaim(args, volumes):
                print(f"deleted {name}")
    except (Refusal, OSError) as err:
        print(f"home-volumes.py: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
