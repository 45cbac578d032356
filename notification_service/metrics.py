"""Prometheus metrics at ``GET /metrics``: what an operator watches.

Counters are bumped on the delivery path, so each one is a child bound to its
labels when the app starts: an increment is a dict lookup and a locked add,
never a label lookup by name. Gauges (connections, history size, bus lag) are
read when Prometheus scrapes, from callables the app wires in, never updated
per event. One registry per app, so two servers in one process count apart.

This module must never take a code, a channel or a user as a label: a code is
a secret, and channels are unbounded (every label value is a time series the
scraper keeps forever).
"""

from __future__ import annotations

import time
from typing import Callable, Iterator, Mapping

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
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
    methods below; each method is a few dict lookups and additions.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        published = Counter("notify_published", "Events published, by the way they came in.",
                            ["way"], registry=self.registry)
        self._published = {way: published.labels(way) for way in WAYS_IN}
        delivered = Counter(
            "notify_delivered",
            "Live deliveries (one event to one connection), by transport; webpush counts "
            "pushes queued.", ["transport"], registry=self.registry)
        self._delivered = {transport: delivered.labels(transport) for transport in TRANSPORTS}
        self._delivered_family = delivered
        resumes = Counter(
            "notify_resumes",
            "Listeners that resumed from a last event id: replayed (all they missed was "
            "still kept) or gap (some was lost and they were told).", ["outcome"],
            registry=self.registry)
        self._resumed = {False: resumes.labels("replayed"), True: resumes.labels("gap")}
        slow = Counter(
            "notify_slow_consumer_disconnects",
            "Connections cut off because their client read too slowly, by transport.",
            ["transport"], registry=self.registry)
        self._slow = {transport: slow.labels(transport) for transport in TRANSPORTS}
        webpush = Counter(
            "notify_webpush_sent",
            "Push requests answered by push services, by status class (error: no answer).",
            ["status"], registry=self.registry)
        self._webpush = {status: webpush.labels(status) for status in STATUS_CLASSES}
        self._publish_seconds = Histogram(
            "notify_publish_seconds",
            "Seconds Hub.publish takes from call to report (receipt waits excluded).",
            buckets=PUBLISH_BUCKETS, registry=self.registry)
        self.gauges = ScrapeTimeGauges()
        self.registry.register(self.gauges)

    # -- the hot path ------------------------------------------------------
    def published(self, way: str, started: float, listeners: Mapping[str, int]) -> None:
        """One event published: count it, time it (``started`` from ``time.perf_counter()``)
        and count its deliveries per transport."""
        self._publish_seconds.observe(time.perf_counter() - started)
        (self._published.get(way) or self._published["other"]).inc()
        for transport, count in listeners.items():
            if count:
                self.delivered(transport, count)

    def delivered(self, transport: str, count: int) -> None:
        """``count`` deliveries by ``transport`` (a node delivering events of the bus calls this)."""
        child = self._delivered.get(transport)
        if child is None:
            child = self._delivered[transport] = self._delivered_family.labels(transport)
        child.inc(count)

    def resumed(self, gap: bool) -> None:
        """A listener resumed from a last event id; ``gap``: some of what it missed was lost."""
        self._resumed[gap].inc()

    def slow_consumer_disconnect(self, transport: str) -> None:
        self._slow[transport].inc()

    def webpush_answer(self, status: int | None) -> None:
        """A push service answered ``status`` (None: no answer at all)."""
        key = "error" if status is None else f"{status // 100}xx"
        self._webpush.get(key, self._webpush["error"]).inc()

    # -- read at scrape time -------------------------------------------------
    def watch_connections(self, transport: str, count: Reading) -> None:
        """``notify_connections{transport}`` is ``count()`` at each scrape."""
        self.gauges.connections[transport] = count

    def watch_history(self, events: Reading, size_bytes: Reading) -> None:
        self.gauges.history_events = events
        self.gauges.history_bytes = size_bytes

    def watch_bus_lag(self, seconds: Reading) -> None:
        """Scale-out: ``notify_bus_lag_seconds`` is how far this node's bus reader is
        behind the newest bus entry; the bus calls this once when it starts."""
        self.gauges.bus_lag = seconds

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class ScrapeTimeGauges(Collector):
    """Gauges computed when scraped, from what the parts already know."""

    def __init__(self) -> None:
        self.connections: dict[str, Reading] = {}
        self.history_events: Reading | None = None
        self.history_bytes: Reading | None = None
        self.bus_lag: Reading | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        connections = GaugeMetricFamily("notify_connections", "Open listener connections, by "
                                        "transport (socket.io counts WebSocket and polling).",
                                        labels=["transport"])
        for transport, count in self.connections.items():
            connections.add_metric([transport], count())
        yield connections
        if self.history_events is not None and self.history_bytes is not None:
            yield GaugeMetricFamily("notify_history_events",
                                    "Events kept for resuming listeners, all channels.",
                                    value=self.history_events())
            yield GaugeMetricFamily("notify_history_bytes",
                                    "Bytes of event data kept for resuming listeners.",
                                    value=self.history_bytes())
        if self.bus_lag is not None:
            yield GaugeMetricFamily("notify_bus_lag_seconds",
                                    "Seconds this node's bus reader is behind the newest entry.",
                                    value=self.bus_lag())


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
