#!/usr/bin/env python3
"""Drive DevPlane through JupyterHub's REST API: create a user, start their workspace with a
profile, follow the start-up progress, print the terminal URL, then stop the workspace.

    export DEVPLANE_HUB_URL=http://127.0.0.1:8000     # the hub's public URL
    export DEVPLANE_API_TOKEN=...                      # `make demo` prints one
    python examples/rest_workspace.py dana --profile large

The token needs the scopes admin:users, admin:servers and read:servers (the hub config's
`devplane-automation` service has exactly these). Exit status: 0 on success, 1 on an error
the hub reported (the message is printed), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import requests


class HubError(RuntimeError):
    pass


class Hub:
    def __init__(self, url: str, token: str) -> None:
        self.api = url.rstrip("/") + "/hub/api"
        self.public = url.rstrip("/")
        self.session = requests.Session()
        # The token goes in a header, never in a URL (URLs end up in logs).
        self.session.headers["Authorization"] = f"token {token}"

    def call(self, method: str, path: str, ok: tuple[int, ...], **kwargs) -> requests.Response:
        resp = self.session.request(method, self.api + path, timeout=30, **kwargs)
        if resp.status_code not in ok:
            try:
                message = resp.json().get("message", resp.text)
            except ValueError:
                message = resp.text
            raise HubError(f"{method} {path}: HTTP {resp.status_code}: {message}")
        return resp

    def ensure_user(self, name: str) -> None:
        resp = self.call("POST", f"/users/{name}", ok=(201, 409))
        print(f"user {name}: {'created' if resp.status_code == 201 else 'already exists'}")

    def start(self, name: str, profile: str) -> None:
        # user_options: the same choice the spawn form offers; an unknown profile is a 400.
        resp = self.call(
            "POST", f"/users/{name}/server", ok=(201, 202, 400), json={"profile": profile}
        )
        if resp.status_code == 400 and "already running" not in resp.text:
            raise HubError(f"start refused: {resp.json().get('message', resp.text)}")
        print(f"workspace of {name}: start requested (profile {profile})")

    def follow_progress(self, name: str, timeout: float) -> str:
        """Print the progress events until the workspace is ready; return its URL."""
        deadline = time.monotonic() + timeout
        with self.session.get(
            f"{self.api}/users/{name}/server/progress", stream=True, timeout=timeout
        ) as resp:
            if resp.status_code != 200:
                raise HubError(f"progress stream: HTTP {resp.status_code}: {resp.text[:300]}")
            for line in resp.iter_lines(decode_unicode=True):
                if time.monotonic() > deadline:
                    raise HubError(f"not ready after {timeout:.0f}s")
                if not line or not line.startswith("data:"):
                    continue
                event = json.loads(line[len("data:") :])
                print(f"  [{event.get('progress', '?'):>3}%] {event.get('message', '')}")
                if event.get("failed"):
                    raise HubError(f"start failed: {event.get('message')}")
                if event.get("ready"):
                    return self.public + event["url"]
        # The stream ends without a ready event when the server was already up.
        server = self.call("GET", f"/users/{name}", ok=(200,)).json()["servers"].get("")
        if server and server.get("ready"):
            return self.public + server["url"]
        raise HubError("the progress stream ended before the workspace was ready")

    def stop(self, name: str, timeout: float) -> None:
        self.call("DELETE", f"/users/{name}/server", ok=(202, 204))
        deadline = time.monotonic() + timeout
        while self.call("GET", f"/users/{name}", ok=(200,)).json()["servers"]:
            if time.monotonic() > deadline:
                raise HubError(f"workspace of {name} still stopping after {timeout:.0f}s")
            time.sleep(1)
        print(f"workspace of {name}: stopped (the home volume is kept)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("user", help="hub user name to create (or reuse)")
    parser.add_argument("--profile", default="small", help="profile slug (default: small)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for ready")
    parser.add_argument("--keep", action="store_true", help="leave the workspace running")
    args = parser.parse_args(argv)
    url = os.environ.get("DEVPLANE_HUB_URL", "http://127.0.0.1:8000")
    token = os.environ.get("DEVPLANE_API_TOKEN")
    if not token:
        print("set DEVPLANE_API_TOKEN to a hub API token", file=sys.stderr)
        return 2
    hub = Hub(url, token)
    try:
        hub.ensure_user(args.user)
        hub.start(args.user, args.profile)
        terminal = hub.follow_progress(args.user, args.timeout)
        print(f"workspace of {args.user} is ready: {terminal}")
        if not args.keep:
            hub.stop(args.user, args.timeout)
    except (HubError, requests.RequestException) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
