"""Where each code's alert queue lives: in memory with SQLite behind it, or in Redis.

Both run one operation at a time per code: :meth:`update` loads the code's
:class:`~.queue.CodeQueue`, applies a change (a plain function, which may run
again on a conflict) and saves it. In memory the change runs before the first
await, so for a publish it happens before any other task can see the event;
the SQLite copy is written by one background writer 50 ms later at most, all
changes of that moment in one commit, so a restart finds the queue as it was
(a crash loses the last 50 ms).
In Redis (``--redis-url``) the code's queue is one JSON value changed under
WATCH/MULTI, so every node sees the same lines, leases and presence. Memory is
bounded in codes and bytes (the least recently changed code goes first);
Redis values expire a week after their last change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any, Callable, Protocol, TypeVar

import redis.asyncio as aioredis

from ..cluster.redis import RedisKeys
from ..errors import ALERT_QUEUE_UNAVAILABLE
from .queue import CodeQueue
from .sqlite import AlertDatabase

log = logging.getLogger(__name__)

T = TypeVar("T")
NO_QUEUE: Any = object()  # what update answers for a code without a queue (and no ``new``)
MAX_CODES = 1000
MAX_BYTES = 64 * 1024 * 1024
WRITE_DELAY = 0.05  # seconds changes gather before one write: a burst costs one commit
REDIS_TTL_SECONDS = 7 * 24 * 3600
REDIS_RETRIES = 50
# An alert another node is still writing may be younger than the one just written:
# a young alert waits this long at most for its overlay to have it (CodeQueue.next).
SETTLE_SECONDS = 1.0
RESYNC_SECONDS = 30.0  # how often each node reads the set of codes with queues again

SQLITE_LOAD = "SELECT code, state FROM queues"
SQLITE_SAVE = """
INSERT INTO queues (code, state, updated) VALUES (?, ?, ?)
ON CONFLICT (code) DO UPDATE SET state = excluded.state, updated = excluded.updated"""
SQLITE_DELETE = "DELETE FROM queues WHERE code = ?"


class QueueStore(Protocol):
    settle: float  # seconds a young alert waits for its overlay to have it (CodeQueue.next)

    async def update(self, code: str, change: Callable[[CodeQueue], T],
                     new: Callable[[], CodeQueue] | None = None) -> T:
        """Apply ``change`` to the code's queue and keep the result; ``NO_QUEUE`` if it has none.

        ``new`` makes the queue when the code has none yet; without it nothing is
        created (a publish to a code no overlay ever opened costs nothing).
        ``change`` may run more than once (Redis, on a conflict): no side effects.
        """

    async def view(self, code: str, look: Callable[[CodeQueue], T]) -> T:
        """``look`` at the queue as it is now (leases expired), without keeping anything."""

    async def codes(self) -> list[str]: ...


class MemoryQueueStore:
    """Queues in memory, written through to the alerts SQLite file by one writer task."""

    settle = 0.0  # every alert joins its lines as it is published: none can come late

    def __init__(self, database: AlertDatabase, *, max_codes: int = MAX_CODES,
                 max_bytes: int = MAX_BYTES) -> None:
        self.database = database
        self.max_codes = max_codes
        self.max_bytes = max_bytes
        self._queues: OrderedDict[str, CodeQueue] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._total = 0  # sum of _sizes: the bytes the queues take as stored
        self._dirty: set[str] = set()
        self._forgotten: set[str] = set()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    async def load(self) -> None:
        rows = await self.database.run(lambda db: db.execute(SQLITE_LOAD).fetchall())
        now = time.time()
        for code, state in rows:
            queue = CodeQueue.from_json(state)
            queue.after_restart(now)
            self._queues[code] = queue
            self._resize(code, len(state))
        log.info("alert queues of %d codes loaded", len(rows))

    async def update(self, code: str, change: Callable[[CodeQueue], T],
                     new: Callable[[], CodeQueue] | None = None) -> T:
        queue = self._queues.get(code)
        if queue is None:
            if new is None:
                return NO_QUEUE
            queue = self._queues[code] = new()
        self._queues.move_to_end(code)
        result = change(queue)  # before any await: nothing else runs in between
        self._changed(code)
        return result

    async def view(self, code: str, look: Callable[[CodeQueue], T]) -> T:
        queue = self._queues.get(code)
        if queue is None:
            return NO_QUEUE
        queue.expire(time.time())
        return look(queue)

    async def codes(self) -> list[str]:
        return list(self._queues)

    def _changed(self, code: str) -> None:
        self._dirty.add(code)
        self._forgotten.discard(code)
        self._bound(keep=code)
        if self._closed:
            return
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write(),
                                                                  name="alert-queue-writer")

    def _bound(self, keep: str | None = None) -> None:
        """Forget the least recently changed codes past the bounds (sizes as last written)."""
        while len(self._queues) > self.max_codes or self._total > self.max_bytes:
            oldest = next(iter(self._queues))
            if oldest == keep or len(self._queues) == 1:
                break
            log.warning("alert queue of the least recently active code dropped (bounds: %d "
                        "codes, %d bytes)", self.max_codes, self.max_bytes)
            del self._queues[oldest]
            self._resize(oldest, 0)
            self._sizes.pop(oldest)
            self._dirty.discard(oldest)
            self._forgotten.add(oldest)

    def _resize(self, code: str, size: int) -> None:
        self._total += size - self._sizes.get(code, 0)
        self._sizes[code] = size

    async def _write(self, delay: float = WRITE_DELAY) -> None:
        """Write every changed code; loops until nothing is left to write."""
        while self._dirty or self._forgotten:
            await asyncio.sleep(delay)
            now = time.time()
            saves = [(code, self._queues[code].to_json(), now) for code in self._dirty
                     if code in self._queues]
            for code, state, _now in saves:
                self._resize(code, len(state))
            self._bound()
            deletes = [(code,) for code in self._forgotten]
            self._dirty.clear()
            self._forgotten.clear()

            def write(db: Any) -> None:
                with db:
                    db.executemany(SQLITE_SAVE, saves)
                    db.executemany(SQLITE_DELETE, deletes)
            try:
                await self.database.run(write)
            except Exception:
                log.exception("could not write %d alert queues to %s", len(saves),
                              self.database.path)
                return

    async def close(self) -> None:
        """Write what is left before the database closes; later changes stay in memory."""
        self._closed = True
        if self._writer is not None:
            await self._writer
        await self._write(delay=0)


class QueuedCodes:
    """The codes that have a queue in Redis, known on every node without asking per publish.

    Most publishes go to codes no overlay ever opened; knowing them locally
    spares each of those a Redis round trip. The set is read at start and
    again every :data:`RESYNC_SECONDS` (and after Redis was away); a node that
    creates a queue announces the code in the same transaction, on a pub/sub
    channel every node listens to, so the others know within a moment. A
    code missed for that moment loses nothing: its overlay hands the queue
    what it was delivered (``have``). A code whose queue expired stays in the
    set until the next resync, costing a GET per publish meanwhile.
    """

    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self.client = client
        self.keys = keys
        self.codes: set[str] = set()
        self.synced = False  # False: not read yet (or Redis was away): ask Redis
        self._task: asyncio.Task[None] | None = None

    def __contains__(self, code: str) -> bool:
        return not self.synced or code in self.codes

    async def start(self) -> None:
        try:
            await self._resync()
        except (aioredis.RedisError, OSError) as error:
            log.warning("alert queue: the codes with queues are not known yet: %s", error)
        self._task = asyncio.get_running_loop().create_task(self._listen(),
                                                            name="alert-queue-codes")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _resync(self) -> None:
        members = await self.client.smembers(self.keys.alert_codes)
        self.codes = {member.decode() for member in members}
        self.synced = True

    async def _listen(self) -> None:
        failing = False
        while True:
            try:
                async with self.client.pubsub() as pubsub:
                    await pubsub.subscribe(self.keys.alert_codes_added)
                    await self._resync()  # after subscribing: nothing announced is missed
                    if failing:
                        log.warning("alert queue: the codes with queues are followed again")
                        failing = False
                    resync_at = time.monotonic() + RESYNC_SECONDS
                    while True:
                        message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                           timeout=1.0)
                        if message is not None and message.get("type") == "message":
                            self.codes.add(message["data"].decode())
                        if time.monotonic() >= resync_at:
                            await self._resync()
                            resync_at = time.monotonic() + RESYNC_SECONDS
            except asyncio.CancelledError:
                raise
            except (aioredis.RedisError, OSError) as error:
                if not failing:
                    log.warning("alert queue: cannot follow the codes with queues: %s; every "
                                "publish asks Redis until it answers", error)
                    failing = True
                self.synced = False  # until read again, every code might have a queue
                await asyncio.sleep(1.0)


class RedisQueueStore:
    """Each code's queue as one JSON value in Redis, changed optimistically (WATCH/MULTI)."""

    settle = SETTLE_SECONDS

    def __init__(self, client: aioredis.Redis, keys: RedisKeys) -> None:
        self.client = client
        self.keys = keys
        self.known = QueuedCodes(client, keys)

    async def start(self) -> None:
        await self.known.start()

    async def close(self) -> None:
        await self.known.stop()

    async def update(self, code: str, change: Callable[[CodeQueue], T],
                     new: Callable[[], CodeQueue] | None = None) -> T:
        key = self.keys.alert_queue(code)
        if new is None and code not in self.known:
            return NO_QUEUE  # no round trip for a code without a queue
        try:
            if new is None and await self.client.get(key) is None:
                return NO_QUEUE  # one round trip for a code whose queue expired
            async with self.client.pipeline(transaction=True) as pipe:
                for _attempt in range(REDIS_RETRIES):
                    try:
                        await pipe.watch(key)
                        stored = await pipe.get(key)
                        if stored is None and new is None:
                            await pipe.reset()
                            return NO_QUEUE
                        queue = new() if stored is None else CodeQueue.from_json(stored)
                        result = change(queue)
                        pipe.multi()
                        pipe.set(key, queue.to_json(), ex=REDIS_TTL_SECONDS)
                        if stored is None:
                            pipe.sadd(self.keys.alert_codes, code)
                            pipe.publish(self.keys.alert_codes_added, code)
                        await pipe.execute()
                        if stored is None:
                            self.known.codes.add(code)
                        return result
                    except aioredis.WatchError:
                        continue
        except (aioredis.RedisError, OSError) as error:
            raise _unavailable(error) from None
        raise ALERT_QUEUE_UNAVAILABLE(f"The alert queue of this code changed {REDIS_RETRIES} "
                                      f"times while this request tried to change it; try again.")

    async def view(self, code: str, look: Callable[[CodeQueue], T]) -> T:
        try:
            stored = await self.client.get(self.keys.alert_queue(code))
        except (aioredis.RedisError, OSError) as error:
            raise _unavailable(error) from None
        if stored is None:
            return NO_QUEUE
        queue = CodeQueue.from_json(stored)
        queue.expire(time.time())
        return look(queue)

    async def codes(self) -> list[str]:
        try:
            names = sorted(name.decode() for name in
                           await self.client.smembers(self.keys.alert_codes))
            if not names:
                return []
            found = await self.client.exists(*[self.keys.alert_queue(name) for name in names])
            if found == len(names):
                return names
            alive = [name for name in names
                     if await self.client.exists(self.keys.alert_queue(name))]
            gone = set(names) - set(alive)
            if gone:
                await self.client.srem(self.keys.alert_codes, *gone)
            return alive
        except (aioredis.RedisError, OSError) as error:
            raise _unavailable(error) from None


def _unavailable(error: Exception) -> Exception:
    log.warning("alert queue: Redis does not answer: %s", error)
    return ALERT_QUEUE_UNAVAILABLE("The alert queue's shared state (Redis) does not answer "
                                   "right now; try again in a moment.")
