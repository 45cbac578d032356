"""The Prometheus writing of :mod:`.metrics`, imported at the first scrape of ``/metrics``.

Apart from the counters so that a server nobody scrapes never imports
prometheus-client (about 1 MB of RSS).
"""

from __future__ import annotations

from itertools import accumulate
from typing import Iterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                    HistogramMetricFamily, Metric)
from prometheus_client.registry import Collector

from .metrics import PUBLISH_BUCKETS, Metrics

__all__ = ["CONTENT_TYPE_LATEST", "generate_latest", "registry_of"]


def registry_of(metrics: Metrics) -> CollectorRegistry:
    """One registry per server: two servers in one process count apart."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Exposition(metrics))
    return registry


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
