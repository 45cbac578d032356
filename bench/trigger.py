"""Server CPU per GET trigger, against a bare aiohttp handler answering 200, at WARNING and INFO.

Three servers run side by side, each in its own process, and stay up for the whole run:
  bare      an aiohttp handler that only answers the seed-0 JSON (the ceiling of this stack)
  WARNING   this server at --loglevel WARNING, logging to a file
  INFO      this server at --loglevel INFO, logging to a file
Each of this server's two has one socket.io listener on the code, in a process of its
own (a listener inside the load generator would steal its CPU and skew the answer
times). The load generator (this process, 50 keep-alive clients per server, connected
once for the whole run) fires the same requests at each server in turn: within a round
the servers take turns in 20 slices (bare, WARNING, INFO, bare, ...), round after round
in a rotating order; each server process's CPU time is read to the nanosecond from its
POSIX CPU-time clock (from /proc in 10 ms ticks where that clock is missing). Printed:
the median of the rounds for each server, and the ratios the project targets:
  WARNING / bare <= 1.25;  INFO / WARNING <= 1.05.

    python bench/trigger.py [--requests 3000] [--concurrency 50] [--rounds 5] [--slices 20]

``measure_all()`` returns the same figures; bench/fanout.py calls it for its targets table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import (PROJECT_ROOT, free_port, new_event_loop,  # noqa: E402
                           process_cpu_seconds, ratio_or_none, start_process, stop_process,
                           wait_until_up)

TARGET_WARNING_RATIO = 1.25
TARGET_INFO_COST = 0.05
SLICES = 20
"""Turns each server takes within a round (see :func:`measure_round`): the machine's load
drifts over seconds, and short turns spread each drift over all three servers."""


def serve_bare(port: int) -> None:
    """The ceiling: the same stack (aiohttp, uvloop if present) with no work at all."""
    async def handler(_request: web.Request) -> web.Response:
        return web.json_response({"success": 1, "count": 0, "msg": "Broadcast event to 0 clients"})

    app = web.Application()
    app.router.add_get("/notify", handler)
    app.router.add_get("/heartbeat", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                loop=new_event_loop())


def listen(url: str) -> None:
    """A socket.io listener process: prints ``ready`` once registered, then counts events."""
    import socketio

    async def run() -> None:
        client = socketio.AsyncClient(reconnection=False)
        received = 0

        def on_tick(*_arguments: object) -> None:
            nonlocal received
            received += 1
        client.on("TICK", on_tick)
        registered = asyncio.Event()
        client.on("WELCOME", lambda *_arguments: registered.set())
        await client.connect(f"{url}?code=bench", transports=["websocket"])
        await asyncio.wait_for(registered.wait(), 10)
        print("ready", flush=True)
        await client.wait()

    asyncio.run(run())


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen
    listener: subprocess.Popen | None = None
    http: aiohttp.ClientSession | None = None  # the load generator's keep-alive clients
    cpu_per_request: list[float] = field(default_factory=list)  # one figure per round

    @property
    def median(self) -> float:
        return statistics.median(self.cpu_per_request)


async def fire(server: Server, requests: int, concurrency: int) -> None:
    """``requests`` triggers from ``concurrency`` clients whose keep-alive connections last
    the whole run (a new connection per turn would add its set-up to every figure)."""
    if server.http is None:
        server.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
    http, url = server.http, server.url
    numbers = iter(range(requests))

    async def worker() -> None:
        for n in numbers:
            async with http.get(f"{url}/notify?code=bench&event=tick&n={n}") as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url}: status {response.status}")
    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def measure(server: Server, requests: int, concurrency: int) -> float:
    """Server CPU seconds spent on ``requests`` triggers."""
    before = process_cpu_seconds(server.process.pid)
    await fire(server, requests, concurrency)
    after = process_cpu_seconds(server.process.pid)
    if before is None or after is None:
        raise SystemExit("this benchmark reads another process's CPU time (Linux only)")
    return after - before


async def measure_round(servers: list[Server], requests: int, concurrency: int,
                        slices: int, shift: int) -> None:
    """One round: each server's CPU per request over ``requests`` triggers, in ``slices`` turns.

    The servers take turns slice by slice (bare, WARNING, INFO, bare, ...; the
    first server rotates with ``shift``), so a change in this shared machine's
    load that lasts longer than a slice falls on all of them alike, and the
    round's ratios keep less of it than whole rounds one after the other.
    """
    order = servers[shift:] + servers[:shift]
    for server in order:
        await fire(server, min(300, requests), concurrency)  # warm-up
    spent = {id(server): 0.0 for server in servers}
    per_slice = max(1, requests // slices)
    for _ in range(slices):
        for server in order:
            spent[id(server)] += await measure(server, per_slice, concurrency)
    for server in servers:
        server.cpu_per_request.append(spent[id(server)] / (per_slice * slices))


async def start(name: str, args: list[str], with_listener: bool) -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_process(*args, "-p", str(port)) if args else start_process(
        __file__, "--serve-bare", str(port))
    await wait_until_up(url + "/heartbeat")
    server = Server(name, url, process)
    if with_listener:
        server.listener = subprocess.Popen(
            [sys.executable, __file__, "--listen", url], cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE, text=True)
        line = await asyncio.to_thread(server.listener.stdout.readline)
        if line.strip() != "ready":
            raise RuntimeError(f"the listener of {name} did not register")
    return server


async def measure_all(requests: int = 3000, concurrency: int = 50, rounds: int = 5,
                      slices: int = SLICES) -> dict:
    """Run the three servers and return every round's CPU per request (µs), the medians and
    the ratios the project targets.

    Within a round the three servers take turns in ``slices`` slices (see
    :func:`measure_round`), so a ratio within a round is less exposed to this shared
    machine's drifting load than a ratio of medians taken across rounds:
    ``warning_ratio`` and ``info_ratio`` are the medians of the rounds' ratios
    (WARNING / bare, INFO / WARNING), the ``*_of_medians`` ones are there for comparison.
    """
    with tempfile.TemporaryDirectory() as folder:
        def this_server(level: str) -> list[str]:
            data = Path(folder) / level
            return ["notification_server.py", "--data-dir", str(data),
                    "-f", str(data / "server.log"), "-l", level]

        servers = [await start("bare aiohttp handler", [], False),
                   await start("this server, WARNING", this_server("WARNING"), True),
                   await start("this server, INFO", this_server("INFO"), True)]
        try:
            for round_number in range(rounds):
                await measure_round(servers, requests, concurrency, slices,
                                    round_number % len(servers))
                await asyncio.sleep(0.2)  # let the log writers flush between rounds
        finally:
            for server in servers:
                if server.http is not None:
                    await server.http.close()
                if server.listener is not None:
                    stop_process(server.listener)
                stop_process(server.process)

    bare, warning, info = servers
    return {"requests": requests, "concurrency": concurrency, "rounds": rounds, "slices": slices,
            "names": {"bare": bare.name, "warning": warning.name, "info": info.name},
            "cpu_us": {key: [value * 1e6 for value in server.cpu_per_request]
                       for key, server in (("bare", bare), ("warning", warning),
                                           ("info", info))},
            "median_us": {"bare": bare.median * 1e6, "warning": warning.median * 1e6,
                          "info": info.median * 1e6},
            "warning_ratio": median_ratio(warning.cpu_per_request, bare.cpu_per_request),
            "info_ratio": median_ratio(info.cpu_per_request, warning.cpu_per_request),
            "warning_ratio_of_medians": ratio_or_none(warning.median, bare.median),
            "info_ratio_of_medians": ratio_or_none(info.median, warning.median),
            "info_bare_ratio_of_medians": ratio_or_none(info.median, bare.median),
            "target_warning_ratio": TARGET_WARNING_RATIO,
            "target_info_cost": TARGET_INFO_COST}


def median_ratio(figures: list[float], baselines: list[float]) -> float | None:
    """The median of the rounds' ratios; None if a baseline round read 0 CPU ticks."""
    if not all(baselines):
        return None
    return statistics.median(figure / baseline for figure, baseline in zip(figures, baselines))


