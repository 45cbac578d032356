#!/usr/bin/env python3
"""Web Push sender throughput: this server's sender against a plain loop of pywebpush's webpush().

Both send the same message to the same N subscriptions on a local push service
(``tests/pushservice.py --fast``, a separate process that answers 201 without
checks, so its CPU is not counted). Printed per variant: notifications per
second (wall clock) and CPU per notification of the sending process (worker
processes included when encryption runs in them), then the ratio.

    python bench/webpush.py [-n 1000] [--concurrency 64] [--processes 1] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from py_vapid import Vapid02  # noqa: E402
from pywebpush import webpush  # noqa: E402

from notification_service.webpush import crypto  # noqa: E402
from notification_service.webpush.endpoints import EndpointPolicy  # noqa: E402
from notification_service.webpush.sender import PushOptions, VapidHeaders, WebPushSender  # noqa: E402
from notification_service.webpush.store import Subscription  # noqa: E402
from tests.pushservice import BrowserSubscriber  # noqa: E402

SUBJECT = "mailto:bench@example.com"
MESSAGE = b'{"title":"New follower","body":"bob follows you","url":"/sources/push.html"}'


def start_push_service() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "tests.pushservice", "--fast"], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith("READY "):
        process.kill()
        raise SystemExit(f"push service did not start: {line!r}")
    return process, line.split(" ", 1)[1]


def workers_cpu(pool: ProcessPoolExecutor | None) -> float:
    """CPU seconds used so far by the pool's worker processes (Linux /proc; 0 elsewhere)."""
    if pool is None:
        return 0.0
    total = 0.0
    for pid in list(getattr(pool, "_processes", {}) or {}):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def plain_loop(subscriptions: list[dict], vapid: Vapid02) -> tuple[float, float]:
    """What a solidwebpush-style server does: one blocking webpush() call after another."""
    started, cpu = time.perf_counter(), time.process_time()
    for info in subscriptions:
        webpush(info, MESSAGE.decode(), vapid_private_key=vapid, vapid_claims={"sub": SUBJECT},
                ttl=86400, timeout=10)
    return time.perf_counter() - started, time.process_time() - cpu


async def watch_loop(stalls: list[float], stop: asyncio.Event) -> None:
    """Record how late a 1 ms timer fires: how long the loop was held at a time."""
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        stalls.append(time.perf_counter() - started - 0.001)


async def our_sender(subscriptions: list[Subscription], vapid: Vapid02, concurrency: int,
                     processes: int) -> tuple[float, float, int, float]:
    policy = EndpointPolicy(("127.0.0.1:*",), allow_http=True)
    sender = WebPushSender(VapidHeaders(vapid, SUBJECT), policy, None, concurrency=concurrency)
    await sender.start()
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) \
        if processes else None
    try:
        await sender.send(subscriptions[:50], MESSAGE)  # warm the connections
        if pool is not None:  # and start the workers, as a running server has
            await asyncio.gather(*(asyncio.get_running_loop().run_in_executor(
                pool, crypto.encrypt_many, b"", []) for _ in range(processes)))
        workers_before = workers_cpu(pool)
        sender.crypto_executor = pool
        stalls: list[float] = []
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_loop(stalls, stop))
        started, cpu = time.perf_counter(), time.process_time()
        report = await sender.send(subscriptions, MESSAGE, PushOptions())
        elapsed = time.perf_counter() - started
        stop.set()
        await watcher
        used = time.process_time() - cpu + workers_cpu(pool) - workers_before
        return elapsed, used, report.sent, max(stalls, default=0.0)
    finally:
        if pool is not None:
            pool.shutdown()
        await sender.close()


def line(name: str, n: int, elapsed: float, cpu: float) -> str:
    return (f"{name:<44} {n / elapsed:>9.0f} notifications/s   "
            f"{cpu / n * 1000:>6.3f} ms CPU per notification")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="subscriptions (default 1000)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--processes", type=int, default=1,
                        help="encryption worker processes for the third variant (0: skip it)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    args = parser.parse_args()

    import logging
    logging.disable(logging.INFO)
    process, url = start_push_service()
    try:
        with tempfile.TemporaryDirectory():
            vapid = Vapid02()
            vapid.generate_keys()
            browsers = [BrowserSubscriber(base_url=url) for _ in range(args.n)]
            infos = [b.to_json() for b in browsers]
            subscriptions = [Subscription(i["endpoint"], i["keys"]["p256dh"], i["keys"]["auth"])
                             for i in infos]
            print(f"{args.n} subscriptions on a local push service ({url}), "
                  f"{len(MESSAGE)}-byte message, {os.cpu_count()} CPUs, Python "
                  f"{sys.version.split()[0]}; median of {args.rounds} alternating rounds")
            runs: dict[str, list[tuple[float, float]]] = {}
            stalls: dict[str, list[float]] = {}
            names = ["pywebpush webpush() in a plain loop",
                     f"this sender (concurrency {args.concurrency})"]
            if args.processes:
                names.append(f"this sender + {args.processes} encryption process(es)")
            for _round in range(args.rounds):
                runs.setdefault(names[0], []).append(plain_loop(infos, vapid))
                for name, processes in zip(names[1:], (0, args.processes)):
                    elapsed, cpu, sent, stall = asyncio.run(
                        our_sender(subscriptions, vapid, args.concurrency, processes))
                    assert sent == args.n, f"only {sent} of {args.n} sent"
                    runs.setdefault(name, []).append((elapsed, cpu))
                    stalls.setdefault(name, []).append(stall)
            medians = {name: (statistics.median(e for e, _ in values),
                              statistics.median(c for _, c in values))
                       for name, values in runs.items()}
            for name, (elapsed, cpu) in medians.items():
                print(line(name, args.n, elapsed, cpu))
            base_elapsed, base_cpu = medians[names[0]]
            for name in names[1:]:
                elapsed, cpu = medians[name]
                print(f"ratio, {name}: {base_elapsed / elapsed:.1f}x notifications/s, "
                      f"{base_cpu / cpu:.1f}x less CPU per notification; longest event-loop "
                      f"stall {statistics.median(stalls[name]) * 1000:.1f} ms")
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
