"""The fan-out targets of the project in one run: socket.io against Node 4.8, SSE, triggers.

Part ``socketio``: raw WebSocket clients speak engine.io v4 / socket.io v5 directly (no
socket.io client library in the way) and offer permessage-deflate as browsers do. They
run in their own processes; each server is started fresh for every round, and rounds
alternate which server goes first. For every connection count it prints the median of
the rounds and the ratio to Node:

* server CPU per delivery: CPU of the server process (/proc) over a burst of
  broadcasts, divided by broadcasts x connections (the trigger requests included);
* last of N: from sending one trigger until the last client has the event;
* idle RSS per connection: RSS with N idle connections minus RSS before them;
* RSS with no client: the server and its child processes right after start (and how
  many child processes it has then).

Part ``sse``: bench/sse_fanout.py (this server's SSE against a minimal aiohttp SSE
handler); part ``trigger``: bench/trigger.py (GET triggers at WARNING and INFO against a
bare aiohttp handler). Each prints its own table; the run ends with one table of the
project's targets (issue 11), each with its baseline from this run, the ratio, and
"met" / "NOT met" / "not measured (why)", and a line saying whether every one is met.

    python bench/fanout.py [--only socketio,sse,trigger] [--sizes 100,1000,5000] [--rounds 3]
        [--sse-streams 1000,5000] [--sse-events 20] [--sse-rounds 3]
        [--trigger-requests 3000] [--trigger-concurrency 50] [--trigger-rounds 5]
        [--plot docs/fanout.png] [--json fanout.json]

The Node reference lives in bench/node/ (installed with ``npm ci`` when node is present;
otherwise its column, and the targets relative to it, say why it is missing). Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
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
from bench import sse_fanout, trigger as trigger_bench  # noqa: E402
from bench.support import (PROJECT_ROOT, child_pids, free_port,  # noqa: E402
                           process_cpu_seconds, raise_file_limit, rss_bytes)

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
    children: int  # child processes of the server right after start (before any client)


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
        children = len(child_pids(pid))
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
                     idle_kb=idle / 1024, rss_empty_mb=rss_empty / 2**20,
                     children=children)
    finally:
        server.stop()


# -- the run -----------------------------------------------------------------------
def median_round(rounds: list[Round]) -> Round:
    """The median of each figure over the rounds; for child processes the most seen."""
    return Round(cpu_us=statistics.median(r.cpu_us for r in rounds),
                 last_ms=statistics.median(r.last_ms for r in rounds),
                 idle_kb=statistics.median(r.idle_kb for r in rounds),
                 rss_empty_mb=statistics.median(r.rss_empty_mb for r in rounds),
                 children=max(r.children for r in rounds))


async def run(sizes: list[int], rounds: int) -> dict:
    why_no_node = node_missing()
    results: dict = {"sizes": sizes, "rounds": rounds, "node_missing": why_no_node,
                     "this": {}, "node": {}, "no_client": {}}
    every: dict[str, list[Round]] = {"this": [], "node": []}
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
                every[label].append(measured)
                print(f"  {connections:>5} {label:<5} round {number + 1}: "
                      f"{measured.cpu_us:.1f} µs/delivery, last {measured.last_ms:.0f} ms, "
                      f"idle {measured.idle_kb:.1f} KB/conn, empty {measured.rss_empty_mb:.0f} MB"
                      f" with {measured.children} child processes", flush=True)
        results["this"][connections] = median_round(mine).__dict__
        if theirs:
            results["node"][connections] = median_round(theirs).__dict__
    # The server before any client does not depend on the connection count: every round counts.
    for label, measured in every.items():
        if measured:
            results["no_client"][label] = {
                "rss_mb": statistics.median(r.rss_empty_mb for r in measured),
                "children": max(r.children for r in measured), "rounds": len(measured)}
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
            ("idle RSS per connection", "idle_kb", "{:.1f} KB")]
    for title, key, form in rows:
        for connections in results["sizes"]:
            this = results["this"][connections][key]
            node = results["node"].get(connections, {}).get(key)
            lines.append(f"| {title} | {connections:,} | {form.format(this)} | "
                         f"{form.format(node) if node is not None else '-'} | "
                         f"{ratio(this, node)} |")
    this = results["no_client"]["this"]["rss_mb"]
    node = results["no_client"].get("node", {}).get("rss_mb")
    lines.append(f"| RSS with no client (every round) | - | {this:.0f} MB | "
                 f"{f'{node:.0f} MB' if node is not None else '-'} | {ratio(this, node)} |")
    return "\n".join(lines)


# -- the targets of the project (issue 11), each against its baseline of the same run ------
PARTS = ("socketio", "sse", "trigger")
TARGET_SIZES = (1000, 5000)  # socket.io CPU per delivery <= Node's at each
LATENCY_SIZE = MEMORY_SIZE = 5000
TARGET_IDLE_KB = 18.0
ZERO_BASELINE = "the baseline read 0 CPU ticks: a longer run"


@dataclass
class Target:
    """One target: this project's figure, its baseline, the ratio, and whether it is met."""
    title: str
    figure: str = "-"
    baseline: str = "-"
    ratio: float | None = None
    limit: str = ""
    met: bool | None = None       # None: not measured
    not_measured: str = ""        # why, when it was not
    value: float | None = None    # the figure and the baseline as numbers (for --json)
    baseline_value: float | None = None

    @property
    def verdict(self) -> str:
        if self.met is None:
            return f"not measured ({self.not_measured})"
        return "met" if self.met else "NOT met"