def report(results: dict) -> str:
    lines = [f"GET /notify, {results['requests']} requests a round in {results['slices']} "
             f"turns per server, {results['concurrency']} concurrent keep-alive clients, "
             f"{results['rounds']} interleaved rounds, medians; 1 socket.io listener in its "
             f"own process", "",
             f"{'server':<24}{'CPU per request':>17}   rounds (µs)"]
    for key, name in results["names"].items():
        rounds = " ".join(f"{value:.1f}" for value in results["cpu_us"][key])
        lines.append(f"{name:<24}{results['median_us'][key]:>14.1f} µs   {rounds}")
    lines.append("")
    if None in (results["warning_ratio"], results["info_ratio"],
                results["info_bare_ratio_of_medians"]):
        lines.append("a baseline round read 0 CPU ticks: fire more requests (--requests)")
        return "\n".join(lines)
    warning_ratio = results["warning_ratio"]
    info_cost = results["info_ratio"] - 1
    lines += [f"WARNING / bare handler:  {warning_ratio:.2f}x median of the rounds' ratios, "
              f"{results['warning_ratio_of_medians']:.2f}x of the medians  (target <= "
              f"{TARGET_WARNING_RATIO}x): "
              f"{'met' if warning_ratio <= TARGET_WARNING_RATIO else 'NOT met'}",
              f"INFO / bare handler:     {results['info_bare_ratio_of_medians']:.2f}x "
              f"of the medians",
              f"INFO / WARNING:          {info_cost:+.1%} median of the rounds' ratios, "
              f"{results['info_ratio_of_medians'] - 1:+.1%} of the medians  (target <= "
              f"+{TARGET_INFO_COST:.0%}): {'met' if info_cost <= TARGET_INFO_COST else 'NOT met'}"]
    return "\n".join(lines)


async def main(options: argparse.Namespace) -> None:
    print(report(await measure_all(options.requests, options.concurrency, options.rounds,
                                   options.slices)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slices", type=int, default=SLICES,
                        help=f"turns each server takes within a round (default {SLICES})")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--listen", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_bare:
        serve_bare(arguments.serve_bare)
    elif arguments.listen:
        listen(arguments.listen)
    else:
        asyncio.run(main(arguments))
