"""Where each code's alert queue lives: in memory with SQLite behind it, or in Redis.

Both run one operation at a time per code: :meth:`update` loads the code's
:class:`~.queue.CodeQueue`, applies a change (a plain function, which may run
again on a conflict) and saves it. In memory the change runs before the first
await, so for a publish it happens before any other task can see the event;
the SQLite copy is written by one background writer 50 ms later at most, all
changes of that moment in one commit, so a restart finds the queue as it was
(a crash loses the last 50 ms).
In Redis (``--redis-url``, :mod:`.queue_redis`) the code's queue is one JSON value changed under
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

from .queue import CodeQueue
from .sqlite import AlertDatabase

log = logging.getLogger(__name__)

T = TypeVar("T")
NO_QUEUE: Any = object()  # what update answers for a code without a queue (and no ``new``)
MAX_CODES = 1000
MAX_BYTES = 64 * 1024 * 1024
WRITE_DELAY = 0.05  # seconds changes gather before one write: a burst costs one commit

SQLITE_LOAD = "SELECT code, state FROM queues"
SQLITE_SAVE = """
INSERT INTO queues (code, state, updated) VALUES (?, ?, ?)
ON CONFLICT (code) DO UPDATE SET state = excluded.state, updated = excluded.updated"""
SQLITE_DELETE = "DELETE FROM queues WHERE code = ?"


class QueueStore(Protocol):
    settle: float  # seconds a young alert waits for its overlay to have it (CodeQueue.next)

    def may_have_queue(self, code: str) -> bool:
        """False when ``code`` surely has no queue: a publish to it skips the queue (no await)."""

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

    def may_have_queue(self, code: str) -> bool:
        return code in self._queues

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
