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


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--listen":
        asyncio.run(listen(sys.argv[2], sys.argv[3], sys.argv[4] == "overlay"))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alerts", type=int, default=600, help="alerts per round and code")
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments))
    asyncio.run(observer_cost(arguments.rounds))
