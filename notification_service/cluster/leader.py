"""One node at a time does a job: a lease in Redis, taken with ``SET NX PX`` and renewed.

For work that must run exactly once in the cluster and cannot be split (the
flask-socketio bridge: every node subscribed would publish each message once
per node). The holder renews the lease every third of its lifetime; a node
that cannot renew (Redis gone, the lease taken) stops at once; a node killed
with ``kill -9`` is replaced once its lease expires, a node stopping cleanly
hands over at once (it deletes its own lease). Renewal and release check
that the lease is still this node's in one server-side script, so a node
never extends or deletes another's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import redis.asyncio as aioredis

from ..background import cancel_and_wait

log = logging.getLogger(__name__)

LEASE_SECONDS = 10.0
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

Job = Callable[[], Awaitable[None]]


class Lease:
    """Runs ``job`` on this node while it holds the lease ``key``, and only then.

    :param job: runs until cancelled (when the lease is lost or the app stops).
    :param seconds: the lease's lifetime; a dead holder is replaced after at most this.
    """

    def __init__(self, client: aioredis.Redis, key: str, node: str, job: Job, *,
                 seconds: float = LEASE_SECONDS) -> None:
        self.client = client
        self.key = key
        self.node = node
        self.job = job
        self.seconds = seconds
        self.held = False
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)
        self._task: asyncio.Task[None] | None = None
        self._job: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"lease {self.key}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self._lose()
        try:
            await self._release(keys=[self.key], args=[self.node])
        except (aioredis.RedisError, OSError):
            pass  # it expires by itself

    async def _run(self) -> None:
        milliseconds = int(self.seconds * 1000)
        while True:
            try:
                if self.held:
                    self.held = bool(await self._renew(keys=[self.key],
                                                       args=[self.node, milliseconds]))
                    if not self.held:
                        log.warning("%s: this node lost the lease", self.key)
                else:
                    self.held = bool(await self.client.set(self.key, self.node, nx=True,
                                                           px=milliseconds))
                    if self.held:
                        log.info("%s: this node (%s) holds the lease", self.key, self.node)
            except (aioredis.RedisError, OSError):
                self.held = False  # cannot prove it: another node may take over
            if self.held and self._job is None:
                self._job = asyncio.create_task(self._guarded(), name=f"job of {self.key}")
            elif not self.held:
                await self._lose()
            await asyncio.sleep(self.seconds / 3)

    async def _guarded(self) -> None:
        try:
            await self.job()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: the job failed; it starts again while this node holds the lease",
                          self.key)
        finally:
            self._job = None

    async def _lose(self) -> None:
        job, self._job = self._job, None
        await cancel_and_wait(job)
