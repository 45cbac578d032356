"""Event ids and bounded per-channel history, kept in memory on one node.

The history assigns ids, so "what id comes next" and "what was kept" can never
disagree. An id is ``<epoch>-<sequence>``: the sequence increases strictly per
channel, and the epoch changes whenever history is lost (a restart), so a
client can tell "nothing missed" from "history gone". Bounded in events per
channel and in channels, so a bot firing at random codes cannot grow memory.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque
from typing import Any

from .events import Event


class MemoryHistory:
    """Per-channel ring buffers of recent events.

    :param per_channel: events kept per channel (the newest ones).
    :param max_channels: channels remembered; the least recently published is
        forgotten first (its sequence restarts under the same epoch only if it
        is published again after being forgotten, which is why the epoch also
        names this process).
    """

    def __init__(self, per_channel: int = 100, max_channels: int = 10_000,
                 epoch: str | None = None) -> None:
        self.per_channel = per_channel
        self.max_channels = max_channels
        self.epoch = epoch or secrets.token_hex(4)
        self._channels: OrderedDict[str, tuple[list[int], deque[Event]]] = OrderedDict()

    def append(self, channel: str, name: str, data: Any, time: float, *,
               push: bool = False) -> Event:
        """Create the channel's next Event and keep it."""
        entry = self._channels.get(channel)
        if entry is None:
            entry = ([0], deque(maxlen=self.per_channel))
            self._channels[channel] = entry
            if len(self._channels) > self.max_channels:
                self._channels.popitem(last=False)
        else:
            self._channels.move_to_end(channel)
        counter, events = entry
        counter[0] += 1
        event = Event(f"{self.epoch}-{counter[0]}", channel, name, data, time, push)
        events.append(event)
        return event

    def recent(self, channel: str) -> list[Event]:
        """The events kept for ``channel``, oldest first."""
        entry = self._channels.get(channel)
        return list(entry[1]) if entry else []


