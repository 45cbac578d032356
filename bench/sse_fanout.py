"""Server CPU per SSE delivery: this server against a minimal aiohttp SSE handler, same run.

The servers run side by side in their own processes for the whole run:
  minimal   the usual aiohttp SSE idiom: a StreamResponse and an asyncio.Queue per
            stream, the publish puts the encoded frame on every queue, each stream's
            handler awaits its queue and writes (the same bytes this server writes)
  floor     the same, but the publish writes each stream's chunk straight to its
            transport: the cost of writing the same bytes to each socket (for reference)
  this      this server at WARNING (pings off), streams on one code, events fired
            with GET /notify
The streams are read by reader processes (never the process that measures). In each
round, for each server in a rotating order, the readers open N streams, K events are
fired one after another, and the round ends when every stream has read every event;
the server process's CPU time over the events is read from /proc. Printed: the median
CPU per delivery of the rounds, per server and stream count, and the ratio the project
targets: this / minimal <= 1.2.

    python bench/sse_fanout.py [--streams 1000 5000] [--events 20] [--rounds 3]

``measure()`` returns the same figures; bench/fanout.py calls it for its targets table.

Linux only (reads /proc/<pid>/stat).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import (PROJECT_ROOT, free_port, new_event_loop,  # noqa: E402
                           process_cpu_seconds, raise_file_limit, ratio_or_none,
                           start_process, stop_process, wait_until_up)

TARGET_RATIO = 1.2
READER_PROCESSES = 2


def serve_minimal(port: int, direct: bool = False) -> None:
    """The baseline: what an aiohttp SSE handler looks like when written plainly.

    ``direct``: the floor instead, the publish writing each stream's chunk straight
    to its transport (what "the cost of writing the same bytes to each socket" is).
    """
    import orjson

    raise_file_limit()
    streams: dict[str, set[Any]] = {}
    sequence = 0

    async def sse_direct(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"retry: 3000\n\n")
        streams.setdefault(request.query["code"], set()).add(request.transport)
        await asyncio.get_running_loop().create_future()  # until the server stops
        return response

    async def sse(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        await response.write(b"retry: 3000\n\n")
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        listeners = streams.setdefault(request.query["code"], set())
        listeners.add(queue)
        try:
            while True:
                await response.write(await queue.get())
        except ConnectionError:
            pass
        finally:
            listeners.discard(queue)
        return response

    async def notify(request: web.Request) -> web.Response:
        nonlocal sequence
        sequence += 1
        data = dict(request.query.items())
        frame = b"id: %d\nevent: %s\ndata: %s\n\n" % (
            sequence, data["event"].upper().encode(), orjson.dumps(data))
        listeners = streams.get(data["code"], set())
        if direct:
            chunk = b"%x\r\n%s\r\n" % (len(frame), frame)
            for transport in list(listeners):
                if transport.is_closing():
                    listeners.discard(transport)
                else:
                    transport.write(chunk)
        else:
            for queue in listeners:
                queue.put_nowait(frame)
        return web.json_response({"success": 1, "count": len(listeners)})

    async def heartbeat(_request: web.Request) -> web.Response:
        return web.json_response({"heartbeat": "OK"})

    app = web.Application()
    app.router.add_get("/sse", sse_direct if direct else sse)
    app.router.add_get("/notify", notify)
    app.router.add_get("/heartbeat", heartbeat)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None,
                loop=new_event_loop())


def read(url: str, streams: int, events: int) -> None:
    """A reader process: open ``streams`` streams, say ``ready``, say ``done`` when each
    has read ``events`` events, then close them all and exit."""
    raise_file_limit()

    async def run() -> None:
        opened = 0
        all_open = asyncio.Event()
        finished = 0
        all_done = asyncio.Event()
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            async def one() -> None:
                nonlocal opened, finished
                async with http.get(url) as response:
                    if response.status != 200:
                        raise SystemExit(f"{url}: status {response.status}")
                    opened += 1
                    if opened == streams:
                        all_open.set()
                    seen = 0
                    async for line in response.content:
                        if line.startswith(b"id: "):
                            seen += 1
                            if seen == events:
                                break
                finished += 1
                if finished == streams:
                    all_done.set()
            readers = [asyncio.ensure_future(one()) for _ in range(streams)]
            await asyncio.wait_for(all_open.wait(), 120)
            print("ready", flush=True)
            await asyncio.wait_for(all_done.wait(), 300)
            print("done", flush=True)
            await asyncio.gather(*readers)

    asyncio.run(run())


async def line_of(process: subprocess.Popen) -> str:
    return (await asyncio.to_thread(process.stdout.readline)).strip()


async def until_no_stream(base: str) -> None:
    """Wait until the last round's streams are gone: the minimal handler only notices a
    closed stream when a write fails, so events are fired until nobody listens."""
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            async with http.get(f"{base}/notify?code=bench&event=flush") as response:
                if (await response.json())["count"] == 0:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{base}: the streams of the last round are still open")


async def one_round(pid: int, base: str, streams: int, events: int) -> float:
    """Server CPU seconds per delivery for ``events`` events to ``streams`` streams."""
    await until_no_stream(base)
    share = [streams // READER_PROCESSES + (index < streams % READER_PROCESSES)
             for index in range(READER_PROCESSES)]
    readers = [subprocess.Popen([sys.executable, __file__, "--read", f"{base}/sse?code=bench",
                                 str(count), str(events)], cwd=PROJECT_ROOT,
                                stdout=subprocess.PIPE, text=True)
               for count in share if count]
    try:
        for reader in readers:
            if await line_of(reader) != "ready":
                raise RuntimeError("a reader could not open its streams")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/notify?code=bench&event=e&n=0") as response:
                count = (await response.json())["count"]
                if count != streams:
                    raise RuntimeError(f"{base}: {count} of {streams} streams listening")
            before = process_cpu_seconds(pid)
            for number in range(1, events):
                async with http.get(f"{base}/notify?code=bench&event=e&n={number}") as response:
                    await response.read()
            for reader in readers:
                if await line_of(reader) != "done":
                    raise RuntimeError("a reader did not get every event")
            after = process_cpu_seconds(pid)
    finally:
        for reader in readers:
            reader.wait(60)
    if before is None or after is None:
        raise SystemExit("this benchmark reads process CPU time from /proc (Linux only)")
    return (after - before) / (streams * (events - 1))


SERVERS = {"minimal": "minimal aiohttp SSE handler",
           "floor": "floor: direct writes",
           "this": "this server"}


async def measure(streams: list[int], events: int = 20, rounds: int = 3) -> dict:
    """Run the three servers and return every round's CPU per delivery (µs) and the medians.

    ``cpu_us[server][n]`` lists the rounds at ``n`` streams, ``median_us[server][n]`` is
    their median, ``ratio[n]`` is this / minimal (the target) and ``floor_ratio[n]``
    this / floor, both ratios of the medians.
    """
    raise_file_limit()
    costs: dict[str, dict[int, list[float]]] = {key: {} for key in SERVERS}
    with tempfile.TemporaryDirectory() as data:
        minimal_port, floor_port, this_port = free_port(), free_port(), free_port()
        servers = [
            ("minimal", minimal_port,
             start_process(__file__, "--serve-minimal", str(minimal_port))),
            ("floor", floor_port,
             start_process(__file__, "--serve-minimal", str(floor_port), "--direct")),
            ("this", this_port,
             start_process("notification_server.py", "-p", str(this_port), "-f", "",
                           "-l", "WARNING", "--data-dir", data, "--sse-ping-interval", "3600",
                           "--lookup-rate", "off",
                           "--max-connections-per-address", str(max(streams) + 100))),
        ]
        try:
            for _key, port, _process in servers:
                await wait_until_up(f"http://127.0.0.1:{port}/heartbeat")
            for count in streams:
                for round_number in range(rounds):
                    shift = round_number % len(servers)
                    for key, port, process in servers[shift:] + servers[:shift]:
                        cost = await one_round(process.pid, f"http://127.0.0.1:{port}",
                                               count, events + 1)
                        costs[key].setdefault(count, []).append(cost * 1e6)
        finally:
            for _key, _port, process in servers:
                stop_process(process)
    medians = {key: {count: statistics.median(values) for count, values in by_count.items()}
               for key, by_count in costs.items()}
    return {"streams": streams, "events": events, "rounds": rounds,
            "readers": READER_PROCESSES, "target_ratio": TARGET_RATIO,
            "cpu_us": costs, "median_us": medians,
            "ratio": {count: ratio_or_none(medians["this"][count], medians["minimal"][count])
                      for count in streams},
            "floor_ratio": {count: ratio_or_none(medians["this"][count], medians["floor"][count])
                            for count in streams}}


def report(results: dict) -> str:
    lines = [f"SSE fan-out: {results['events']} events to N streams on one code, "
             f"{results['rounds']} interleaved rounds, medians; readers in "
             f"{results['readers']} processes of their own", "",
             f"{'server':<30}{'streams':>8}{'CPU per delivery':>18}   rounds (µs)"]
    for count in results["streams"]:
        for key, name in SERVERS.items():
            rounds = " ".join(f"{value:.1f}" for value in results["cpu_us"][key][count])
            lines.append(f"{name:<30}{count:>8}{results['median_us'][key][count]:>15.2f} µs"
                         f"   {rounds}")
    lines.append("")
    for count in results["streams"]:
        ratio, floor = results["ratio"][count], results["floor_ratio"][count]
        if ratio is None:
            lines.append(f"{count:>5} streams: the minimal handler read 0 CPU ticks: "
                         "fire more events (--events)")
            continue
        lines.append(f"{count:>5} streams: this / minimal = {ratio:.2f}x "
                     f"(target <= {TARGET_RATIO}x): "
                     f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}; "
                     f"this / floor = {'-' if floor is None else f'{floor:.2f}'}x")
    return "\n".join(lines)


async def main(options: argparse.Namespace) -> None:
    print(report(await measure(options.streams, options.events, options.rounds)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-minimal", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--read", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--direct", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_minimal:
        serve_minimal(arguments.serve_minimal, arguments.direct)
    elif arguments.read:
        read(arguments.read[0], int(arguments.read[1]), int(arguments.read[2]))
    else:
        asyncio.run(main(arguments))
