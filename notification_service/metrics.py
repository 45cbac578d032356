"""Prometheus metrics at ``GET /metrics``: what an operator watches.

The counters are bumped on the delivery path, so each label's slot exists from
the start and an increment is one dict addition: plain Python numbers, with
no lock, because every caller runs on the event loop's thread (prometheus-client's
own Counter takes a lock and checks its state on every ``inc``: 1.6 µs each
here, against 0.05 µs). prometheus-client writes them out when Prometheus
scrapes, as proper counter and histogram families, together with the gauges
(connections, history size, bus lag), which are read at scrape time from
callables the app wires in and never updated per event. One registry per app,
so two servers in one process count apart.

This module must never take a code, a channel or a user as a label: a code is
a secret, and channels are unbounded (every label value is a time series the
scraper keeps forever). It must never be called from another thread.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from itertools import accumulate
from typing import Callable, Iterator, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, Metric)
from prometheus_client.registry import Collector

from .errors import ADMIN_DISABLED
from .tokens import require_token

WAYS_IN = ("trigger", "emit", "broadcast", "webpush", "python", "inbox", "other")
"""``way`` label of ``notify_published_total``: GET triggers (``/notify`` and page URLs),
``POST /emit``, ``POST /broadcast``, ``POST /webpush/notify``, the Python API, the Redis inbox."""
TRANSPORTS = ("socketio", "sse", "webpush")
STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "error")
"""``status`` label of ``notify_webpush_sent_total``; ``error``: no answer (timeout, refused)."""
PUBLISH_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5)

Reading = Callable[[], float]


class Metrics:
    """The counters of one server, and the gauges it reads at scrape time.

    The Hub and the transports hold it (``hub.metrics``) and call the
    methods below; each is a few dict additions on the event loop's thread.
    """

    def __init__(self) -> None:
        self.published_counts = dict.fromkeys(WAYS_IN, 0)
        self.delivered_counts = dict.fromkeys(TRANSPORTS, 0)
        self.resume_counts = {False: 0, True: 0}  # gap?
        self.slow_counts = dict.fromkeys(TRANSPORTS, 0)
        self.webpush_counts = dict.fromkeys(STATUS_CLASSES, 0)
        self.publish_buckets = [0] * (len(PUBLISH_BUCKETS) + 1)  # the last one: above all
        self.publish_seconds = 0.0
        self.connections: dict[str, Reading] = {}
        self.history_events: Reading | None = None
        self.history_bytes: Reading | None = None
        self.bus_lag: Reading | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(Exposition(self))

    # -- the hot path ------------------------------------------------------
    def published(self, way: str, started: float, listeners: Mapping[str, int]) -> None:
        """One event published: count it, time it (``started`` from ``time.perf_counter()``)
        and count its deliveries per transport."""
        elapsed = time.perf_counter() - started
        self.publish_seconds += elapsed
        self.publish_buckets[bisect_left(PUBLISH_BUCKETS, elapsed)] += 1
        counts = self.published_counts
        counts[way if way in counts else "other"] += 1
        delivered = self.delivered_counts
        for transport, count in listeners.items():
            if count:
                delivered[transport] = delivered.get(transport, 0) + count

    def delivered(self, transport: str, count: int) -> None:
        """``count`` deliveries by ``transport`` (a node delivering events of the bus calls this)."""
        counts = self.delivered_counts
        counts[transport] = counts.get(transport, 0) + count

    def resumed(self, gap: bool) -> None:
        """A listener resumed from a last event id; ``gap``: some of what it missed was lost."""
        self.resume_counts[gap] += 1

    def slow_consumer_disconnect(self, transport: str) -> None:
        self.slow_counts[transport] = self.slow_counts.get(transport, 0) + 1

    def webpush_answer(self, status: int | None) -> None:
        """A push service answered ``status`` (None: no answer at all)."""
        key = "error" if status is None else f"{status // 100}xx"
        self.webpush_counts[key if key in self.webpush_counts else "error"] += 1

    # -- read at scrape time -------------------------------------------------
    def watch_connections(self, transport: str, count: Reading) -> None:
        """``notify_connections{transport}`` is ``count()`` at each scrape."""
        self.connections[transport] = count

    def watch_history(self, events: Reading, size_bytes: Reading) -> None:
        self.history_events = events
        self.history_bytes = size_bytes

    def watch_bus_lag(self, seconds: Reading) -> None:
        """Scale-out: ``notify_bus_lag_seconds`` is how far this node's bus reader is
        behind the newest bus entry (RedisBus.lag); cluster/wiring.py sets it once."""
        self.bus_lag = seconds

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class Exposition(Collector):
    """Writes one server's :class:`Metrics` as Prometheus families when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        yield _counter("notify_published", "Events published, by the way they came in.",
                       "way", m.published_counts)
        yield _counter("notify_delivered", "Live deliveries (one event to one connection), by "
                       "transport; webpush counts pushes queued.", "transport",
                       m.delivered_counts)
        yield _counter("notify_resumes", "Listeners that resumed from a last event id: "
                       "replayed (all they missed was still kept) or gap (some was lost and "
                       "they were told).", "outcome",
                       {"replayed": m.resume_counts[False], "gap": m.resume_counts[True]})
        yield _counter("notify_slow_consumer_disconnects", "Connections cut off because their "
                       "client read too slowly, by transport.", "transport", m.slow_counts)
        yield _counter("notify_webpush_sent", "Push requests answered by push services, by "
                       "status class (error: no answer).", "status", m.webpush_counts)
        cumulative = list(accumulate(m.publish_buckets))
        bounds = [repr(float(bound)) for bound in PUBLISH_BUCKETS] + ["+Inf"]
        yield HistogramMetricFamily(
            "notify_publish_seconds",
            "Seconds Hub.publish takes from call to report (receipt waits excluded).",
            buckets=list(zip(bounds, cumulative)), sum_value=m.publish_seconds)
        connections = GaugeMetricFamily("notify_connections", "Open listener connections, by "
                                        "transport (socket.io counts WebSocket and polling).",
                                        labels=["transport"])
        for transport, count in m.connections.items():
            connections.add_metric([transport], count())
        yield connections
        if m.history_events is not None and m.history_bytes is not None:
            yield GaugeMetricFamily("notify_history_events",
                                    "Events kept for resuming listeners, all channels.",
                                    value=m.history_events())
            yield GaugeMetricFamily("notify_history_bytes",
                                    "Bytes of event data kept for resuming listeners.",
                                    value=m.history_bytes())
        if m.bus_lag is not None:
            yield GaugeMetricFamily("notify_bus_lag_seconds",
                                    "Seconds this node's bus reader is behind the newest entry.",
                                    value=m.bus_lag())


def _counter(name: str, documentation: str, label: str,
             counts: Mapping[str, float]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


def add_routes(app: web.Application, metrics: Metrics, *, public: bool,
               admin_token: str | None) -> None:
    """``GET /metrics``: with the admin token, or to anyone with ``--metrics-public``."""
    async def scrape(request: web.Request) -> web.Response:
        if not public:
            if admin_token is None:
                raise ADMIN_DISABLED("GET /metrics needs the admin token: start the server "
                                     "with --admin-token <token> and scrape with "
                                     "'Authorization: Bearer <token>', or start it with "
                                     "--metrics-public.")
            require_token(request, admin_token, "admin")
        return web.Response(body=metrics.exposition(),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/metrics", scrape, name="metrics")


METRICS_KEY = web.AppKey("metrics", Metrics)
