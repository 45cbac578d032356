"""The alert queues in Redis (``--redis-url``): one JSON value per code, shared by every node.

Apart from :mod:`.queue_store` so that a single-node server never imports
redis (about 7 MB of RSS): :mod:`.box` imports this module only when
``--redis-url`` is set.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

import redis.asyncio as aioredis

from ..background import cancel_and_wait
from ..cluster.redis import RedisKeys, close_pubsub
from ..errors import ALERT_QUEUE_UNAVAILABLE
from .queue import CodeQueue
from .queue_store import NO_QUEUE, T

log = logging.getLogger(__name__)

REDIS_TTL_SECONDS = 7 * 24 * 3600
REDIS_RETRIES = 50
# An alert another node is still writing may be younger than the one just written:
# a young alert waits this long at most for its overlay to have it (CodeQueue.next).
SETTLE_SECONDS = 1.0
RESYNC_SECONDS = 30.0  # how often each node reads the set of codes with queues again


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
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _resync(self) -> None:
        members = await self.client.smembers(self.keys.alert_codes)
        self.codes = {member.decode() for member in members}
        self.synced = True

    async def _listen(self) -> None:
        failing = False
        while True:
            pubsub = self.client.pubsub()
            try:
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
            finally:
                await close_pubsub(pubsub)


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

    def may_have_queue(self, code: str) -> bool:
        return code in self.known

    async def update(self, code: str, change: Callable[[CodeQueue], T],
                     new: Callable[[], CodeQueue] | None = None) -> T:
        key = self.keys.alert_queue(code)
        if new is None and not self.may_have_queue(code):
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