def relative(title: str, figure: float | None, baseline: float | None, unit: str, digits: int,
             baseline_name: str, limit: float, why_not: str = "") -> Target:
    """A target "figure <= limit x baseline"; ``why_not`` says why it could not be measured."""
    def show(value: float | None) -> str:
        return "-" if value is None else f"{value:.{digits}f} {unit}"
    target = Target(title, show(figure), show(baseline) + (f" ({baseline_name})"
                                                           if baseline is not None else ""),
                    limit=f"<= {limit:.2f}x {baseline_name}", value=figure,
                    baseline_value=baseline)
    if why_not or figure is None or baseline is None:
        target.not_measured = why_not or "no figure"
        return target
    if not baseline:
        target.not_measured = ZERO_BASELINE
        return target
    target.ratio = figure / baseline
    target.met = target.ratio <= limit
    return target


def socketio_targets(results: dict | None) -> list[Target]:
    skipped = "--only left socketio out" if results is None else ""
    sizes = [] if results is None else results["sizes"]
    node = "not measured" if results is None else ("node missing" if results["node_missing"]
                                                   else "")

    def figure(side: str, size: int, key: str) -> float | None:
        return None if results is None else results[side].get(size, {}).get(key)

    def why(size: int, needs_node: bool = True) -> str:
        if skipped:
            return skipped
        if size not in sizes:
            return f"{size:,} not in --sizes"
        return node if needs_node else ""

    targets = [relative(f"socket.io server CPU per delivery, {size:,} clients",
                        figure("this", size, "cpu_us"), figure("node", size, "cpu_us"),
                        "µs", 1, "Node", 1.0, why(size)) for size in TARGET_SIZES]
    targets.append(relative(f"one broadcast, last of {LATENCY_SIZE:,} clients has it",
                            figure("this", LATENCY_SIZE, "last_ms"),
                            figure("node", LATENCY_SIZE, "last_ms"), "ms", 0, "Node", 1.0,
                            why(LATENCY_SIZE)))
    idle = figure("this", MEMORY_SIZE, "idle_kb")
    memory = Target(f"idle memory per WebSocket connection, {MEMORY_SIZE:,} connections",
                    "-" if idle is None else f"{idle:.1f} KB", "- (absolute)",
                    limit=f"<= {TARGET_IDLE_KB:.0f} KB", value=idle)
    memory.not_measured = why(MEMORY_SIZE, needs_node=False)
    if not memory.not_measured and idle is not None:
        memory.met = idle <= TARGET_IDLE_KB
    targets.append(memory)
    empty = {} if results is None else results["no_client"]
    targets.append(relative("RSS with no client", empty.get("this", {}).get("rss_mb"),
                            empty.get("node", {}).get("rss_mb"), "MB", 0, "Node", 1.0,
                            skipped or node))
    children = empty.get("this", {}).get("children")
    workers = Target("no worker process: the server's children right after start",
                     "-" if children is None else f"{children} (most of any round)",
                     "- (absolute)", limit="none", value=children)
    if children is None:
        workers.not_measured = skipped or "no figure"
    else:
        workers.met = children == 0
    targets.append(workers)
    return targets


def sse_targets(results: dict | None) -> list[Target]:
    if results is None:
        return [relative("SSE CPU per delivery", None, None, "µs", 2, "minimal aiohttp SSE",
                         sse_fanout.TARGET_RATIO, "--only left sse out")]
    return [relative(f"SSE CPU per delivery, {count:,} streams",
                     results["median_us"]["this"][count], results["median_us"]["minimal"][count],
                     "µs", 2, "minimal aiohttp SSE", sse_fanout.TARGET_RATIO)
            for count in results["streams"]]


