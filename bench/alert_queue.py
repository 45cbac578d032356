"""What the alert queue costs the server per alert, against a plain listener.

One server process; two listener processes, each on its own code:
  plain    a socket.io page listening on its code (what alert.html was before the queue)
  overlay  an alert overlay: it also talks to its queue on /alerts, asking for the next
           alert, reporting started and finished for every one (overlay.js's protocol,
           with no time on screen), and the queue writes its state to SQLite
The load generator (this process) fires GET triggers in batches of 20 (a burst of
follows), waits until each listener has dealt with the batch, and reads the server's
CPU time. Rounds alternate between the codes; the figures are medians over rounds.
Prints server CPU per alert for each and the ratio. Then, in this process, what
the queue's Hub observer adds to every publish on a channel with no overlay (the
path every other event takes), against building the publish answer alone.

    python bench/alert_queue.py [--alerts 600] [--rounds 5]

With ``--redis`` it measures instead what the alert box costs a node with
``--redis-url`` (its own redis-server, no persistence) on publishes that reach
no overlay: POST /broadcast to a code nobody opened an overlay for (the queue's
observer runs) against the same to a channel that is not a code (the observer
returns at once), 20 at a time, rounds interleaved. Prints, per publish, the
node's and Redis's CPU time, the Redis commands it ran, and the median latency.

    python bench/alert_queue.py --redis [--publishes 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import aiohttp
import socketio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import (free_port, process_cpu_seconds, start_process,  # noqa: E402
                           stop_process, wait_until_up)

BATCH = 20


async def listen(url: str, code: str, overlay: bool) -> None:
    """A listener process: prints "played N" for every alert it dealt with."""
    client = socketio.AsyncClient(reconnection=False)
    pending: list[dict] = []
    busy = asyncio.Lock()
    played = 0

    async def cycle() -> None:
        nonlocal played
        async with busy:
            while pending:
                have = [pending.pop(0)]
                answer = await client.call("ALERT", {"op": "next", "have": have},
                                           namespace="/alerts", timeout=10)
                while answer.get("play"):
                    alert_id = answer["play"]["id"]
                    await client.emit("ALERT", {"op": "started", "id": alert_id,  # as overlay.js
                                                "duration": 0.0}, namespace="/alerts")
                    answer = await client.call("ALERT", {"op": "finished", "id": alert_id},
                                               namespace="/alerts")
                    played += 1
                    print(f"played {played}", flush=True)

    async def on_event(name: str, data: object = None, meta: dict | None = None) -> None:
        nonlocal played
        if not isinstance(meta, dict) or name.startswith("ALERT") or name == "WELCOME":
            return
        if overlay:
            pending.append({"id": meta["id"], "name": name, "time": meta["time"]})
            asyncio.ensure_future(cycle())
        else:
            played += 1
            print(f"played {played}", flush=True)

    client.on("*", on_event)
    auth = {"code": code, "overlay": "bench-overlay", "presence": {"visible": True}}
    await client.connect(url, auth=auth, transports=["websocket"],
                         namespaces=["/", "/alerts"] if overlay else ["/"])
    print("ready", flush=True)
    await client.wait()


class Listener:
    def __init__(self, url: str, code: str, overlay: bool) -> None:
        self.process = asyncio.create_subprocess_exec(
            sys.executable, __file__, "--listen", url, code, "overlay" if overlay else "plain",
            stdout=asyncio.subprocess.PIPE)
        self.played = 0

    async def start(self) -> None:
        self.process = await self.process
        assert (await self.process.stdout.readline()).strip() == b"ready"

    async def until(self, count: int) -> None:
        while self.played < count:
            line = await asyncio.wait_for(self.process.stdout.readline(), 30)
            if line.startswith(b"played "):
                self.played = int(line.split()[1])

    def stop(self) -> None:
        self.process.kill()


async def fire_batch(http: aiohttp.ClientSession, url: str, code: str) -> None:
    async def one(n: int) -> None:
        async with http.get(f"{url}/notify", params={"code": code, "event": "follow",
                                                     "user": f"user{n}"}) as response:
            assert response.status == 200
            await response.read()
    await asyncio.gather(*(one(n) for n in range(BATCH)))


async def main(options: argparse.Namespace) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as folder:
        server = start_process("notification_server.py", "--data-dir", folder, "-p", str(port),
                               "--loglevel", "WARNING", "--logfile", "")
        try:
            await wait_until_up(url + "/heartbeat")
            listeners = {"plain": Listener(url, "plain-code", False),
                         "overlay": Listener(url, "overlay-code", True)}
            for listener in listeners.values():
                await listener.start()
            per_alert: dict[str, list[float]] = {name: [] for name in listeners}
            batches = max(1, options.alerts // BATCH)
            async with aiohttp.ClientSession() as http:
                await fire_batch(http, url, "plain-code")  # warm both paths up
                await fire_batch(http, url, "overlay-code")
                for listener in listeners.values():
                    await listener.until(BATCH)
                for _round in range(options.rounds):
                    for name, listener in listeners.items():  # interleaved
                        code = f"{name}-code"
                        before = process_cpu_seconds(server.pid)
                        for _batch in range(batches):
                            await fire_batch(http, url, code)
                            await listener.until(listener.played + BATCH)
                        after = process_cpu_seconds(server.pid)
                        if before is None or after is None:
                            raise SystemExit("needs /proc to read the server's CPU time")
                        per_alert[name].append((after - before) / (batches * BATCH))
            for listener in listeners.values():
                listener.stop()
        finally:
            stop_process(server)
    plain = statistics.median(per_alert["plain"])
    overlay = statistics.median(per_alert["overlay"])
    print(f"server CPU per alert, median of {options.rounds} interleaved rounds of "
          f"{batches * BATCH} alerts (bursts of {BATCH}):")
    print(f"  plain listener (baseline)          {plain * 1e6:8.0f} µs")
    print(f"  alert overlay with its queue       {overlay * 1e6:8.0f} µs   "
          f"({overlay / plain:.2f}x the baseline)")
    print(f"  rounds: plain {[round(v * 1e6) for v in per_alert['plain']]} µs, "
          f"overlay {[round(v * 1e6) for v in per_alert['overlay']]} µs")


async def observer_cost(rounds: int, count: int = 100_000) -> None:
    """Median µs per publish the observer adds on a code nobody opened an overlay for."""
    import time

    from notification_service.alerts.overlays import QueueObserver
    from notification_service.alerts.queue_store import MemoryQueueStore
    from notification_service.alerts.sqlite import AlertDatabase
    from notification_service.events import Event
    from notification_service.hub import DeliveryReport

    with tempfile.TemporaryDirectory() as folder:
        database = AlertDatabase(Path(folder) / "alerts.sqlite3")
        await database.open()
        observer = QueueObserver(lambda: MemoryQueueStore(database))
        event = Event("e-1", "1234", "FOLLOW", {"code": "1234", "event": "follow",
                                                "user": "bob"}, time.time())
        with_observer, alone = [], []
        for _round in range(rounds):  # interleaved
            start = time.perf_counter()
            for _ in range(count):
                DeliveryReport(event)
            alone.append((time.perf_counter() - start) / count)
            start = time.perf_counter()
            for _ in range(count):
                await observer.observe(event, DeliveryReport(event))
            with_observer.append((time.perf_counter() - start) / count)
        await database.close()
    added = statistics.median(with_observer) - statistics.median(alone)
    print(f"observer on a publish to a code without overlays: +{added * 1e6:.2f} µs "
          f"(median of {rounds} rounds of {count}; a whole GET trigger costs about 73 µs, "
          f"FACTS.md)")


async def redis_cost(options: argparse.Namespace) -> None:
    """Per publish without overlays, on a node with --redis-url: a code against a non-code."""
    import subprocess
    import time

    import redis.asyncio as aioredis

    redis_port, port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    redis_url = f"redis://127.0.0.1:{redis_port}/0"
    channels = {"code": "bench-code", "not a code": "bench:room"}
    measured: dict[str, dict[str, list[float]]] = {
        name: {"node": [], "redis": [], "commands": [], "latency": []} for name in channels}
    with tempfile.TemporaryDirectory() as folder:
        store = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind",
                                  "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                                  folder], stdout=subprocess.DEVNULL)
        server = None
        client = aioredis.from_url(redis_url)
        try:
            for _ in range(100):
                try:
                    await client.ping()
                    break
                except aioredis.ConnectionError:
                    await asyncio.sleep(0.05)
            server = start_process("notification_server.py", "--data-dir", folder, "-p",
                                   str(port), "--loglevel", "WARNING", "--logfile", "",
                                   "--redis-url", redis_url, "--node-name", "bench")
            await wait_until_up(url + "/heartbeat")

            async def commands() -> float:
                stats = await client.info("commandstats")
                return sum(value["calls"] for value in stats.values())

            async with aiohttp.ClientSession() as http:
                async def publish(channel: str, n: int) -> float:
                    began = time.perf_counter()
                    async with http.post(f"{url}/broadcast/{channel}/FOLLOW",
                                         json={"user": f"user{n}"}) as response:
                        assert response.status == 200, await response.text()
                        await response.read()
                    return time.perf_counter() - began

                async def batch(channel: str, count: int) -> list[float]:
                    latencies: list[float] = []
                    for start in range(0, count, BATCH):
                        latencies += await asyncio.gather(*(publish(channel, n) for n in
                                                            range(start, start + BATCH)))
                    return latencies

                for channel in channels.values():  # warm up
                    await batch(channel, 200)
                for _round in range(options.rounds):
                    for name, channel in channels.items():  # interleaved
                        node_before = process_cpu_seconds(server.pid)
                        redis_before = process_cpu_seconds(store.pid)
                        commands_before = await commands()
                        latencies = await batch(channel, options.publishes)
                        commands_after = await commands()
                        node_after = process_cpu_seconds(server.pid)
                        redis_after = process_cpu_seconds(store.pid)
                        if None in (node_before, node_after, redis_before, redis_after):
                            raise SystemExit("needs /proc to read CPU times")
                        count = options.publishes
                        figures = measured[name]
                        figures["node"].append((node_after - node_before) / count)
                        figures["redis"].append((redis_after - redis_before) / count)
                        # the INFO call itself is one command
                        figures["commands"].append((commands_after - commands_before - 1)
                                                   / count)
                        figures["latency"].append(statistics.median(latencies))
        finally:
            await client.aclose()
            if server is not None:
                stop_process(server)
            stop_process(store)
    medians = {name: {key: statistics.median(values) for key, values in figures.items()}
               for name, figures in measured.items()}
    base, code = medians["not a code"], medians["code"]
    print(f"a node with --redis-url, publishes reaching no overlay, medians of "
          f"{options.rounds} interleaved rounds of {options.publishes} ({BATCH} at a time):")
    print(f"  {'':28} {'node CPU':>10} {'Redis CPU':>10} {'Redis cmds':>10} {'latency':>10}")
    for label, figures in (("channel, not a code (base)", base), ("code without overlays", code)):
        print(f"  {label:28} {figures['node'] * 1e6:8.0f}µs {figures['redis'] * 1e6:8.1f}µs "
              f"{figures['commands']:10.2f} {figures['latency'] * 1e3:8.2f}ms")
    print(f"  ratio code/base: node CPU {code['node'] / base['node']:.3f}x, Redis CPU "
          f"{code['redis'] / base['redis']:.3f}x, Redis commands "
          f"{code['commands'] / base['commands']:.3f}x, latency "
          f"{code['latency'] / base['latency']:.3f}x")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--listen":
        asyncio.run(listen(sys.argv[2], sys.argv[3], sys.argv[4] == "overlay"))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=600, help="alerts per round and code")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis", action="store_true",
                        help="measure a node with --redis-url on publishes reaching no overlay")
    parser.add_argument("--publishes", type=int, default=2000,
                        help="--redis: publishes per round and channel")
    arguments = parser.parse_args()
    if arguments.redis:
        asyncio.run(redis_cost(arguments))
        sys.exit(0)
    asyncio.run(main(arguments))
    asyncio.run(observer_cost(arguments.rounds))
