#!/usr/bin/env python3
"""What the workspace's LLM gateway adds to a streamed answer: the time to the first token and
the time per token, against a direct connection to the same provider, in one run.

Two paths to one vLLM stand-in (streaming one word per chunk, usage in the last chunk):

  direct   client -> stand-in
  gateway  client -> the auth proxy's LLM gateway (the real one, as the pod runs it) -> stand-in

Requests alternate between the paths so machine noise hits both alike. For each request:
first token = from sending the request to the first chunk with content; per token = how late
each content chunk arrives after the stand-in sent it (the stand-in stamps each chunk with its
send time when asked, ``stream_options.devplane_timestamps``; one machine, one clock), the
median over the answer's chunks. The gateway's cost is the difference of the two paths' p50
(and p95). Target (issue 16): <= 1 ms added at p50 on loopback, for both. Exit status 1 when a
target is missed.

Run: ``.venv/bin/python bench/llm_gateway_latency.py [--requests 200] [--words 64]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from devplane_dev import vllm_stub
from devplane_dev.llm_gateway import start_gateway
from devplane_dev.procs import ManagedProcess, free_port

MODEL = "bench-model"
KEY = "sk-bench"
TARGET_MS = 1.0


def start(work: Path) -> tuple[str, str, list[ManagedProcess]]:
    stub_port = free_port()
    stub = vllm_stub.launch(work / "stub.log", stub_port, MODEL, api_key=KEY)
    direct = f"http://127.0.0.1:{stub_port}/v1"
    config = work / "gateway.json"
    config.write_text(json.dumps({
        "version": 1,
        "providers": [{"name": "vllm", "baseURL": direct, "models": [MODEL],
                       "apiKeyEnv": "DEVPLANE_LLM_API_KEY_VLLM"}],
    }))  # fmt: skip
    try:
        proxy, port = start_gateway(work, config, "bench", {"DEVPLANE_LLM_API_KEY_VLLM": KEY})
    except BaseException:
        stub.stop()
        raise
    return direct, f"http://127.0.0.1:{port}/vllm/v1", [proxy, stub]


def one(session: requests.Session, base: str, words: int, key: str | None) -> tuple[float, float]:
    """(seconds to the first token, median seconds from a token's sending to its arrival) of
    one streamed answer."""
    body = {"model": MODEL, "stream": True, "stream_options": {"devplane_timestamps": True},
            "messages": [{"role": "user", "content": f"WORDS:{words}"}]}  # fmt: skip
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    begun = time.perf_counter()
    first = 0.0
    lags: list[float] = []
    with session.post(f"{base}/chat/completions", json=body, headers=headers, stream=True,
                      timeout=60) as reply:  # fmt: skip
        reply.raise_for_status()
        for line in reply.iter_lines(chunk_size=None):
            if not line.startswith(b"data: {"):
                continue
            chunk = json.loads(line[6:])
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                first = first or time.perf_counter()
                lags.append(time.time() - chunk["devplane_sent"])
    assert len(lags) > 2, f"{base}: {len(lags)} content chunks"
    return first - begun, statistics.median(lags)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--words", type=int, default=64)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="devplane-bench-llm-"))
    direct, gateway, processes = start(work)
    try:
        # The gateway sends the key; the direct path must send it itself.
        paths = {"direct": (direct, KEY), "gateway": (gateway, None)}
        sessions = {name: requests.Session() for name in paths}
        for name, (base, key) in paths.items():  # warm-up: connections, imports, caches
            for _ in range(10):
                one(sessions[name], base, args.words, key)
        samples: dict[str, dict[str, list[float]]] = {n: {"first": [], "per": []} for n in paths}
        for _ in range(args.requests):
            for name, (base, key) in paths.items():
                first, per = one(sessions[name], base, args.words, key)
                samples[name]["first"].append(first * 1000)
                samples[name]["per"].append(per * 1000)
        rows = {
            name: {
                f"{kind}_ms_{q}": round(statistics.median(v) if q == "p50" else pct(v, 95), 3)
                for kind, v in s.items()
                for q in ("p50", "p95")
            }
            for name, s in samples.items()
        }
        added = {
            key: round(rows["gateway"][key] - rows["direct"][key], 3) for key in rows["direct"]
        }
        report = {
            "requests_per_path": args.requests,
            "tokens_per_answer": args.words + 4,
            "paths": rows,
            "gateway_adds_ms": added,
            "target_ms_p50": TARGET_MS,
            "logs": str(work),
        }
        print(json.dumps(report, indent=2))
        ok = added["first_ms_p50"] <= TARGET_MS and added["per_ms_p50"] <= TARGET_MS
        print("targets met" if ok else "TARGET MISSED", file=sys.stderr)
        return 0 if ok else 1
    finally:
        for process in processes:
            process.stop()


if __name__ == "__main__":
    sys.exit(main())