def trigger_targets(results: dict | None) -> list[Target]:
    why = "--only left trigger out" if results is None else ""
    medians = {} if results is None else results["median_us"]
    targets = [relative("trigger CPU at WARNING", medians.get("warning"), medians.get("bare"),
                        "µs", 1, "bare aiohttp", trigger_bench.TARGET_WARNING_RATIO, why),
               relative("INFO logging: trigger CPU at INFO", medians.get("info"),
                        medians.get("warning"), "µs", 1, "WARNING",
                        1 + trigger_bench.TARGET_INFO_COST, why)]
    if results is not None:
        # the script's own rule: the median of the rounds' ratios (servers back to back)
        limits = (trigger_bench.TARGET_WARNING_RATIO, 1 + trigger_bench.TARGET_INFO_COST)
        for target, key, limit in zip(targets, ("warning_ratio", "info_ratio"), limits):
            target.ratio = results[key]
            if target.ratio is None:
                target.met, target.not_measured = None, ZERO_BASELINE
            else:
                target.met, target.not_measured = target.ratio <= limit, ""
    return targets


def every_target_met(targets: list[Target]) -> bool:
    return all(target.met for target in targets)


def targets_table(targets: list[Target]) -> str:
    lines = ["Targets (issue 11): medians of interleaved rounds, each baseline measured in this "
             "run; trigger ratios are medians of the rounds' ratios (the servers measured back "
             "to back), the others ratios of the medians",
             "| target | this project | baseline, same run | ratio | target | result |",
             "|---|---|---|---|---|---|"]
    for target in targets:
        shown = "-" if target.ratio is None else f"{target.ratio:.2f}"
        lines.append(f"| {target.title} | {target.figure} | {target.baseline} | {shown} | "
                     f"{target.limit} | {target.verdict} |")
    met = sum(target.met is True for target in targets)
    missed = sum(target.met is False for target in targets)
    unmeasured = sum(target.met is None for target in targets)
    if every_target_met(targets):
        lines.append(f"Every target is met ({met} of {len(targets)}).")
    else:
        lines.append(f"Not every target is met: {met} met, {missed} NOT met, "
                     f"{unmeasured} not measured, of {len(targets)}.")
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


def counts(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def parts(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(PARTS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"choose among {','.join(PARTS)}, not {text!r}")
    return chosen


async def run_all(args: argparse.Namespace) -> dict:
    """Each chosen part in turn; the servers and clients of each are processes of their own."""
    report: dict = {"parts": args.only, "socketio": None, "sse": None, "trigger": None}
    if "socketio" in args.only:
        print(f"socket.io fan-out: {args.sizes} connections, rounds: {args.rounds}", flush=True)
        report["socketio"] = await run(args.sizes, args.rounds)
        print(table(report["socketio"]) + "\n", flush=True)
    if "sse" in args.only:
        print(f"SSE fan-out: {args.sse_streams} streams, rounds: {args.sse_rounds}", flush=True)
        report["sse"] = await sse_fanout.measure(args.sse_streams, args.sse_events,
                                                 args.sse_rounds)
        print(sse_fanout.report(report["sse"]) + "\n", flush=True)
    if "trigger" in args.only:
        print(f"Triggers: {args.trigger_requests} requests, rounds: {args.trigger_rounds}",
              flush=True)
        report["trigger"] = await trigger_bench.measure_all(
            args.trigger_requests, args.trigger_concurrency, args.trigger_rounds)
        print(trigger_bench.report(report["trigger"]) + "\n", flush=True)
    targets = (socketio_targets(report["socketio"]) + sse_targets(report["sse"])
               + trigger_targets(report["trigger"]))
    report["targets"] = [dict(target.__dict__, verdict=target.verdict) for target in targets]
    report["every_target_met"] = every_target_met(targets)
    print(targets_table(targets))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", type=parts, default=list(PARTS),
                        help="the parts to run, comma-separated (default: socketio,sse,trigger)")
    parser.add_argument("--sizes", type=counts, default=[100, 1000, 5000],
                        help="socket.io connection counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="socket.io rounds")
    parser.add_argument("--sse-streams", type=counts, default=[1000, 5000],
                        help="SSE stream counts, comma-separated")
    parser.add_argument("--sse-events", type=int, default=20, help="events per SSE round")
    parser.add_argument("--sse-rounds", type=int, default=3)
    parser.add_argument("--trigger-requests", type=int, default=3000,
                        help="triggers per server per round")
    parser.add_argument("--trigger-concurrency", type=int, default=50)
    parser.add_argument("--trigger-rounds", type=int, default=5)
    parser.add_argument("--plot", type=Path, help="write the socket.io PNG plot here")
    parser.add_argument("--json", type=Path,
                        help="write every part's medians and the targets as JSON here")
    args = parser.parse_args()
    largest = max((args.sizes if "socketio" in args.only else [])
                  + (args.sse_streams if "sse" in args.only else []) + [0])
    raise_file_limit(largest * 2 + 1000)
    report = asyncio.run(run_all(args))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    if args.plot:
        if report["socketio"] is None:
            print("no plot: --only left socketio out")
        else:
            plot(report["socketio"], args.plot)
            print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
