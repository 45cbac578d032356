"""``/connections`` across nodes: each node writes its identified connections to Redis.

One hash per application (``{prefix}:conn:{app}``, as the SSE service kept
its connections in Redis), one field per connection: ``<node> <connection
id>`` -> JSON ``{"node", "info"}`` with the seed-3 details. Transports add
and remove connections synchronously (:class:`~..registry.ConnectionRegistry`);
the writes are queued and sent in one pipeline per event-loop iteration, never
one round trip per connection. A listing reads the hash and keeps the entries
of live nodes only (:class:`~.nodes.NodeLiveness`), this node's own from memory,
so a node killed with ``kill -9`` drops out of every listing within 15 s
without anyone deleting its entries first; a node starting removes the
entries of nodes that are gone (and its own from an earlier run). The bounds
(``--max-connections-per-application``, ``--max-identified-connections``)
stay per node: checking them in Redis would put a round trip before every
connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web

from ..background import cancel_and_wait, lives_with
from ..errors import CONNECTIONS_UNAVAILABLE
from ..registry import REGISTRY_KEY, ConnectionInfo, ConnectionRegistry
from .nodes import NODES_KEY, NodeLiveness
from .redis import KEYS_KEY, REDIS_KEY, RedisKeys

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
CHECK_SECONDS = 5.0


class SharedConnectionRegistry(ConnectionRegistry):
    """The node's registry, mirrored to Redis so that every node lists every node's connections."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, node: str,
                 liveness: NodeLiveness, **bounds: int) -> None:
        super().__init__(**bounds)
        self.client = client
        self.keys = keys
        self.node = node
        self.liveness = liveness
        # (application, field) -> the value to write, or None to delete it.
        self._pending: dict[tuple[str, str], bytes | None] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def _marker(self) -> str:
        """A key this node keeps while its entries are in Redis: gone means Redis lost them."""
        return self.keys.connections_marker(self.node)

    def _field(self, connection: ConnectionInfo) -> str:
        return f"{self.node} {connection.id}"

    def add(self, connection: ConnectionInfo) -> None:
        super().add(connection)
        value = orjson.dumps({"node": self.node, "info": connection.to_dict()})
        self._pending[(connection.identity.application, self._field(connection))] = value
        self._wake.set()

    def remove(self, connection: ConnectionInfo) -> None:
        super().remove(connection)
        self._pending[(connection.identity.application, self._field(connection))] = None
        self._wake.set()

    async def listing(self, application: str, user: str | None = None, *,
                      with_addresses: bool = True) -> dict[str, Any]:
        """The seed's body, with every live node's connections (503 if Redis does not answer)."""
        try:
            stored = await self.client.hgetall(self.keys.connections(application))
            live = await self.liveness.live_nodes() if stored else set()
        except (aioredis.RedisError, OSError):
            raise CONNECTIONS_UNAVAILABLE(
                "The connections of the other nodes are in Redis, which does not answer; "
                "try again.") from None
        users: dict[str, dict[str, Any]] = self.application(application,
                                                             with_addresses=with_addresses)
        for value in stored.values():
            entry = _entry(value)
            if entry is None or entry["node"] == self.node or entry["node"] not in live:
                continue  # ours come from memory (also the ones not written yet)
            info = entry["info"]
            if not with_addresses:
                info["remote_addr"] = ""
            users.setdefault(info["user"]["id"], {})[info["id"]] = info
        if user is None:
            return users
        return users.get(user, {})

    # -- writing ---------------------------------------------------------
    async def start(self) -> None:
        await self._remove_stale()
        await self.client.set(self._marker, self.node)
        self._task = asyncio.create_task(self._write(), name="connections-to-redis")

    async def stop(self) -> None:
        """Stop writing and withdraw this node's entries (a clean stop)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        try:
            await self._remove_stale(own_only=True)
            await self.client.delete(self._marker)
        except (aioredis.RedisError, OSError) as error:
            log.warning("could not withdraw this node's connections from Redis: %s", error)

    async def _write(self) -> None:
        """Send queued changes; every :data:`CHECK_SECONDS` also check Redis still has ours."""
        failing = False
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), CHECK_SECONDS)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            batch, self._pending = self._pending, {}
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for (application, field), value in batch.items():
                        if value is None:
                            pipe.hdel(self.keys.connections(application), field)
                        else:
                            pipe.hset(self.keys.connections(application), field, value)
                    pipe.set(self._marker, self.node, nx=True)
                    *_written, marker_was_gone = await pipe.execute()
            except (aioredis.RedisError, OSError) as error:
                if not failing:
                    log.warning("cannot write connections to Redis (%s); retrying every %g s",
                                error, RETRY_SECONDS)
                failing = True
                for key, value in batch.items():  # newer changes win over the failed ones
                    self._pending.setdefault(key, value)
                self._wake.set()
                await asyncio.sleep(RETRY_SECONDS)
            else:
                # Redis restarted empty, or we looked dead long enough for another
                # node to remove our entries: write them all again.
                if failing or marker_was_gone:
                    self._rewrite_all()
                failing = False

    def _rewrite_all(self) -> None:
        """Queue every local connection again (after an outage long enough to look dead)."""
        for users in self._applications.values():
            for connections in users.values():
                for connection in connections.values():
                    key = (connection.identity.application, self._field(connection))
                    self._pending.setdefault(key, orjson.dumps(
                        {"node": self.node, "info": connection.to_dict()}))
        if self._pending:
            self._wake.set()

    async def _remove_stale(self, own_only: bool = False) -> None:
        """Delete entries of this node (an earlier run) and, unless ``own_only``, of dead nodes."""
        live = set() if own_only else await self.liveness.live_nodes()
        pattern = self.keys.connections("*")
        async for key in self.client.scan_iter(match=pattern, count=500):
            stored = await self.client.hgetall(key)
            stale = [field for field, value in stored.items()
                     if (entry := _entry(value)) is None or entry["node"] == self.node
                     or (not own_only and entry["node"] not in live)]
            if stale:
                await self.client.hdel(key, *stale)


def _entry(value: bytes) -> dict[str, Any] | None:
    """A stored entry, or None for one this server did not write (it is skipped, then removed)."""
    try:
        entry = orjson.loads(value)
        if isinstance(entry, dict) and isinstance(entry.get("node"), str) and isinstance(
                entry.get("info", {}).get("user", {}).get("id"), str):
            return entry
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return None


def setup(app: web.Application, **bounds: int) -> SharedConnectionRegistry:
    """The app's registry, shared through Redis (needs :func:`.redis.setup` and :func:`.nodes.setup`)."""
    liveness = app[NODES_KEY]
    registry = SharedConnectionRegistry(app[REDIS_KEY], app[KEYS_KEY], liveness.name, liveness,
                                        **bounds)
    app[REGISTRY_KEY] = registry
    lives_with(app, registry.start, registry.stop)
    return registry
