"""socket.io fan-out over WebSocket: this server against Node's socket.io 4.8, side by side.

Raw WebSocket clients speak engine.io v4 / socket.io v5 directly (no socket.io
client library in the way) and offer permessage-deflate as browsers do. They
run in their own processes; each server is started fresh for every round, and
rounds alternate which server goes first. For every connection count it prints
the median of the rounds and the ratio to Node:

* server CPU per delivery: CPU of the server process (/proc) over a burst of
  broadcasts, divided by broadcasts x connections (the trigger requests included);
* last of N: from sending one trigger until the last client has the event;
* idle RSS per connection: RSS with N idle connections minus RSS before them;
* RSS with no client: the server and its child processes right after start.

    python bench/fanout.py [--sizes 100,1000,5000] [--rounds 3] [--plot docs/fanout.png]

The Node reference lives in bench/node/ (installed with ``npm ci`` when node
is present; otherwise its column says why it is missing). Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.support import PROJECT_ROOT, free_port, process_cpu_seconds  # noqa: E402

NODE_DIR = PROJECT_ROOT / "bench" / "node"
CODE = "bench"
DELIVERIES = 100_000  # per CPU measurement: /proc counts CPU in 10 ms ticks
SINGLES = 5         # single broadcasts per latency measurement
CLIENT_PROCESSES = 2
CONNECT_CONCURRENCY = 100


# -- client processes ---------------------------------------------------------
@dataclass
class Expectation:
    prefix: str
    count: int
    remaining: int
    last: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)


class ClientFleet:
    """The raw engine.io/socket.io connections of one client process."""

    def __init__(self) -> None:
        self.sockets: list[aiohttp.ClientWebSocketResponse] = []
        self.readers: list[asyncio.Task] = []
        self.expectation: Expectation | None = None
        self.counts: list[int] = []

    async def connect(self, session: aiohttp.ClientSession, url: str, count: int) -> int:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        opened = 0

        async def one() -> None:
            nonlocal opened
            async with gate:
                for _attempt in range(5):
                    try:
                        ws = await session.ws_connect(url, compress=15, autoping=True,
                                                      max_msg_size=0, heartbeat=None)
                        first = await ws.receive(timeout=30)
                        if not (isinstance(first.data, str) and first.data.startswith("0")):
                            raise RuntimeError(f"no engine.io OPEN: {first.data!r}")
                        await ws.send_str("40")
                        break
                    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                        await asyncio.sleep(0.2)
                else:
                    return
            index = len(self.sockets)
            self.sockets.append(ws)
            self.counts.append(0)
            self.readers.append(asyncio.create_task(self.read(ws, index)))
            opened += 1

        await asyncio.gather(*(one() for _ in range(count)))
        return opened

    async def read(self, ws: aiohttp.ClientWebSocketResponse, index: int) -> None:
        counts = self.counts
        async for message in ws:
            data = message.data
            if not isinstance(data, str):
                continue
            if data == "2":
                await ws.send_str("3")
                continue
            expectation = self.expectation
            if expectation is not None and data.startswith(expectation.prefix):
                counts[index] += 1
                if counts[index] == expectation.count:
                    expectation.remaining -= 1
                    if expectation.remaining == 0:
                        expectation.last = time.monotonic()
                        expectation.done.set()

    def expect(self, event: str, count: int) -> Expectation:
        self.counts[:] = [0] * len(self.counts)
        self.expectation = Expectation(f'42["{event}"', count, len(self.sockets))
        if not self.sockets:
            self.expectation.done.set()
        return self.expectation

    async def close(self) -> None:
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


def client_process(pipe: Connection) -> None:
    """Runs in its own process: obeys the coordinator's commands over ``pipe``."""
    asyncio.run(_client_main(pipe))


