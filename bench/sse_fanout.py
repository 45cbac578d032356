"""Server CPU per SSE delivery: N streams on one code, K triggers, CPU read from /proc.

The figure to compare: python-socketio costs about 95 µs of server CPU per delivery
(shared/FACTS.md), because it creates a task and encodes per recipient. The SSE
transport encodes once per event and only appends to each stream's queue.

    python bench/sse_fanout.py [--streams 1000] [--events 20]

Linux only (reads /proc/<pid>/stat); the server runs at WARNING with pings off.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_until_up(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            try:
                async with http.get(url):
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def read_stream(http: aiohttp.ClientSession, url: str, events: int,
                      opened: asyncio.Queue, done: asyncio.Queue) -> None:
    async with http.get(url) as response:
        await opened.put(True)
        seen = 0
        async for line in response.content:
            if line.startswith(b"id: "):
                seen += 1
                if seen == events:
                    break
    await done.put(True)


async def run(streams: int, events: int) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(
            [sys.executable, "notification_server.py", "-p", str(port), "-f", "", "-l", "WARNING",
             "--data-dir", data, "--sse-ping-interval", "3600"],
            cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await wait_until_up(f"{base}/heartbeat")
            connector = aiohttp.TCPConnector(limit=0)
            timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
                opened: asyncio.Queue = asyncio.Queue()
                done: asyncio.Queue = asyncio.Queue()
                readers = [asyncio.create_task(read_stream(http, f"{base}/sse?code=bench", events,
                                                           opened, done))
                           for _ in range(streams)]
                for _ in range(streams):
                    await asyncio.wait_for(opened.get(), 30)
                async with http.get(f"{base}/notify?code=bench&event=warm") as response:
                    assert (await response.json())["count"] == streams
                cpu_before, started = cpu_seconds(server.pid), time.perf_counter()
                for number in range(events - 1):
                    async with http.get(f"{base}/notify?code=bench&event=e&n={number}") as response:
                        await response.read()
                for _ in range(streams):
                    await asyncio.wait_for(done.get(), 60)
                cpu = cpu_seconds(server.pid) - cpu_before
                wall = time.perf_counter() - started
                await asyncio.gather(*readers)
        finally:
            server.terminate()
            server.wait(5)
    deliveries = streams * (events - 1)
    print(f"{streams} SSE streams x {events - 1} events = {deliveries} deliveries "
          f"in {wall:.2f} s wall")
    print(f"server CPU {cpu * 1000:.0f} ms = {cpu / deliveries * 1e6:.1f} µs per delivery, "
          f"{cpu / (events - 1) * 1000:.1f} ms per broadcast to {streams}")
    print("reference: python-socketio ≈ 95 µs per delivery (shared/FACTS.md)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--events", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.streams, args.events + 1))


if __name__ == "__main__":
    main()
