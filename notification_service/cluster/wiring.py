"""Turns a node into a cluster node: the Hub's bus, mirror, receipts and listener counts.

Called by ``create_app`` only when ``--redis-url`` is set (after
:func:`.redis.setup` and :func:`.nodes.setup`), so a single node never imports
any of this. Everything here starts with the app and stops with it, in order:
the bus joins (epoch, mirror, reader) before the node takes its first request.
"""

from __future__ import annotations

from typing import AsyncIterator

from aiohttp import web

from ..config import Settings
from ..hub import Hub
from ..operations import HealthChecks
from .acks import ClusterReceipts
from .bus import RedisBus, connect_bus
from .listeners import ListenerCounts
from .mirror import HistoryMirror
from .nodes import NODES_KEY
from .redis import KEYS_KEY, REDIS_KEY

BUS_KEY = web.AppKey("bus", RedisBus)


def mirror_for(settings: Settings) -> HistoryMirror:
    """The Hub's history in cluster mode: bounded like the in-memory one, fed by the bus."""
    return HistoryMirror(per_channel=settings.history_size, max_age=settings.history_age,
                         max_bytes=settings.history_bytes, epoch="-")


def install(app: web.Application, settings: Settings, hub: Hub, health: HealthChecks) -> RedisBus:
    """Give ``hub`` its Redis bus (``hub.history`` must be a :func:`mirror_for` mirror).

    Call before the transports are created: they register with ``hub.receipts``.
    """
    assert settings.redis_url is not None and isinstance(hub.history, HistoryMirror)
    keys, client = app[KEYS_KEY], app[REDIS_KEY]
    bus = app[BUS_KEY] = RedisBus(hub, connect_bus(settings.redis_url), keys,
                                  settings.node_name, hub.history,
                                  history_size=settings.history_size,
                                  history_age=settings.history_age)
    receipts = ClusterReceipts(client, keys, settings.node_name)
    hub.receipts = receipts  # type: ignore[assignment]
    hub.bus = bus
    health.add("bus", bus.probe)
    hub.metrics.watch_bus_lag(bus.lag)
    bus.on_reconnect.append(app[NODES_KEY].announce)  # alive again at once, not in 5 s

    async def close_connections(message: str, code: int) -> None:
        for transport in hub.transports:
            close_all = getattr(transport, "close_all", None)
            if close_all is not None:
                await close_all(message, code)

    bus.on_hole.append(close_connections)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        counted = [transport for transport in hub.transports
                   if hasattr(transport, "listener_counts")]
        counts = ListenerCounts(client, keys, settings.node_name, counted)  # type: ignore[arg-type]
        await receipts.start()
        await bus.start()
        await counts.start()
        yield
        await counts.stop()
        await bus.stop()
        await receipts.stop()

    app.cleanup_ctx.append(lifetime)
    return bus
