"""What /metrics costs the publish path: Hub.publish with the counters of metrics.py, and with
prometheus-client's own Counter and Histogram, against the same Hub with counters that do
nothing, in one process.

The counters are bumped inside ``Hub.publish`` (count by way in, the publish
histogram, deliveries per transport) and in the transports; this isolates
exactly that cost. Each round publishes to a channel with one in-memory
listener (a transport that counts); the two variants alternate round by
round and the median of the rounds is printed, never the best.

    python bench/metrics.py [-n 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from notification_service.events import Event  # noqa: E402
from notification_service.history import MemoryHistory  # noqa: E402
from notification_service.hub import Hub  # noqa: E402
from notification_service.metrics import (PUBLISH_BUCKETS, TRANSPORTS, WAYS_IN,  # noqa: E402
                                          Metrics)
from prometheus_client import CollectorRegistry, Counter, Histogram  # noqa: E402


class CountingListener:
    """A transport with one listener per channel: no I/O, so only the Hub's work is measured."""

    name = "socketio"

    def __init__(self) -> None:
        self.delivered = 0

    def deliver(self, event: Event) -> int:
        self.delivered += 1
        return 1


class NoMetrics(Metrics):
    """The same interface, doing nothing: the baseline."""

    def published(self, way, started, listeners) -> None:
        pass


class LibraryCounters(Metrics):
    """The same counts kept in prometheus-client's own Counter and Histogram children
    (bound to their labels once): what metrics.py chose not to do, for comparison."""

    def __init__(self) -> None:
        super().__init__()
        registry = CollectorRegistry()
        published = Counter("published", "", ["way"], registry=registry)
        delivered = Counter("delivered", "", ["transport"], registry=registry)
        self._published = {way: published.labels(way) for way in WAYS_IN}
        self._delivered = {transport: delivered.labels(transport) for transport in TRANSPORTS}
        self._seconds = Histogram("seconds", "", buckets=PUBLISH_BUCKETS, registry=registry)

    def published(self, way, started, listeners) -> None:
        self._seconds.observe(time.perf_counter() - started)
        self._published[way].inc()
        for transport, count in listeners.items():
            if count:
                self._delivered[transport].inc(count)


async def publish_round(metrics: Metrics, count: int) -> float:
    """CPU seconds per publish for ``count`` publishes through a fresh Hub."""
    hub = Hub(MemoryHistory(per_channel=100), metrics=metrics)
    hub.add_transport(CountingListener())
    data = {"user": "bob", "amount": 5}
    started = time.process_time()
    for _ in range(count):
        await hub.publish("1234", "FOLLOW", data, way="trigger")
    return (time.process_time() - started) / count


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=20_000, help="publishes per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    variants = {"no counters (baseline)": NoMetrics, "metrics.py (plain counts)": Metrics,
                "prometheus-client Counter": LibraryCounters}
    results: dict[str, list[float]] = {name: [] for name in variants}
    await publish_round(Metrics(), args.n // 10)  # warm up
    for _ in range(args.rounds):
        for name, make in variants.items():
            results[name].append(await publish_round(make(), args.n))
    baseline = statistics.median(results["no counters (baseline)"])
    print(f"Hub.publish, one listener, {args.n} publishes x {args.rounds} interleaved rounds "
          f"(median CPU per publish):")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"  {name:27s} {median * 1e6:6.2f} µs   ({median / baseline:.2f}x baseline, "
              f"+{(median - baseline) * 1e6:.2f} µs)")


if __name__ == "__main__":
    asyncio.run(main())
