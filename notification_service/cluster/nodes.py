"""Which nodes are alive: each node keeps ``{prefix}:node:{name}`` alive while it runs.

A node writes its key with a 15 s expiry and refreshes it every 5 s, and adds
its name to ``{prefix}:nodes``. Anything kept per node in Redis (listener
counts, the connection registry) counts only for nodes whose key exists, so a
node killed with ``kill -9`` stops counting within 15 s without anyone
cleaning up after it. This module never deletes another node's data.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis
from aiohttp import web

from ..background import lives_with
from .redis import KEYS_KEY, REDIS_KEY, RedisKeys

log = logging.getLogger(__name__)

TTL_SECONDS = 15
REFRESH_SECONDS = 5.0


class NodeLiveness:
    """Announces ``name`` alive and answers which nodes are.

    :param ttl: seconds a node counts as alive after its last refresh.
    :param refresh: seconds between refreshes (well under ``ttl``, so one slow
        refresh never makes a live node look dead).
    """

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, name: str, *,
                 ttl: int = TTL_SECONDS, refresh: float = REFRESH_SECONDS) -> None:
        self.client = client
        self.keys = keys
        self.name = name
        self.ttl = ttl
        self.refresh = refresh
        self._task: asyncio.Task[None] | None = None

    async def announce(self) -> None:
        """Write this node's key now (also the first thing :meth:`start` does)."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.node(self.name), str(time.time()), ex=self.ttl)
            pipe.sadd(self.keys.nodes, self.name)
            await pipe.execute()

    async def start(self) -> None:
        await self.announce()
        self._task = asyncio.create_task(self._keep_alive(), name="node-liveness")

    async def stop(self) -> None:
        """Stop refreshing and withdraw at once (a clean stop need not wait 15 s)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.delete(self.keys.node(self.name))
                pipe.srem(self.keys.nodes, self.name)
                await pipe.execute()
        except (aioredis.RedisError, OSError) as error:
            log.warning("could not withdraw node %s from Redis: %s", self.name, error)

    async def _keep_alive(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.refresh)
            try:
                await self.announce()
            except (aioredis.RedisError, OSError) as error:
                if not failing:  # once per outage, not every 5 s
                    log.warning("node %s cannot refresh its liveness in Redis: %s", self.name,
                                error)
                failing = True
            else:
                if failing:
                    log.warning("node %s reaches Redis again", self.name)
                failing = False

    async def live_nodes(self) -> set[str]:
        """The names of the nodes whose key has not expired (this one included while it runs)."""
        names = [name.decode() for name in await self.client.smembers(self.keys.nodes)]
        if not names:
            return set()
        found = await self.client.mget([self.keys.node(name) for name in names])
        return {name for name, value in zip(names, found) if value is not None}


NODES_KEY = web.AppKey("node_liveness", NodeLiveness)


def setup(app: web.Application, name: str) -> NodeLiveness:
    """Announce this node while ``app`` runs (needs :func:`.redis.setup` first)."""
    liveness = app[NODES_KEY] = NodeLiveness(app[REDIS_KEY], app[KEYS_KEY], name)
    lives_with(app, liveness.start, liveness.stop)
    return liveness
