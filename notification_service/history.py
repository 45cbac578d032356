"""Event ids and bounded per-channel history, kept in memory on one node.

The history assigns ids, so "what id comes next" and "what was kept" can never
disagree. An id is ``<epoch>-<sequence>``: the sequence increases strictly
(one counter for the node, so ids also increase per channel), and the epoch
changes whenever history is lost (a restart), so a client can tell "nothing
missed" from "history gone". Kept history is bounded in events per channel,
in age (on every channel, also one nobody touches again), and in real memory
across channels (data kept as JSON, see :class:`_Kept`), so a bot firing at
random codes cannot grow memory. When a reconnecting client asks for events
older than what is kept, :meth:`MemoryHistory.since` says so: never a silent
partial replay. Replayed events are decoded again from JSON: equal to what was
published as JSON, new objects every time.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from . import jsoncodec
from .events import Event, PushRequest

ID_SEPARATOR = "-"
# The notice every transport sends before a replay that cannot be complete.
GAP_EVENT = "RESUME_GAP"


@dataclass(slots=True)
class _Kept:
    """One kept event, as small as it can be: its data stays JSON until a replay needs it.

    Decoded JSON can cost 25 times its text (64 KiB of ``[{},{},...]`` is about
    1 MB of Python objects), so a bound on encoded bytes only holds in memory if
    the encoded bytes are what is kept. Live delivery has the decoded Event
    anyway; only a resuming client pays for decoding, once per replayed event.
    """

    sequence: int
    id: str
    name: str
    time: float
    encoded: bytes  # the event's data as JSON
    push: PushRequest
    receipt: bool
    size: int  # what this costs in memory, counted in MemoryHistory.total_bytes

    def event(self, channel: str) -> Event:
        return Event(self.id, channel, self.name, orjson.loads(self.encoded), self.time,
                     self.push, self.receipt)


@dataclass(slots=True)
class _Channel:
    events: deque[_Kept] = field(default_factory=deque)
    dropped_upto: int = 0  # newest sequence this channel has lost to the bounds
    last_time: float = 0.0  # when it was last published to: its age for the sweep


# Memory that is not the data, measured on CPython 3.11 and rounded up, so that
# total_bytes is what the history really holds (tests/test_history_memory.py checks it).
_KEPT_OVERHEAD = sys.getsizeof(_Kept(0, "", "", 0.0, b"", False, False, 0)) + 8 + 32  # slot, float
_BYTES_HEADER = sys.getsizeof(b"")  # what a bytes object costs besides its content
_ASCII_HEADER = sys.getsizeof("")  # the same for an ASCII str (ids are ASCII)
_PUSH_OPTIONS_SIZE = 256  # a Web Push options object (TTL, urgency, a 32-character topic)
_CHANNEL_OVERHEAD = sys.getsizeof(_Channel()) + sys.getsizeof(deque()) + 160  # OrderedDict entry
_EXPIRED_OVERHEAD = 160 + 32  # OrderedDict entry and the int it maps to

@dataclass(frozen=True, slots=True)
class Missed:
    """What a client that last saw ``after`` missed on one channel.

    ``events`` are oldest first. ``gap`` is true when some events are lost for
    good (older than what is kept, or from an earlier epoch): the client must
    be told, then given what is still there.
    """

    events: list[Event]
    gap: bool


def gap_notice(channel: str, last_event_id: str, available: int) -> dict[str, Any]:
    """What a resuming client is told when events it missed are gone for good."""
    return {"channel": channel, "lastEventId": last_event_id, "available": available,
            "message": "Some events on this channel were lost (older than the kept history, "
                       "or from before a restart); what is still kept follows."}


def event_sequence(event: Event) -> int:
    """The sequence part of an event's id: events of one node sort by it across channels."""
    return int(event.id.rpartition(ID_SEPARATOR)[2])


def parse_id(event_id: str) -> tuple[str, int] | None:
    epoch, separator, sequence = event_id.rpartition(ID_SEPARATOR)
    if not separator or not epoch or not sequence.isdigit():
        return None
    return epoch, int(sequence)


