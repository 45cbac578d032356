"""A Redis stream read by every node through one consumer group: each entry handled by one node.

The inbox (publishing from any language) and the Web Push jobs are such
queues. A node reads new entries with ``XREADGROUP``; an entry stays pending
until the node has handled it and acknowledges it (``XACK``, then ``XDEL``:
nothing else needs it). A node killed mid-entry leaves it pending under its
name; once that node's liveness key is gone (at most 15 s, see
:mod:`.nodes`) a live node claims its pending entries (``XCLAIM``) and handles
them again, so handlers must be idempotent (the inbox passes an idempotency
key derived from the entry id). ``stuck_after`` optionally also takes over
entries pending that long on a live node (``XAUTOCLAIM``), for a queue whose
handling is always short. On start a node first handles what it left pending
under its own name (a restart with the same ``--node-name``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable, Sequence

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from ..background import cancel_and_wait
from .nodes import NodeLiveness

log = logging.getLogger(__name__)

Entry = tuple[str, dict[str, bytes]]
"""An entry's id and its fields (names decoded, values as the producer wrote them)."""
Handler = Callable[[Sequence[Entry]], Awaitable[None]]

GROUP = "nodes"
BATCH = 100
BLOCK_MS = 1000
CLAIM_INTERVAL = 1.0
RETRY_SECONDS = 1.0


class WorkQueue:
    """One node's reader of ``stream`` in the consumer group :data:`GROUP`.

    :param consumer: this node's name (``--node-name``).
    :param liveness: tells which nodes are alive, so a dead one's entries are claimed.
    :param stuck_after: seconds after which an entry pending on any node is taken
        over (None: only a dead node's entries are).
    """

    def __init__(self, client: aioredis.Redis, stream: str, consumer: str,
                 liveness: NodeLiveness, *, stuck_after: float | None = None,
                 batch: int = BATCH, block_ms: int = BLOCK_MS,
                 claim_interval: float = CLAIM_INTERVAL) -> None:
        self.client = client
        self.stream = stream
        self.consumer = consumer
        self.liveness = liveness
        self.stuck_after = stuck_after
        self.batch = batch
        self.block_ms = block_ms
        self.claim_interval = claim_interval
        self._own_pending = True  # read our own pending entries first (a restart)
        self._next_claim = 0.0
        self._task: asyncio.Task[None] | None = None

    async def ensure_group(self) -> None:
        """Create the stream and its group if missing (from the stream's start: nothing
        written before the first node came up is skipped)."""
        try:
            await self.client.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def take(self) -> list[Entry]:
        """The next entries this node must handle (waits up to ``block_ms`` for new ones)."""
        loop = asyncio.get_running_loop()
        if self._own_pending:
            entries = await self._read("0")
            if entries:
                return entries
            self._own_pending = False
        if loop.time() >= self._next_claim:
            self._next_claim = loop.time() + self.claim_interval
            claimed = await self._claim()
            if claimed:
                return claimed
        return await self._read(">", block=self.block_ms)

    async def done(self, ids: Sequence[str]) -> None:
        """Acknowledge and drop handled entries."""
        if not ids:
            return
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, GROUP, *ids)
            pipe.xdel(self.stream, *ids)
            await pipe.execute()

    async def _read(self, position: str, block: int | None = None) -> list[Entry]:
        try:
            answer = await self.client.xreadgroup(GROUP, self.consumer, {self.stream: position},
                                                  count=self.batch, block=block)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            await self.ensure_group()  # Redis lost its data (restart without persistence)
            return []
        return [entry for _stream, entries in answer or () for entry in _decoded(entries)]

    async def _claim(self) -> list[Entry]:
        """Take over the pending entries of dead nodes (and stuck ones, if asked)."""
        consumers = await self.client.xinfo_consumers(self.stream, GROUP)
        others = [c for c in consumers if _text(c["name"]) != self.consumer]
        if others:
            live = await self.liveness.live_nodes()
            for consumer in others:
                name = _text(consumer["name"])
                if name in live:
                    continue
                if not consumer["pending"]:
                    await self.client.xgroup_delconsumer(self.stream, GROUP, name)
                    continue
                pending = await self.client.xpending_range(
                    self.stream, GROUP, min="-", max="+", count=self.batch, consumername=name)
                ids = [item["message_id"] for item in pending]
                if ids:
                    claimed = await self.client.xclaim(self.stream, GROUP, self.consumer,
                                                       min_idle_time=0, message_ids=ids)
                    log.warning("%s: took over %d entries of node %s, which is gone",
                                self.stream, len(claimed), name)
                    return list(_decoded(claimed))
        if self.stuck_after is not None:
            _next, claimed, *_deleted = await self.client.xautoclaim(
                self.stream, GROUP, self.consumer, int(self.stuck_after * 1000), count=self.batch)
            if claimed:
                log.warning("%s: took over %d entries pending for more than %g s",
                            self.stream, len(claimed), self.stuck_after)
                return list(_decoded(claimed))
        return []

    # -- running ---------------------------------------------------------
    def start(self, handle: Handler, name: str) -> None:
        """Handle entries in a task until :meth:`stop`; Redis outages are waited out."""
        self._task = asyncio.create_task(self._run(handle), name=name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self, handle: Handler) -> None:
        failing = False
        while True:
            try:
                if failing:
                    await self.ensure_group()
                entries = await self.take()
                if entries:
                    await handle(entries)
                    await self.done([entry_id for entry_id, _fields in entries])
                if failing:
                    log.warning("%s: Redis answers again", self.stream)
                failing = False
            except (aioredis.RedisError, OSError) as error:
                if not failing:  # once per outage
                    log.warning("%s: Redis does not answer (%s); retrying every %g s",
                                self.stream, error, RETRY_SECONDS)
                failing = True
                self._own_pending = True  # what was read but not acknowledged comes again
                await asyncio.sleep(RETRY_SECONDS)
            except Exception:
                if not failing:
                    log.exception("%s: handling entries failed; they stay pending and are "
                                  "tried again every %g s", self.stream, RETRY_SECONDS)
                failing = True
                self._own_pending = True
                await asyncio.sleep(RETRY_SECONDS)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decoded(entries: Sequence[tuple[bytes, dict[bytes, bytes] | None]]) -> list[Entry]:
    """Entries with text ids and field names; an entry deleted meanwhile (None) is skipped."""
    return [(_text(entry_id), {_text(k): v for k, v in fields.items()})
            for entry_id, fields in entries if fields is not None]
