"""Listener counts across nodes: what ``listeners`` in a publish answer counts in cluster mode.

Each node writes how many listeners each of its channels has, per transport,
to the hash ``{prefix}:lc:{channel}`` (field ``<transport>/<node>``), and the
publish step sums the fields of live nodes (whose ``{prefix}:node:{name}`` key
exists), so a node killed with ``kill -9`` stops counting within 15 s.

Counts are written in batches: every :data:`SYNC_SECONDS` (less often when a
node listens on so many channels that comparing them costs more than 5 % of its
time) the node compares its transports' counts with what it last wrote and
sends only the changes, in one pipeline. Joining and leaving never wait for Redis, and nothing here runs on
the delivery path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Iterable, Mapping, Protocol

import redis.asyncio as aioredis

from .redis import RedisKeys

log = logging.getLogger(__name__)

SYNC_SECONDS = 0.1
REDIS_ERRORS = (aioredis.ConnectionError, aioredis.TimeoutError, OSError)


class Counted(Protocol):
    """A transport that can say how many listeners each of its channels has."""

    name: str

    def listener_counts(self) -> Mapping[str, int]: ...


class ListenerCounts:
    """Keeps this node's fields of ``{prefix}:lc:{channel}`` equal to its transports' counts."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, node: str,
                 transports: Iterable[Counted], *, interval: float = SYNC_SECONDS) -> None:
        self.client = client
        self.keys = keys
        self.node = node
        self.transports = list(transports)
        self.interval = interval
        self._written: dict[tuple[str, str], int] = {}  # (channel, transport) -> count
        self._task: asyncio.Task[None] | None = None

    def _field(self, transport: str) -> str:
        return f"{transport}/{self.node}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_in_sync(), name="listener-counts")

    async def stop(self) -> None:
        """Stop syncing and withdraw this node's counts (a clean stop need not wait 15 s)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if not self._written:
            return
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for channel, transport in self._written:
                    pipe.hdel(self.keys.listener_counts(channel), self._field(transport))
                await pipe.execute()
        except REDIS_ERRORS as error:
            log.warning("could not withdraw node %s's listener counts: %s", self.node, error)
        self._written = {}

    async def sync(self) -> None:
        """Write what changed since the last sync (one pipeline, nothing if nothing changed)."""
        current = {(channel, transport.name): count
                   for transport in self.transports
                   for channel, count in transport.listener_counts().items() if count}
        written = self._written
        changed = [(key, count) for key, count in current.items() if written.get(key) != count]
        gone = [key for key in written if key not in current]
        if not changed and not gone:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for (channel, transport), count in changed:
                pipe.hset(self.keys.listener_counts(channel), self._field(transport), count)
            for channel, transport in gone:
                pipe.hdel(self.keys.listener_counts(channel), self._field(transport))
            await pipe.execute()
        self._written = current

    async def _keep_in_sync(self) -> None:
        failing = False
        while True:
            started = time.perf_counter()
            try:
                await self.sync()
            except REDIS_ERRORS as error:
                self._written = {}  # Redis may come back empty: write everything again
                if not failing:
                    log.warning("node %s cannot write its listener counts: %s", self.node, error)
                failing = True
            else:
                failing = False
            # Comparing counts visits every listened channel: with very many channels the
            # sync runs less often, so it never takes more than about 5 % of the node's CPU.
            await asyncio.sleep(max(self.interval, 20 * (time.perf_counter() - started)))
