"""Publishing through the Redis inbox against POST /broadcast, on the same node, in one run.

One node (``--redis-url``, its own redis-server), one socket.io listener in a
process of its own, this process as the load generator. Interleaved rounds
of each way at a steady rate; per round the publish-to-receive latency seen
by the listener (p50, p99) and the node's CPU per event; medians of the
rounds, and the inbox's figures as ratios of /broadcast's:

    python bench/inbox.py [--events 1000] [--rate 500] [--rounds 3]

The /broadcast sender waits for each answer before its next request falls
due, so a stall of the node delays the sending too and hides in its latency;
``XADD`` returns without the node, so the inbox's latency includes every
stall (its p99 is the honest one of the two).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import (PROJECT_ROOT, free_port, ms, percentile,  # noqa: E402
                           process_cpu_seconds, start_process, stop_process, wait_until_up)

WAYS = ("broadcast", "inbox")


async def listen(url: str) -> None:
    """The listener process: one line per event, ``{"round", "latency"}``, on stdout."""
    import socketio

    client = socketio.AsyncClient(reconnection=False)

    @client.on("tick")
    async def tick(data, _meta=None) -> None:
        latency = time.time() - data["sent"]
        print(json.dumps({"round": data["round"], "latency": latency}), flush=True)

    await client.connect(url, transports=["websocket"])
    await client.call("subscribe", "bench")
    print(json.dumps({"ready": True}), flush=True)
    await client.wait()


async def publish_round(way: str, round_number: int, events: int, rate: float,
                        url: str, http: aiohttp.ClientSession, redis: aioredis.Redis) -> None:
    began = time.perf_counter()
    for n in range(events):
        delay = began + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        data = json.dumps({"sent": time.time(), "round": round_number, "n": n})
        if way == "broadcast":
            async with http.post(f"{url}/broadcast/bench/tick", data=data,
                                 headers={"Content-Type": "application/json"}) as response:
                await response.read()
        else:
            await redis.xadd("notify:inbox", {"channel": "bench", "event": "tick", "data": data})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--listen", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.listen:
        await listen(options.listen)
        return

    folder = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    redis_port, node_port = free_port(), free_port()
    redis_server = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(redis_port), "--bind",
         "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    url = f"http://127.0.0.1:{node_port}"
    node = start_process("notification_server.py", "--port", str(node_port), "--redis-url",
                         redis_url, "--data-dir", str(folder / "data"), "--logfile", "",
                         "--loglevel", "WARNING", "--node-name", "bench")
    listener = None
    results: dict[str, list[tuple[float, float, float]]] = {way: [] for way in WAYS}
    try:
        await wait_until_up(f"{url}/heartbeat")
        listener = await asyncio.create_subprocess_exec(
            sys.executable, str(Path(__file__).resolve()), "--listen", url, cwd=PROJECT_ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        line = await asyncio.wait_for(listener.stdout.readline(), 30)
        if not line or not json.loads(line).get("ready"):
            raise RuntimeError("the listener could not connect")
        redis = aioredis.from_url(redis_url)
        async with aiohttp.ClientSession() as http:
            round_number = 0
            for _ in range(options.rounds):
                for way in WAYS:  # interleaved: the machine's noise hits both alike
                    round_number += 1
                    cpu_before = process_cpu_seconds(node.pid) or 0.0
                    await publish_round(way, round_number, options.events, options.rate, url,
                                        http, redis)
                    latencies = []
                    while len(latencies) < options.events:
                        line = await asyncio.wait_for(listener.stdout.readline(), 30)
                        entry = json.loads(line)
                        if entry.get("round") == round_number:
                            latencies.append(entry["latency"])
                    cpu = (process_cpu_seconds(node.pid) or 0.0) - cpu_before
                    results[way].append((percentile(latencies, 0.5), percentile(latencies, 0.99),
                                         cpu / options.events))
        await redis.aclose()
    finally:
        if listener is not None and listener.returncode is None:
            listener.kill()
            await listener.wait()
        stop_process(node)
        stop_process(redis_server)
        shutil.rmtree(folder, ignore_errors=True)

    print(f"{options.events} events per round at {options.rate:g}/s, {options.rounds} "
          f"interleaved rounds per way, medians of the rounds:")
    medians = {way: tuple(statistics.median(r[i] for r in results[way]) for i in range(3))
               for way in WAYS}
    for way, (p50, p99, cpu) in medians.items():
        print(f"  {way:9}  publish-to-receive p50 {ms(p50)}  p99 {ms(p99)}  "
              f"node CPU {cpu * 1e6:.0f} µs/event")
    (b50, b99, bcpu), (i50, i99, icpu) = medians["broadcast"], medians["inbox"]
    print(f"  inbox / broadcast: p50 {i50 / b50:.2f}x  p99 {i99 / b99:.2f}x  "
          f"CPU {icpu / bcpu:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
