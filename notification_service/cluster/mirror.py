"""The node's local mirror of the cluster's history: resume and polling on every node, unchanged.

The publish step keeps each channel's history in Redis (``{prefix}:h:{channel}``,
capped and expiring like the in-memory history). A node reads it all once at
start and on an epoch change, then keeps its mirror up to date from the bus, in
bus order, in the same synchronous step that hands an event to the transports:
a client resuming on any node therefore sees exactly what it missed, then live
events, with no duplicate and no gap, as on a single node. The mirror never
assigns an id: ids come from the publish step.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import redis.asyncio as aioredis

from .. import jsoncodec
from ..events import Event
from ..history import _EXPIRED_OVERHEAD, MemoryHistory, event_sequence
from .redis import RedisKeys

log = logging.getLogger(__name__)

SCAN_BATCH = 500


class HistoryMirror(MemoryHistory):
    """A :class:`MemoryHistory` filled from Redis and the bus instead of assigning ids."""

    def append(self, *_args: Any, **_kwargs: Any) -> Event:
        raise RuntimeError("in cluster mode ids come from the publish step in Redis")

    def keep(self, event: Event, encoded: bytes | None = None) -> None:
        """Keep ``event`` (read from the bus, its data as ``encoded`` JSON), unless the
        mirror has it already."""
        sequence = event_sequence(event)
        kept = self._channels.get(event.channel)
        if kept is not None and kept.events and kept.events[-1].sequence >= sequence:
            return  # loaded at start, and read again from the bus
        self._keep(event, sequence, encoded)

    def mark_dropped(self, channel: str, upto: int) -> None:
        """Events of ``channel`` up to sequence ``upto`` are gone (trimmed in Redis)."""
        kept = self._channels.get(channel)
        if kept is not None:
            kept.dropped_upto = max(kept.dropped_upto, upto)
        elif upto:  # nothing kept of it here: remembered like a channel that expired
            if channel not in self._expired:
                self.total_bytes += _EXPIRED_OVERHEAD + sys.getsizeof(channel)
            self._expired[channel] = max(self._expired.get(channel, 0), upto)

    def reset(self, epoch: str) -> None:
        """Forget everything (before a reload); ``epoch`` is the cluster's epoch now."""
        self.epoch = epoch
        self._channels.clear()
        self._expired.clear()
        self.total_bytes = 0
        self.forgotten_upto = 0


def decode_entry(channel: str, entry_id: bytes, fields: dict[bytes, bytes]) -> Event:
    """An Event from a history entry (``e`` epoch, ``n`` name, ``d`` data)."""
    sequence = entry_id.partition(b"-")[0].decode()
    return Event(f"{fields[b'e'].decode()}-{sequence}", channel, fields[b"n"].decode(),
                 jsoncodec.loads(fields[b"d"]), int(sequence) / 1_000_000)


async def load(mirror: HistoryMirror, client: aioredis.Redis, keys: RedisKeys,
               epoch: str) -> int:
    """Fill ``mirror`` with every channel's history kept in Redis; return how many events.

    A channel whose stream was trimmed says up to which entry it dropped
    (``max-deleted-entry-id``), so a client resuming from before that is told
    of the gap, as with the in-memory history.
    """
    mirror.reset(epoch)
    prefix = keys.history("")
    loaded = 0
    async for key in client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=SCAN_BATCH):
        channel = key.decode()[len(prefix):]
        async with client.pipeline(transaction=False) as pipe:
            pipe.xrange(key, count=max(1, mirror.per_channel))
            pipe.xinfo_stream(key)
            try:
                entries, info = await pipe.execute()
            except aioredis.ResponseError:  # expired between SCAN and XRANGE
                continue
        for entry_id, fields in entries[-mirror.per_channel:] if mirror.per_channel else []:
            mirror.keep(decode_entry(channel, entry_id, fields), fields[b"d"])
            loaded += 1
        deleted = info.get("max-deleted-entry-id", b"0-0")
        dropped = int((deleted.decode() if isinstance(deleted, bytes) else str(deleted))
                      .partition("-")[0])
        mirror.mark_dropped(channel, dropped)
    return loaded