class MemoryHistory:
    """Recent events per channel, bounded in count, age and total memory.

    :param per_channel: events kept per channel (the newest ones).
    :param max_age: seconds an event is kept, on every channel: one that is
        never published to again expires too (see :meth:`sweep`).
    :param max_bytes: memory kept across all channels, in real bytes: each
        event's data as JSON plus what its bookkeeping costs, and each
        channel's. Past it, the oldest events of the least recently published
        channels go first.
    :param max_channels: channels remembered; the least recently published is
        forgotten first (a client resuming on it is then told of a gap).
    :param clock: Unix seconds; replaceable in tests.

    Channels sit in publish order (least recent first), so both the byte bound
    and the age bound only ever look at the front: no publish scans the channels.
    A channel whose every event expired keeps only the newest sequence it lost
    (``_expired``), so a client that saw everything before the channel went
    quiet resumes without a false gap notice.
    """

    def __init__(self, per_channel: int = 100, max_age: float = 600.0,
                 max_bytes: int = 64 * 1024 * 1024, max_channels: int = 100_000,
                 epoch: str | None = None, clock: Callable[[], float] = time.time) -> None:
        self.per_channel = per_channel
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.max_channels = max_channels
        self.epoch = epoch or secrets.token_hex(4)
        self.clock = clock
        self.sequence = 0
        self.total_bytes = 0
        self.forgotten_upto = 0  # newest sequence of any channel dropped entirely
        self._channels: OrderedDict[str, _Channel] = OrderedDict()  # least recent first
        # Channels whose events all expired by age: channel -> newest sequence lost, oldest first.
        self._expired: OrderedDict[str, int] = OrderedDict()
        # Publishes sweep at most this often (a tenth of max_age, at most 1 s), so
        # the sweep costs the hot path one comparison; expiry is at most that late.
        self._sweep_every = min(1.0, max_age / 10)
        self._next_sweep = 0.0

    def append(self, channel: str, name: str, data: Any, *, push: PushRequest = False,
               receipt: bool = False) -> Event:
        """Create the channel's next Event and keep it (as JSON, see :class:`_Kept`)."""
        now = self.clock()
        self.sequence += 1
        event = Event(f"{self.epoch}{ID_SEPARATOR}{self.sequence}", channel, name, data, now,
                      push, receipt)
        self._keep(event, self.sequence)
        return event

    def _keep(self, event: Event, sequence: int, encoded: bytes | None = None) -> None:
        """Keep ``event`` (its sequence given) as the channel's newest, then apply the bounds.

        The node's own :meth:`append` and the cluster's mirror (which takes ids
        from the publish step in Redis) both keep events through here, so the
        bounds are the same in both modes.
        """
        event_id, channel, name, _data, now, push, receipt = event
        if encoded is None:  # the mirror passes the JSON it read from the bus
            # orjson's bytes keep the buffer it grew while encoding (1 MB for 15 KB
            # of ``{},``), which sys.getsizeof does not show: keep an exact copy,
            # so the size counted is the size held.
            encoded = memoryview(jsoncodec.dumps_bytes(event.data)).tobytes()
        kept = self._channels.get(channel)
        if kept is None:
            kept = self._channels[channel] = _Channel(dropped_upto=self._unexpire(channel))
            self.total_bytes += _CHANNEL_OVERHEAD + sys.getsizeof(channel)
        else:
            self._channels.move_to_end(channel)
        kept.last_time = now
        size = (len(encoded) + _BYTES_HEADER + len(event_id) + _ASCII_HEADER + sys.getsizeof(name)
                + _KEPT_OVERHEAD + (0 if push is False or push is True else _PUSH_OPTIONS_SIZE))
        events = kept.events
        events.append(_Kept(sequence, event_id, name, now, encoded, push, receipt, size))
        self.total_bytes += size
        if len(events) > self.per_channel:
            self._drop_oldest(kept)
        if events[0].time < now - self.max_age:
            self._expire(kept, now)
        if now >= self._next_sweep:
            self.sweep(now)
        while (self.total_bytes > self.max_bytes
               or len(self._channels) + len(self._expired) > self.max_channels):
            if not self._shrink():
                break

    def since(self, channel: str, after: str | None) -> Missed:
        """The events of ``channel`` after the id ``after`` (None: the client saw nothing yet)."""
        kept = self._channels.get(channel)
        if kept is not None:
            self._expire(kept, self.clock())
        if after is None:
            return Missed([], gap=False)
        parsed = parse_id(after)
        if parsed is None or parsed[0] != self.epoch:
            # another epoch: this node cannot know what was lost
            return Missed(self._decoded(channel, kept, 0), gap=True)
        last_seen = parsed[1]
        if kept is not None:
            dropped_upto = kept.dropped_upto
        else:
            dropped_upto = self._expired.get(channel, self.forgotten_upto)
        return Missed(self._decoded(channel, kept, last_seen), gap=last_seen < dropped_upto)

    def event_count(self) -> int:
        """Events kept across all channels (read by /metrics at scrape time, not per event)."""
        return sum(len(kept.events) for kept in self._channels.values())

    def channel_count(self) -> int:
        """Channels remembered, including those whose events all expired."""
        return len(self._channels) + len(self._expired)

    def recent(self, channel: str) -> list[Event]:
        """The events kept for ``channel``, oldest first."""
        return self.since(channel, f"{self.epoch}{ID_SEPARATOR}0").events

    def sweep(self, now: float | None = None) -> None:
        """Expire every channel whose newest event is older than ``max_age``.

        Cheap enough for every publish: the least recently published channels
        are at the front, so it stops at the first channel still fresh. Also
        run periodically (:meth:`sweeping`), so history nobody publishes to or
        reads any more goes even when nothing else happens.
        """
        now = self.clock() if now is None else now
        self._next_sweep = now + self._sweep_every
        oldest_allowed = now - self.max_age
        while self._channels:
            channel, kept = next(iter(self._channels.items()))
            if kept.last_time >= oldest_allowed:
                return
            while kept.events:
                self._drop_oldest(kept)
            del self._channels[channel]
            self.total_bytes -= _CHANNEL_OVERHEAD + sys.getsizeof(channel)
            self._expired[channel] = kept.dropped_upto
            self.total_bytes += _EXPIRED_OVERHEAD + sys.getsizeof(channel)

    async def sweeping(self, _app: Any = None) -> AsyncIterator[None]:
        """An aiohttp cleanup context running :meth:`sweep` while the server runs.

        Every tenth of ``max_age`` (1 to 60 s), so an untouched channel's
        history is gone at most about 10% after its age.
        """
        interval = min(60.0, max(1.0, self.max_age / 10))

        async def sweep_forever() -> None:
            while True:
                await asyncio.sleep(interval)
                self.sweep()

        task = asyncio.create_task(sweep_forever())
        yield
        task.cancel()

    # -- bounds ----------------------------------------------------------
    def _decoded(self, channel: str, kept: _Channel | None, after: int) -> list[Event]:
        if kept is None:
            return []
        return [item.event(channel) for item in kept.events if item.sequence > after]

    def _drop_oldest(self, kept: _Channel) -> None:
        item = kept.events.popleft()
        self.total_bytes -= item.size
        kept.dropped_upto = max(kept.dropped_upto, item.sequence)

    def _expire(self, kept: _Channel, now: float) -> None:
        oldest_allowed = now - self.max_age
        while kept.events and kept.events[0].time < oldest_allowed:
            self._drop_oldest(kept)

    def _unexpire(self, channel: str) -> int:
        """A channel published to again after it expired: what it had lost."""
        dropped_upto = self._expired.pop(channel, None)
        if dropped_upto is None:
            return 0
        self.total_bytes -= _EXPIRED_OVERHEAD + sys.getsizeof(channel)
        return dropped_upto

    def _shrink(self) -> bool:
        """Free the cheapest-to-lose memory; False when there is nothing left to free.

        Expired channels go first (they hold no events), then the oldest event
        of the least recently published channel, then that channel itself.
        """
        if self._expired:
            channel, dropped_upto = self._expired.popitem(last=False)
            self.total_bytes -= _EXPIRED_OVERHEAD + sys.getsizeof(channel)
            self.forgotten_upto = max(self.forgotten_upto, dropped_upto)
            return True
        if not self._channels:
            return False
        channel, kept = next(iter(self._channels.items()))
        if kept.events and len(self._channels) <= self.max_channels:
            self._drop_oldest(kept)
            if kept.events:
                return True
        while kept.events:
            self._drop_oldest(kept)
        self.forgotten_upto = max(self.forgotten_upto, kept.dropped_upto)
        del self._channels[channel]
        self.total_bytes -= _CHANNEL_OVERHEAD + sys.getsizeof(channel)
        return True