async def _client_main(pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    fleet = ClientFleet()
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        while True:
            command, *args = await loop.run_in_executor(None, pipe.recv)
            if command == "connect":
                pipe.send(await fleet.connect(session, *args))
            elif command == "expect":
                expectation = fleet.expect(*args)
                pipe.send("ready")
                try:
                    await asyncio.wait_for(expectation.done.wait(), 120)
                    pipe.send(expectation.last)
                except asyncio.TimeoutError:
                    pipe.send(None)
            elif command == "close":
                await fleet.close()
                pipe.send("closed")
                return


class Clients:
    """The coordinator's handle on the client processes."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for _ in range(processes):
            mine, theirs = context.Pipe()
            process = context.Process(target=client_process, args=(theirs,), daemon=True)
            process.start()
            self.pipes.append(mine)
            self.processes.append(process)

    async def ask(self, *command: object) -> list[object]:
        loop = asyncio.get_running_loop()
        for pipe in self.pipes:
            pipe.send(command)
        return [await loop.run_in_executor(None, pipe.recv) for pipe in self.pipes]

    async def connect(self, url: str, total: int) -> int:
        shares = [total // len(self.pipes) + (i < total % len(self.pipes))
                  for i in range(len(self.pipes))]
        loop = asyncio.get_running_loop()
        for pipe, share in zip(self.pipes, shares):
            pipe.send(("connect", url, share))
        return sum([await loop.run_in_executor(None, pipe.recv) for pipe in self.pipes])

    async def start_expecting(self, event: str, count: int) -> None:
        loop = asyncio.get_running_loop()
        for pipe in self.pipes:
            pipe.send(("expect", event, count))
        for pipe in self.pipes:
            assert await loop.run_in_executor(None, pipe.recv) == "ready"

    async def arrivals(self) -> float | None:
        loop = asyncio.get_running_loop()
        lasts = [await loop.run_in_executor(None, pipe.recv) for pipe in self.pipes]
        return None if None in lasts else max(lasts)



# -- servers -------------------------------------------------------------------
def rss_bytes(pid: int) -> int:
    """RSS of ``pid`` and its descendants (the Web Push pool's children count too)."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(rss_bytes(int(child)) for child in children)


class Server:
    name: str

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def socket_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/socket.io/?EIO=4&transport=websocket&code={CODE}"

    def command(self) -> list[str]:
        raise NotImplementedError

    async def start(self) -> None:
        self.process = subprocess.Popen(self.command(), cwd=PROJECT_ROOT,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        async with aiohttp.ClientSession() as http:
            for _ in range(400):
                try:
                    async with http.get(f"{self.base}/heartbeat") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        raise RuntimeError(f"{self.name} did not come up")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


class ThisServer(Server):
    name = "this project"

    def __init__(self) -> None:
        super().__init__()
        self.data = tempfile.TemporaryDirectory()

    def command(self) -> list[str]:
        return [sys.executable, "notification_server.py", "-p", str(self.port), "-f", "",
                "-l", "WARNING", "--data-dir", self.data.name,
                "--max-connections-per-address", "100000", "--lookup-rate", "off"]


class NodeServer(Server):
    name = "Node socket.io 4.8"

    def command(self) -> list[str]:
        return ["node", str(NODE_DIR / "server.js"), str(self.port)]


def node_missing() -> str | None:
    """Why the Node column cannot be measured, or None once it is installed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node/npm not installed"
    if not (NODE_DIR / "node_modules" / "socket.io").is_dir():
        result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                                capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            return "npm ci failed: " + (result.stderr.strip().splitlines() or ["?"])[-1]
    return None


# -- one measurement -------------------------------------------------------------
@dataclass
class Round:
    cpu_us: float
    last_ms: float
    idle_kb: float
    rss_empty_mb: float


async def trigger(http: aiohttp.ClientSession, server: Server, event: str, n: int) -> int:
    async with http.get(f"{server.base}/notify",
                        params={"code": CODE, "event": event, "n": str(n)}) as response:
        return int((await response.json())["count"])


async def measure(server: Server, clients: Clients, connections: int) -> Round:
    await server.start()
    try:
        assert server.process is not None
        pid = server.process.pid
        await asyncio.sleep(1.0)
        rss_empty = rss_bytes(pid)
        opened = await clients.connect(server.socket_url, connections)
        if opened != connections:
            raise RuntimeError(f"{server.name}: only {opened} of {connections} connected")
        async with aiohttp.ClientSession() as http:
            for attempt in range(200):  # every connection has joined the room
                await clients.start_expecting("W", 1)
                if await trigger(http, server, "W", attempt) == connections:
                    break
                await clients.arrivals()
                await asyncio.sleep(0.1)
            if await clients.arrivals() is None:
                raise RuntimeError(f"{server.name}: warm-up event did not reach everyone")
            await asyncio.sleep(2.0)
            idle = (rss_bytes(pid) - rss_empty) / connections

            burst = max(20, DELIVERIES // connections)
            await clients.start_expecting("B", burst)
            cpu_before = process_cpu_seconds(pid)
            for number in range(burst):
                await trigger(http, server, "B", number)
            if await clients.arrivals() is None:
                raise RuntimeError(f"{server.name}: a burst event was lost")
            cpu = (process_cpu_seconds(pid) or 0.0) - (cpu_before or 0.0)

            lasts = []
            for number in range(SINGLES):
                await asyncio.sleep(0.3)
                await clients.start_expecting("L", 1)
                sent = time.monotonic()
                await trigger(http, server, "L", number)
                last = await clients.arrivals()
                if last is None:
                    raise RuntimeError(f"{server.name}: a single event was lost")
                lasts.append(last - sent)
        await clients.ask("close")
        return Round(cpu_us=cpu / (burst * connections) * 1e6,
                     last_ms=statistics.median(lasts) * 1000,
                     idle_kb=idle / 1024, rss_empty_mb=rss_empty / 2**20)
    finally:
        server.stop()


# -- the run -----------------------------------------------------------------------
def raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        sys.exit(f"ulimit -n is {soft}; {needed} connections need more (raise the hard limit)")


def median_round(rounds: list[Round]) -> Round:
    return Round(*(statistics.median(getattr(r, name) for r in rounds)
                   for name in ("cpu_us", "last_ms", "idle_kb", "rss_empty_mb")))


async def run(sizes: list[int], rounds: int) -> dict:
    why_no_node = node_missing()
    results: dict = {"sizes": sizes, "rounds": rounds, "node_missing": why_no_node,
                     "this": {}, "node": {}}
    for connections in sizes:
        mine: list[Round] = []
        theirs: list[Round] = []
        for number in range(rounds):
            order = [("this", ThisServer)] + ([] if why_no_node else [("node", NodeServer)])
            if number % 2:
                order.reverse()
            for label, kind in order:
                clients = Clients(CLIENT_PROCESSES)
                try:
                    # a fresh client fleet per measurement: ask("close") ended the last one
                    measured = await measure(kind(), clients, connections)
                finally:
                    for process in clients.processes:
                        process.join(5)
                        if process.is_alive():
                            process.kill()
                (mine if label == "this" else theirs).append(measured)
                print(f"  {connections:>5} {label:<5} round {number + 1}: "
                      f"{measured.cpu_us:.1f} µs/delivery, last {measured.last_ms:.0f} ms, "
                      f"idle {measured.idle_kb:.1f} KB/conn, empty {measured.rss_empty_mb:.0f} MB",
                      flush=True)
        results["this"][connections] = median_round(mine).__dict__
        if theirs:
            results["node"][connections] = median_round(theirs).__dict__
    return results


def ratio(a: float, b: float | None) -> str:
    return f"{a / b:.2f}" if b else "-"


def table(results: dict) -> str:
    node_note = results["node_missing"]
    lines = [f"medians of {results['rounds']} interleaved rounds; ratio = this / Node"
             + (f" (Node column missing: {node_note})" if node_note else ""),
             "| figure | clients | this project | Node socket.io 4.8 | ratio |",
             "|---|---|---|---|---|"]
    rows = [("server CPU per delivery", "cpu_us", "{:.1f} µs"),
            ("one broadcast, last client has it", "last_ms", "{:.0f} ms"),
            ("idle RSS per connection", "idle_kb", "{:.1f} KB"),
            ("RSS with no client", "rss_empty_mb", "{:.0f} MB")]
    for title, key, form in rows:
        for connections in results["sizes"]:
            this = results["this"][connections][key]
            node = results["node"].get(connections, {}).get(key)
            lines.append(f"| {title} | {connections:,} | {form.format(this)} | "
                         f"{form.format(node) if node is not None else '-'} | "
                         f"{ratio(this, node)} |")
            if key == "rss_empty_mb":
                break
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = results["sizes"]
    figure, (cpu, memory) = plt.subplots(1, 2, figsize=(10, 4))
    for label, key, style in (("this project", "this", "o-"), ("Node socket.io 4.8", "node", "s--")):
        if not results[key]:
            continue
        cpu.plot(sizes, [results[key][n]["cpu_us"] for n in sizes], style, label=label)
        memory.plot(sizes, [results[key][n]["idle_kb"] for n in sizes], style, label=label)
    for axes, title, unit in ((cpu, "server CPU per delivery", "µs"),
                              (memory, "idle RSS per WebSocket connection", "KB")):
        axes.set_xscale("log")
        axes.set_xlabel("connections (raw WebSocket clients)")
        axes.set_ylabel(unit)
        axes.set_title(title)
        axes.set_ylim(bottom=0)
        axes.grid(True, alpha=0.3)
        axes.legend()
    figure.suptitle(f"socket.io fan-out, medians of {results['rounds']} interleaved rounds")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,5000",
                        help="connection counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--plot", type=Path, help="write the PNG plot here")
    parser.add_argument("--json", type=Path, help="write the medians as JSON here")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    raise_file_limit(max(sizes) * 2 + 1000)
    results = asyncio.run(run(sizes, args.rounds))
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if args.plot:
        plot(results, args.plot)
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
