"""Three nodes on Redis against one node, in the same run: node CPU per event, latency, losses.

Each round runs both modes on fresh processes, interleaved (single, cluster,
single, cluster, ...), and the table shows the median of the rounds:
  single   one node, no Redis; 2 socket.io listeners on it
  cluster  a redis-server of its own (no persistence) and 3 nodes; every event is
           published to node 0 and one listener on each of nodes 1 and 2 measures
           the cross-node path
A load generator process publishes ``--events`` events with ``POST /broadcast``
at ``--rate`` events/s, each carrying its send time; a listener process (two
WebSocket clients) records publish-to-receive latency and what arrived.
Node CPU is read from /proc for every node process over the publishing phase.
Targets: cluster node CPU per event at most 2x single-node (all nodes together,
and per node), cross-node p99 at most 5 ms at 1,000 events/s, 0 lost.

    python bench/cluster.py [--events 5000] [--rate 1000] [--rounds 3]
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
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import (PROJECT_ROOT, free_port, percentile, stop_process,  # noqa: E402
                           process_cpu_seconds, wait_until_up)

# Not a listening code: the alert queue (which keeps a code's queue in Redis in
# cluster mode, one more Redis call per alert) stays out of what is measured.
CHANNEL = "bench:cluster"
SERVER = PROJECT_ROOT / "notification_server.py"


# -- the listener and load generator processes --------------------------------
async def listen(urls: list[str], count: int, timeout: float) -> None:
    """One WebSocket per URL, speaking engine.io/socket.io by hand (a python-socketio client
    costs several times more per message, and the listener must not be what is measured);
    print "ready", then a JSON line with what arrived."""
    import aiohttp
    import orjson

    received: list[list[float]] = [[] for _ in urls]
    ids: list[set[str]] = [set() for _ in urls]
    done = asyncio.Event()
    ready: list[asyncio.Event] = [asyncio.Event() for _ in urls]

    async def one(index: int, url: str, http: aiohttp.ClientSession) -> None:
        address = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        async with http.ws_connect(address) as socket:
            async for message in socket:
                text = message.data
                if text.startswith("0"):
                    await socket.send_str("40")
                elif text.startswith("40"):
                    await socket.send_str(f'421["subscribe",{orjson.dumps(CHANNEL).decode()}]')
                elif text.startswith("431"):
                    ready[index].set()
                elif text == "2":
                    await socket.send_str("3")
                elif text.startswith('42["TICK"'):
                    now = time.time()
                    _name, data, meta = orjson.loads(text[2:])
                    received[index].append(now - data["t"])
                    ids[index].add(meta["id"])
                    if all(len(found) >= count for found in ids):
                        done.set()
                        return

    async with aiohttp.ClientSession() as http:
        tasks = [asyncio.ensure_future(one(index, url, http)) for index, url in enumerate(urls)]
        for event in ready:
            await event.wait()
        print("ready", flush=True)
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        for task in tasks:
            task.cancel()
    print(json.dumps({"latencies": received, "counts": [len(found) for found in ids]}),
          flush=True)


async def generate(url: str, count: int, rate: float) -> None:
    """Publish ``count`` events at ``rate``/s to ``url``; print a JSON line of the answers."""
    import aiohttp

    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as http:
        async def one(number: int) -> None:
            async with http.post(f"{url}/broadcast/{CHANNEL}/TICK",
                                 json={"n": number, "t": time.time()}) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1

        started = time.perf_counter()
        tasks = []
        for number in range(count):
            delay = started + number / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(number)))
        await asyncio.gather(*tasks)
    print(json.dumps({"statuses": statuses}), flush=True)


# -- the orchestrator -----------------------------------------------------------
@dataclass
class Outcome:
    cpu_total: float  # node CPU seconds per event, all nodes together
    cpu_per_node: float
    p50: float  # seconds, publish to receive (cluster: listeners on other nodes)
    p99: float
    lost: int
    failed: int  # publishes not answered 200


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=PROJECT_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def start_node(folder: Path, name: str, redis_url: str | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    flags = ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(folder / name),
             "--logfile", str(folder / f"{name}.log"), "--loglevel", "WARNING"]
    if redis_url:
        flags += ["--redis-url", redis_url, "--node-name", name]
    return start(str(SERVER), *flags), f"http://127.0.0.1:{port}"


async def run_mode(cluster: bool, events: int, rate: float) -> Outcome:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        processes: list[subprocess.Popen] = []
        redis_url = None
        try:
            if cluster:
                port = free_port()
                processes.append(subprocess.Popen(
                    [shutil.which("redis-server") or "redis-server", "--port", str(port),
                     "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                     "--dir", str(folder)], stdout=subprocess.DEVNULL))
                redis_url = f"redis://127.0.0.1:{port}/0"
                await asyncio.sleep(0.3)
            nodes = [start_node(folder, f"node{index}", redis_url)
                     for index in range(3 if cluster else 1)]
            processes += [process for process, _url in nodes]
            for _process, url in nodes:
                await wait_until_up(url + "/heartbeat")
            urls = [url for _process, url in nodes]
            listener_urls = urls[1:] if cluster else urls * 2
            listener = start(__file__, "--role", "listen", "--urls", *listener_urls,
                             "--events", str(events))
            processes.append(listener)
            assert listener.stdout is not None
            await asyncio.get_running_loop().run_in_executor(None, listener.stdout.readline)
            await asyncio.sleep(0.5)  # cluster: listener counts reach Redis (every 0.1 s)
            before = [process_cpu_seconds(process.pid) or 0.0 for process, _url in nodes]
            generator = start(__file__, "--role", "generate", "--urls", urls[0],
                              "--events", str(events), "--rate", str(rate))
            processes.append(generator)
            out, _ = await asyncio.get_running_loop().run_in_executor(None, generator.communicate)
            published = json.loads(out.strip().splitlines()[-1])["statuses"]
            arrived_line = await asyncio.get_running_loop().run_in_executor(
                None, listener.stdout.readline)
            after = [process_cpu_seconds(process.pid) or 0.0 for process, _url in nodes]
        finally:
            for process in reversed(processes):
                stop_process(process)
    arrived = json.loads(arrived_line)
    flat = [value for one in arrived["latencies"] for value in one]
    cpu = sum(after) - sum(before)
    by_node = [round((a - b) / events * 1e6) for a, b in zip(after, before)]
    print(f"  node CPU per event by node (node 0 publishes): {by_node} µs", flush=True)
    ok = int(published.get("200", 0))
    return Outcome(cpu / events, cpu / events / len(nodes), percentile(flat, 0.5),
                   percentile(flat, 0.99), sum(max(0, ok - count) for count in arrived["counts"]),
                   events - ok)


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs"


async def orchestrate(events: int, rate: float, rounds: int) -> None:
    results: dict[str, list[Outcome]] = {"single": [], "cluster": []}
    for round_number in range(rounds):
        for mode in ("single", "cluster"):
            outcome = await run_mode(mode == "cluster", events, rate)
            results[mode].append(outcome)
            print(f"round {round_number + 1} {mode:7}: node CPU {us(outcome.cpu_total)}/event "
                  f"({us(outcome.cpu_per_node)} per node), p50 {outcome.p50 * 1000:.2f} ms, "
                  f"p99 {outcome.p99 * 1000:.2f} ms, lost {outcome.lost}, "
                  f"failed {outcome.failed}", flush=True)

    def median(mode: str, name: str) -> float:
        return statistics.median(getattr(outcome, name) for outcome in results[mode])

    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    print(f"\n{events} events at {rate:g}/s, medians of {rounds} interleaved rounds "
          f"(load average at the end: {load})\n")
    print("| mode | node CPU per event (all nodes) | per node | publish-to-receive p50 | p99 | lost |")
    print("|---|---|---|---|---|---|")
    for mode, label in (("single", "1 node"), ("cluster", "3 nodes + Redis (cross-node)")):
        print(f"| {label} | {us(median(mode, 'cpu_total'))} | {us(median(mode, 'cpu_per_node'))} "
              f"| {median(mode, 'p50') * 1000:.2f} ms | {median(mode, 'p99') * 1000:.2f} ms "
              f"| {sum(outcome.lost + outcome.failed for outcome in results[mode])} |")
    total_ratio = median("cluster", "cpu_total") / median("single", "cpu_total")
    node_ratio = median("cluster", "cpu_per_node") / median("single", "cpu_per_node")
    print(f"\ncluster/single node CPU per event: {total_ratio:.2f}x all nodes together, "
          f"{node_ratio:.2f}x per node (target <= 2x); cross-node p99 "
          f"{median('cluster', 'p99') * 1000:.2f} ms (target <= 5 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=("run", "listen", "generate"), default="run")
    parser.add_argument("--urls", nargs="*", default=[])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    if arguments.role == "listen":
        asyncio.run(listen(arguments.urls, arguments.events, timeout=arguments.events / 100 + 30))
    elif arguments.role == "generate":
        asyncio.run(generate(arguments.urls[0], arguments.events, arguments.rate))
    else:
        asyncio.run(orchestrate(arguments.events, arguments.rate, arguments.rounds))


if __name__ == "__main__":
    main()
