"""Event ids and bounded per-channel history, kept in memory on one node.

The history assigns ids, so "what id comes next" and "what was kept" can never
disagree. An id is ``<epoch>-<sequence>``: the sequence increases strictly
(one counter for the node, so ids also increase per channel), and the epoch
changes whenever history is lost (a restart), so a client can tell "nothing
missed" from "history gone". Kept history is bounded in events per channel,
in age, and in total bytes across channels, so a bot firing at random codes
cannot grow memory. When a reconnecting client asks for events older than
what is kept, :meth:`MemoryHistory.since` says so: never a silent partial replay.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable

from . import jsoncodec
from .events import Event, PushRequest

ID_SEPARATOR = "-"
# The notice every transport sends before a replay that cannot be complete.
GAP_EVENT = "RESUME_GAP"


@dataclass(slots=True)
class _Channel:
    events: deque[tuple[Event, int]] = field(default_factory=deque)  # (event, encoded size)
    dropped_upto: int = 0  # newest sequence this channel has lost to the bounds


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
    """Recent events per channel, bounded in count, age and total bytes.

    :param per_channel: events kept per channel (the newest ones).
    :param max_age: seconds an event is kept.
    :param max_bytes: encoded data kept across all channels; past it, the
        oldest events of the least recently published channels go first.
    :param max_channels: channels remembered; the least recently published is
        forgotten first (a client resuming on it is then told of a gap).
    :param clock: Unix seconds; replaceable in tests.
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
        self._channels: OrderedDict[str, _Channel] = OrderedDict()

    def append(self, channel: str, name: str, data: Any, *, push: PushRequest = False,
               receipt: bool = False) -> Event:
        """Create the channel's next Event and keep it."""
        now = self.clock()
        self.sequence += 1
        event = Event(f"{self.epoch}{ID_SEPARATOR}{self.sequence}", channel, name, data, now,
                      push, receipt)
        size = len(jsoncodec.dumps_bytes(data))
        kept = self._channels.get(channel)
        if kept is None:
            kept = self._channels[channel] = _Channel()
        else:
            self._channels.move_to_end(channel)
        kept.events.append((event, size))
        self.total_bytes += size
        if len(kept.events) > self.per_channel:
            self._drop_oldest(kept)
        self._expire(kept, now)
        while self._channels and (self.total_bytes > self.max_bytes
                                  or len(self._channels) > self.max_channels):
            self._shrink_least_recent()
        return event

    def since(self, channel: str, after: str | None) -> Missed:
        """The events of ``channel`` after the id ``after`` (None: the client saw nothing yet)."""
        kept = self._channels.get(channel)
        if kept is not None:
            self._expire(kept, self.clock())
        events = [event for event, _size in kept.events] if kept else []
        if after is None:
            return Missed([], gap=False)
        parsed = parse_id(after)
        if parsed is None or parsed[0] != self.epoch:
            return Missed(events, gap=True)  # another epoch: this node cannot know what was lost
        last_seen = parsed[1]
        dropped_upto = kept.dropped_upto if kept else self.forgotten_upto
        newer = [event for event in events if parse_id(event.id)[1] > last_seen]  # type: ignore[index]
        return Missed(newer, gap=last_seen < dropped_upto)

    def event_count(self) -> int:
        """Events kept across all channels (read by /metrics at scrape time, not per event)."""
        return sum(len(kept.events) for kept in self._channels.values())

    def recent(self, channel: str) -> list[Event]:
        """The events kept for ``channel``, oldest first."""
        return self.since(channel, f"{self.epoch}{ID_SEPARATOR}0").events

    # -- bounds ----------------------------------------------------------
    def _drop_oldest(self, kept: _Channel) -> None:
        event, size = kept.events.popleft()
        self.total_bytes -= size
        kept.dropped_upto = max(kept.dropped_upto, parse_id(event.id)[1])  # type: ignore[index]

    def _expire(self, kept: _Channel, now: float) -> None:
        oldest_allowed = now - self.max_age
        while kept.events and kept.events[0][0].time < oldest_allowed:
            self._drop_oldest(kept)

    def _shrink_least_recent(self) -> None:
        """Drop the oldest event of the least recently published channel, or the channel."""
        channel, kept = next(iter(self._channels.items()))
        if kept.events and len(self._channels) <= self.max_channels:
            self._drop_oldest(kept)
            if kept.events:
                return
        while kept.events:
            self._drop_oldest(kept)
        self.forgotten_upto = max(self.forgotten_upto, kept.dropped_upto)
        del self._channels[channel]
