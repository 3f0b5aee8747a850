"""What the auth proxy costs a terminal: keystroke echo latency and bulk output throughput.

Three paths to one ttyd, measured in the same run, interleaved so drift hits all alike:

  direct    client -> ttyd
  chp       client -> configurable-http-proxy -> ttyd
  authproxy client -> configurable-http-proxy -> DevPlane auth proxy -> ttyd

The auth proxy's own cost is ``authproxy - chp``. Everything is real: a JupyterHub (for the
OAuth cookie the auth proxy demands), the auth proxy the hub spawned, configurable-http-proxy
from node_modules, ttyd 1.7.7 on loopback TCP (so "direct" is possible; in the pod it is on a
unix socket). ttyd runs a shell that reads one line: the echo part never ends it (the pty
echoes each key at once), the bulk part types ``bulk`` and Enter, and the shell prints
BULK_BYTES bytes and a marker. (It used to choose with ttyd's ``?arg=bulk``, but the auth
proxy rightly passes no query string to ttyd since issue 13: a URL must not choose the
command's arguments.)

Run: ``.venv/bin/python bench/terminal_overhead.py [--keys 400] [--bulk-mib 32] [--rounds 3]``
Targets (issue 14; bench/figures.py): the auth proxy adds <= 0.15 ms at p50 and <= 0.3 ms at
p95 to the echo, and keeps >= 90 % of chp->ttyd throughput. Exit status 1 when a target is
missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests
from devplane_dev.localhub import LocalHub
from devplane_dev.paths import TTYD_BINARY
from devplane_dev.procs import ManagedProcess, free_port, port_open, short_tempdir
from devplane_dev.proxy import ConfigurableHttpProxy
from figures import record
from websockets.asyncio.client import connect

BASE = "/ttyd"  # ttyd's --base-path, so chp can route to it without rewriting paths
OWNER = "bench"
END_MARKER = b"BULK-END"
# One line read: "bulk" prints a block of output; keystrokes without Enter are only echoed.
TTYD_COMMAND = [
    "bash",
    "-c",
    'IFS= read -r mode; if [ "$mode" = bulk ]; then head -c "$BULK_BYTES" /dev/zero | tr'
    ' "\\0" x; printf "\\nBULK-END\\n"; sleep 1; fi',
]


class Paths:
    """The three WebSocket URLs and what each needs (cookie, origin)."""

    def __init__(self, ttyd_port: int, chp_port: int, cookie: str) -> None:
        self.urls = {
            "direct": (f"ws://127.0.0.1:{ttyd_port}{BASE}/ws", "", ttyd_port),
            "chp": (f"ws://127.0.0.1:{chp_port}{BASE}/ws", "", chp_port),
            "authproxy": (f"ws://127.0.0.1:{chp_port}/user/{OWNER}/ws", cookie, chp_port),
        }

    async def open(self, name: str):
        url, cookie, port = self.urls[name]
        headers = {"Sec-Fetch-Mode": "websocket", **({"Cookie": cookie} if cookie else {})}
        ws = await connect(
            url,
            subprotocols=["tty"],
            additional_headers=headers,
            origin=f"http://127.0.0.1:{port}",
            ping_interval=None,
            max_size=None,
            compression=None,
        )
        await ws.send(json.dumps({"AuthToken": "", "columns": 200, "rows": 50}).encode())
        return ws


async def _drain(ws, quiet: float = 0.3) -> None:
    while True:
        try:
            await asyncio.wait_for(ws.recv(), quiet)
        except TimeoutError:
            return


# No frame for this long means the path lost one: fail with what was awaited, never hang (a
# `make bench` once waited on a lost echo until it was killed).
RECV_TIMEOUT = 15.0


async def _recv(ws, waiting_for: str) -> bytes:
    try:
        return await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)
    except TimeoutError:
        raise RuntimeError(
            f"no frame for {RECV_TIMEOUT:.0f} s while waiting for {waiting_for}"
        ) from None


async def _echo_once(ws, key: bytes) -> float:
    start = time.perf_counter()
    await ws.send(b"0" + key)
    while True:
        frame = await _recv(ws, f"the echo of {key!r}")
        if frame[:1] == b"0" and key in frame[1:]:
            return (time.perf_counter() - start) * 1000


async def echo_latencies(paths: Paths, names: list[str], keys: int) -> dict[str, list[float]]:
    """Milliseconds from sending one key to receiving its echo, per path.

    The paths take turns key by key, so a burst of load from anything else on the machine
    lands on all three alike instead of on whichever path happened to be measured then.
    """
    sockets = {name: await paths.open(name) for name in names}
    try:
        for ws in sockets.values():
            await _drain(ws)
        samples: dict[str, list[float]] = {name: [] for name in names}
        for i in range(keys):
            key = b"abcdefghijklmnopqrstuvwxyz"[i % 26 : i % 26 + 1]
            for name, ws in sockets.items():
                samples[name].append(await _echo_once(ws, key))
            if i % 200 == 199:
                for ws in sockets.values():
                    # Keep cat's line (and the pty's 4 KiB line buffer) short.
                    await ws.send(b"0\x15")
                    await _drain(ws, 0.05)
        return samples
    finally:
        for ws in sockets.values():
            await ws.close()


async def bulk_throughput(paths: Paths, name: str) -> float:
    """MiB/s of terminal output, from the first output byte to the end marker."""
    ws = await paths.open(name)
    try:
        await _drain(ws)
        await ws.send(b"0bulk\r")
        received = 0
        first = None
        tail = b""
        while True:
            frame = await _recv(ws, f"{END_MARKER!r} on path {name} after {received} bytes")
            if frame[:1] != b"0" or (first is None and b"x" not in frame):
                continue  # not output, or still the echo of what was typed
            if first is None:
                first = time.perf_counter()
            received += len(frame) - 1
            tail = (tail + frame[1:])[-64:]
            if END_MARKER in tail:
                break
        return received / (time.perf_counter() - first) / 2**20
    finally:
        await ws.close()


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listener_pid(port: int) -> int:
    """The pid of the process listening on 127.0.0.1:port (from `ss -ltnp`)."""
    out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True)
    match = re.search(r"pid=(\d+)", out.stdout)
    if not match:
        raise SystemExit(f"no process listens on port {port}")
    return int(match.group(1))


async def measure(
    paths: Paths, keys: int, rounds: int, pids: dict[str, int]
) -> dict[str, dict[str, float]]:
    names = ["direct", "chp", "authproxy"]
    await echo_latencies(paths, names, 30)  # warm-up: connections, route caches
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    echo = await echo_latencies(paths, names, keys)
    # CPU per keystroke does not depend on what else the machine is doing, unlike latency:
    # chp carried two of the three paths' keystrokes, the auth proxy one.
    carried = {"chp": 2 * keys, "authproxy": keys}
    cpu_us = {
        name: (cpu_seconds(pid) - cpu_before[name]) / carried[name] * 1e6
        for name, pid in pids.items()
    }
    bulk: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(rounds):
        for name in names:
            bulk[name].append(await bulk_throughput(paths, name))
    return {
        n: {
            "keys": len(echo[n]),
            "p50_ms": statistics.median(echo[n]),
            "p95_ms": percentile(echo[n], 0.95),
            "mib_s": statistics.median(bulk[n]),
            "cpu_us_per_key": cpu_us.get(n, 0.0),
        }
        for n in names
    }


def report(results: dict[str, dict[str, float]], bulk_mib: int) -> bool:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nkeystroke echo ({results['direct']['keys']} keys per path, interleaved) and "
          f"{bulk_mib} MiB bulk output (median of rounds); {os.cpu_count()} CPUs, "
          f"load average {load}:")  # fmt: skip
    print(f"{'path':<34}{'p50 ms':>9}{'p95 ms':>9}{'MiB/s':>9}")
    labels = {
        "direct": "ttyd directly",
        "chp": "chp -> ttyd",
        "authproxy": "chp -> auth proxy -> ttyd",
    }
    for name, label in labels.items():
        r = results[name]
        print(f"{label:<34}{r['p50_ms']:>9.3f}{r['p95_ms']:>9.3f}{r['mib_s']:>9.1f}")
    chp, auth = results["chp"], results["authproxy"]
    print(
        f"CPU per keystroke round trip: chp {chp['cpu_us_per_key']:.0f} us, "
        f"auth proxy {auth['cpu_us_per_key']:.0f} us"
    )
    add50 = auth["p50_ms"] - chp["p50_ms"]
    add95 = auth["p95_ms"] - chp["p95_ms"]
    ratio = auth["mib_s"] / chp["mib_s"]
    ok = all(
        [
            record("proxy_echo_p50", add50),
            record("proxy_echo_p95", add95),
            record("proxy_throughput", ratio),
        ]
    )
    print(
        f"\nauth proxy adds {add50:.3f} ms p50 (target <= 0.15), {add95:.3f} ms p95 "
        f"(target <= 0.3); throughput {ratio:.0%} of chp -> ttyd (target >= 90%): "
        f"{'OK' if ok else 'MISSED'}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=450, help="keystrokes per path (>= 300)")
    parser.add_argument("--bulk-mib", type=int, default=32, help="bulk output size per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args()

    work = short_tempdir("dpb-")
    procs: list[ManagedProcess] = []
    hub = None
    try:
        ttyd_port = free_port()
        ttyd = ManagedProcess(
            [str(TTYD_BINARY), "-W", "-i", "lo", "-p", str(ttyd_port), "-b", BASE,
             *TTYD_COMMAND],
            work / "ttyd.log",
            env={"PATH": "/usr/bin:/bin", "BULK_BYTES": str(args.bulk_mib * 2**20),
                 "HOME": str(work), "TERM": "xterm-256color"},
        )  # fmt: skip
        procs.append(ttyd)
        ttyd.wait_until("its port", lambda: port_open(ttyd_port), 10)

        # A real hub only to spawn the auth proxy and hand out its OAuth cookie.
        hub = LocalHub(
            work / "hub",
            users={OWNER: False},
            upstream_template=f"http://127.0.0.1:{ttyd_port}{BASE}",
            # Reports are throttled anyway; keep them out of the measurement window.
            spawner_environment={"DEVPLANE_ACTIVITY_INTERVAL": "3600"},
        )
        hub.start()
        hub.start_server(OWNER)
        session = hub.login(OWNER)
        if hub.open_server(session, OWNER).status_code != 200:
            raise SystemExit("could not open the benchmark user's terminal through the hub")
        cookie = hub.cookie_header(session, f"/user/{OWNER}/ws")
        authproxy_target = hub.proxy_routes()[f"/user/{OWNER}"]["target"]

        # The measured chp: same binary and defaults as the hub's, two routes.
        chp = ConfigurableHttpProxy(work)
        procs.append(chp.process)
        for route, target in ((BASE, f"http://127.0.0.1:{ttyd_port}"),
                              (f"/user/{OWNER}", authproxy_target)):  # fmt: skip
            requests.post(
                f"{chp.api_url}/api/routes{route}",
                json={"target": target},
                headers={"Authorization": f"token {chp.token}"},
                timeout=10,
            ).raise_for_status()

        paths = Paths(ttyd_port, chp.port, cookie)
        pids = {
            "chp": chp.process.pid,
            "authproxy": listener_pid(int(authproxy_target.rsplit(":", 1)[1])),
        }
        results = asyncio.run(measure(paths, args.keys, args.rounds, pids))
        ok = report(results, args.bulk_mib)
        return 0 if ok else 1
    finally:
        if hub is not None:
            hub.stop()
        for proc in reversed(procs):
            proc.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
