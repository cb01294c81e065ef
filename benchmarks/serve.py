"""A bounded load test of ``rnnkit serve``: dynamic batching against one request at a time.

Usage: ``python benchmarks/serve.py [--run RUN] [--clients 32] [--requests 320] [--quick]``

The server runs as its own process (``rnnkit serve RUN --threads 1`` on a free loopback port),
so the load generator does not share its interpreter. ``--clients`` asyncio clients (aiohttp:
httpx's async pool, at 32 connections, caps a trivial endpoint near 140 requests/s here) send ``--requests`` translation requests in all, one sentence each (beam 5), as fast as answers
come back, and stop. Two servers are measured, in this order, on the same sentences:

1. **batched**: the defaults (``--batch-wait-ms 5 --max-batch 64``): concurrent requests are
   decoded together by the batched beam search;
2. **one at a time**: ``--max-batch 1``: every request is its own beam search, as a server without
   dynamic batching does.

Each prints requests/s, p50 and p99 latency, the errors (any status but 200) and the server's
resident memory before the load and after it (flat memory: the second within a few MB of the
first after warm-up); last, the throughput ratio (aim: at least 3x at 32 clients).

Without ``--run`` a translation model of the demo's emoji config (GRU + additive attention,
E 64, H 128) is trained for 300 steps into a temporary folder first (about a minute); sentences
are the ``emoji-en-fr`` test names. About 3 minutes on 2 cores (``--quick``: 64 requests).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

from rnnkit import api
from rnnkit.data.corpora import load_corpus
from rnnkit.demo import EMOJI_CONFIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def train_run(folder: Path) -> Path:
    """The demo's emoji attention model, 300 steps: a real model with real sentence lengths."""
    train = {"max_steps": 300, "eval_every": 300, "checkpoint_every": 300, "progress": False}
    config = api.build_run_config({**EMOJI_CONFIG, "train": {**EMOJI_CONFIG["train"], **train}})
    run = folder / "emoji"
    api.train(config, run)
    return run


class Server:
    """``rnnkit serve`` in a child process on a free port."""

    def __init__(self, run: Path, *flags: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "rnnkit", "serve", str(run), "--port", str(self.port)]
        command += ["--threads", "1", "--max-in-flight", "1000", "--timeout", "120", *flags]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


async def load(url: str, name: str, sentences: list[str], clients: int) -> tuple[list[float], int]:
    """Send every sentence once from ``clients`` concurrent clients; latencies (s), errors."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for s in sentences:
        queue.put_nowait(s)
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                sentence = queue.get_nowait()
                started = time.perf_counter()
                body = {"inputs": [sentence], "beam_size": 5}
                async with session.post(f"/v1/{name}/predict", json=body) as response:
                    await response.read()
                    errors += response.status != 200
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, errors


def measure(run: Path, label: str, sentences: list[str], clients: int, *flags: str) -> float:
    """One server's figures, printed as a table row; returns its requests/s."""
    with Server(run, *flags) as server:
        pid = server.process.pid
        asyncio.run(load(server.url, run.name, sentences[: 2 * clients], clients))  # warm up
        before = rss_mb(pid)
        started = time.perf_counter()
        latencies, errors = asyncio.run(load(server.url, run.name, sentences, clients))
        elapsed = time.perf_counter() - started
        after = rss_mb(pid)
    rate = len(sentences) / elapsed
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"| {label} | {rate:.1f} | {1000 * statistics.median(latencies):.0f} | "
        f"{1000 * quantiles[98]:.0f} | {errors} | {before:.0f} -> {after:.0f} |",
        flush=True,
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a translation run (default: train one)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=320)
    parser.add_argument("--quick", action="store_true", help="64 requests")
    args = parser.parse_args()
    requests = 64 if args.quick else args.requests
    names = [en for en, _ in load_corpus("emoji-en-fr", "test")]
    sentences = [names[i % len(names)] for i in range(requests)]
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run or train_run(Path(tmp))
        print(
            f"load average {os.getloadavg()[0]:.2f}; {requests} requests from {args.clients} "
            f"clients, beam 5, one sentence each, run {run.name}\n"
        )
        print("| server | requests/s | p50 ms | p99 ms | errors | RSS MB before -> after |")
        print("|---|---|---|---|---|---|")
        batched = measure(run, "batched (wait 5 ms, max 64)", sentences, args.clients)
        alone = measure(
            run, "one at a time (max batch 1)", sentences, args.clients, "--max-batch", "1"
        )
        print(f"\nthroughput ratio batched / one at a time: {batched / alone:.1f}x")
        print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
