"""The Hub: the one place that publishes.

Every way in (GET triggers, JSON routes, the Python API) calls
:meth:`Hub.publish`; every way out is a :class:`Transport` the Hub hands the
Event to. The Hub assigns the id, keeps history, and answers the producer with
a :class:`DeliveryReport` so a bot can tell "sent to 1 overlay" from "nobody
listening". It never loops over connections and never logs per recipient.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

from .events import Event, PushRequest
from .history import MemoryHistory
from .idempotency import FirstAnswer, IdempotencyCache
from .logs import info_line
from .metrics import Metrics
from .receipts import Receipts

log = logging.getLogger(__name__)


class Transport(Protocol):
    """A way out. Transports deliver; they never decide who may publish."""

    name: str

    def deliver(self, event: Event) -> int:
        """Queue ``event`` for every local listener of ``event.channel``; return how many.

        Synchronous on purpose: the Hub appends to history and hands the event
        to every transport without yielding to the event loop, so a client
        resuming from history can never see an event twice or miss one. A
        transport with I/O to do (Web Push) queues it and returns. Must not
        loop over every connection: count and fan out by channel.
        """


class Observer(Protocol):
    """Something that watches what is published without delivering it (the alert queue).

    Called once per published event, on the node that published it, after the
    live transports have it and before the producer gets its answer; it may
    add keys to the answer (``report.extra``). It must not deliver anything: the
    event already went out through the transports. An observer that fails costs
    only its own bookkeeping, never the publish.
    """

    def wants(self, event: Event) -> bool:
        """Whether :meth:`observe` has anything to do with ``event`` (asked without an await)."""

    async def observe(self, event: Event, report: "DeliveryReport") -> None: ...


class Bus(Protocol):
    """Where events go between nodes (cluster mode: :class:`.cluster.bus.RedisBus`).

    Without a bus the Hub delivers in-process (one node, today's path). With
    one, :meth:`publish` runs the atomic publish step and answers; nothing is
    delivered by it: every node, this one included, reads the bus and calls
    :meth:`Hub.deliver` for each event in bus order.
    """

    async def publish(self, channel: str, name: str, data: Any, *, push: PushRequest = False,
                      idempotency_key: str | None = None, receipt: str = "") -> Any: ...

    async def delivered_here(self, published: Any) -> None: ...

    async def remember(self, channel: str, idempotency_key: str,
                       report: "DeliveryReport") -> None: ...


class BackgroundTransport(Protocol):
    """A way out whose delivery needs I/O first (Web Push looks up stored subscriptions).

    It gets the event after every live :class:`Transport` already has it, so it
    never holds up live delivery nor breaks the replay guarantee; it answers how
    many deliveries it queued and sends them in the background.
    """

    name: str

    def wants(self, event: Event) -> bool:
        """Whether ``event`` is for this transport at all (Web Push: it asked to be pushed).

        Asked without an await: most publishes have nothing for it, and skip it.
        """

    async def deliver(self, event: Event) -> int:
        """Queue ``event`` for this transport's recipients; return how many."""


@dataclass(slots=True)
class DeliveryReport:
    """What happened to one published event.

    ``duplicate`` is true when this answer is the remembered first answer to
    a publish repeated with the same idempotency key (nothing was delivered;
    its ``event`` has no data, since only the answer is remembered).
    """

    event: Event
    listeners: dict[str, int] = field(default_factory=dict)
    duplicate: bool = False
    acknowledged: int | None = None  # set when the producer waited for receipts
    extra: dict[str, Any] = field(default_factory=dict)  # keys observers add to the answer

    @property
    def total(self) -> int:
        return sum(self.listeners.values())

    def to_dict(self) -> dict[str, Any]:
        answer = {"id": self.event.id, "channel": self.event.channel, "event": self.event.name,
                  "listeners": self.total, "transports": dict(self.listeners)}
        if self.duplicate:
            answer["duplicate"] = True
        if self.acknowledged is not None:
            answer["acknowledged"] = self.acknowledged
        answer.update(self.extra)
        return answer


def mask(channel: str) -> str:
    """Show a channel in logs without giving it away: ``1234`` -> ``12**``."""
    return channel[:2] + "**"


class Hub:
    """Publishes events to channels through every registered transport.

    :param history: assigns ids and times, and keeps recent events per channel.
    :param metrics: the counters transports and the Hub bump (``/metrics``).
    """

    def __init__(self, history: MemoryHistory | None = None,
                 idempotency: IdempotencyCache | None = None,
                 metrics: Metrics | None = None) -> None:
        self.history = history or MemoryHistory()
        self.metrics = metrics or Metrics()
        self.idempotency = idempotency or IdempotencyCache()
        self.receipts = Receipts()
        self.transports: list[Transport] = []
        self.background_transports: list[BackgroundTransport] = []
        self.observers: list[Observer] = []
        # What a publish no background transport wants reports for them: {"webpush": 0}
        self._no_background_deliveries: dict[str, int] = {}
        self.bus: Bus | None = None  # set in cluster mode (app.py)

    def add_transport(self, transport: Transport) -> None:
        self.transports.append(transport)

    def add_background_transport(self, transport: BackgroundTransport) -> None:
        self.background_transports.append(transport)
        self._no_background_deliveries[transport.name] = 0

    def add_observer(self, observer: Observer) -> None:
        self.observers.append(observer)

    async def publish(self, channel: str, name: str, data: Any, *, push: PushRequest = False,
                      idempotency_key: str | None = None,
                      wait_ms: int | None = None, way: str = "python") -> DeliveryReport:
        """Publish one event; the only way anything is delivered.

        ``channel`` and ``name`` must already be valid (see :mod:`.events`): the
        producers validate, because each answers a bad name in its own contract.
        ``push`` asks that the channel's Web Push subscribers get it too (True, or
        Web Push options such as a TTL).
        ``idempotency_key``: a publish repeating a key seen on this channel in the
        last 5 minutes returns the first report (``duplicate`` set), delivering nothing.
        ``wait_ms``: wait up to this long for listeners' receipts and report how
        many arrived (``acknowledged``).
        ``way``: how it came in (``trigger``, ``emit``, ...), for ``/metrics`` only.
        """
        if self.bus is not None:
            return await self._publish_on_bus(channel, name, data, push, idempotency_key,
                                              wait_ms, way)
        started = time.perf_counter()
        if idempotency_key is not None:
            first = self.idempotency.get(channel, idempotency_key)
            if first is not None:
                log.info("duplicate publish to %s ignored (idempotency key)", mask(channel))
                return DeliveryReport(first.event(channel), dict(first.listeners), duplicate=True,
                                      extra=dict(first.extra))
        event = self.history.append(channel, name, data, push=push, receipt=wait_ms is not None)
        report = DeliveryReport(event)
        for transport in self.transports:  # no await in here: see Transport.deliver
            report.listeners[transport.name] = transport.deliver(event)
        # Still before the first await: a retry with the same key, or a receipt,
        # arriving while Web Push looks up subscriptions finds what it needs.
        if idempotency_key is not None:
            self.idempotency.put(channel, idempotency_key, FirstAnswer(  # filled in below
                event.id, name, event.time, report.listeners, report.extra))
        receipts = None
        if wait_ms is not None:
            receipts = self.receipts.track(event, report.listeners.get("socketio", 0))
        if not self._nothing_after_live(event, report):
            await self._after_live(event, report)
        self.metrics.published(way, started, report.listeners)
        self._log_published(report)
        if receipts is not None:
            report.acknowledged = await self.receipts.wait(receipts, wait_ms)
        return report

    async def _publish_on_bus(self, channel: str, name: str, data: Any, push: PushRequest,
                              idempotency_key: str | None, wait_ms: int | None,
                              way: str) -> DeliveryReport:
        """Cluster mode: the publish step in Redis answers; the bus delivers everywhere.

        Receipts are opened before the step (a listener on another node may
        confirm before its answer is back); observers and background
        transports run here, once, on the publishing node, after this node's
        own listeners have the event.
        """
        assert self.bus is not None
        started = time.perf_counter()
        waiting = self.receipts.open() if wait_ms is not None else None  # type: ignore[attr-defined]
        try:
            published = await self.bus.publish(
                channel, name, data, push=push, idempotency_key=idempotency_key,
                receipt=waiting.token if waiting is not None else "")
        except BaseException:
            if waiting is not None:
                self.receipts.close(waiting)  # type: ignore[attr-defined]
            raise
        if published.duplicate:
            if waiting is not None:
                self.receipts.close(waiting)  # type: ignore[attr-defined]
            log.info("duplicate publish to %s ignored (idempotency key)", mask(channel))
            return DeliveryReport(published.event, dict(published.listeners), duplicate=True,
                                  extra=dict(published.extra))
        event = published.event
        report = DeliveryReport(event, dict(published.listeners))
        if waiting is not None:
            self.receipts.expect(waiting, report.listeners.get("socketio", 0))  # type: ignore[attr-defined]
        await self.bus.delivered_here(published)
        if not self._nothing_after_live(event, report):
            await self._after_live(event, report)
        if idempotency_key is not None and report.extra:
            await self.bus.remember(channel, idempotency_key, report)
        # Live deliveries are counted where they happen (deliver, on every node).
        self.metrics.published(way, started, {background.name: report.listeners[background.name]
                                              for background in self.background_transports})
        self._log_published(report)
        if waiting is not None:
            report.acknowledged = await self.receipts.wait(waiting, wait_ms)  # type: ignore[arg-type]
        return report

    def deliver(self, event: Event, *, origin: str = "", receipt: str = "",
                encoded: bytes | None = None) -> int:
        """Cluster mode: hand one event read from the bus to every live transport.

        The bus reader calls it for every event, in bus order, on every node.
        Synchronous like :meth:`Transport.deliver`: the mirror keeps the event
        and every transport queues it with no await in between, so a client
        resuming on this node never sees it twice nor misses it.
        """
        self.history.keep(event, encoded)  # type: ignore[attr-defined]
        delivered = 0
        metrics = self.metrics
        for transport in self.transports:
            count = transport.deliver(event)
            if count:
                metrics.delivered(transport.name, count)
                delivered += count
        if receipt:
            self.receipts.delivered(event, origin, receipt)  # type: ignore[attr-defined]
        return delivered

    @staticmethod
    def _log_published(report: DeliveryReport) -> None:
        """One INFO line per publish (never per recipient), as finished text: no LogRecord.

        At INFO it runs on every publish, so it makes as few Python calls as it
        can: the total is summed in place, and DEBUG is asked only at INFO.
        """
        if log.isEnabledFor(logging.INFO):
            event = report.event
            masked = mask(event.channel)
            info_line(log, f"published {event.name} to {masked} id={event.id} "
                      f"listeners={sum(report.listeners.values())}",
                      event_id=event.id, channel=masked)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("event %s on %s data=%r", event.id, event.channel, event.data)

    def _nothing_after_live(self, event: Event, report: DeliveryReport) -> bool:
        """True, with 0 deliveries reported per background transport, when no observer and
        no background transport wants ``event`` (most publishes).

        Asked without an await, so that such a publish costs no coroutine for them.
        """
        for observer in self.observers:
            if observer.wants(event):
                return False
        for background in self.background_transports:
            if background.wants(event):
                return False
        report.listeners.update(self._no_background_deliveries)
        return True

    async def _after_live(self, event: Event, report: DeliveryReport) -> None:
        """Observers, then background transports, once live listeners have ``event``.

        Each is asked again whether it wants the event: only those that do cost an await.
        """
        for observer in self.observers:
            if observer.wants(event):
                await self._observe(observer, event, report)
        listeners = report.listeners
        for background in self.background_transports:
            listeners[background.name] = (await self._deliver_in_background(background, event)
                                          if background.wants(event) else 0)

    @staticmethod
    async def _observe(observer: Observer, event: Event, report: DeliveryReport) -> None:
        try:
            await observer.observe(event, report)
        except Exception:
            log.exception("%s failed on event %s on %s", type(observer).__name__, event.id,
                          mask(event.channel))

    @staticmethod
    async def _deliver_in_background(transport: BackgroundTransport, event: Event) -> int:
        """A failing background transport costs its own deliveries, never the publish.

        Live listeners already have the event: answering the producer with an
        error now would make a bot retry and show the alert twice.
        """
        try:
            return await transport.deliver(event)
        except Exception:
            log.exception("%s could not queue event %s on %s", transport.name, event.id,
                          mask(event.channel))
            return 0


HUB_KEY = web.AppKey("hub", Hub)
