"""Remembers recent publishes by idempotency key, so a retried publish never alerts twice.

Chat bots and backends retry when an answer is slow. A publish that names a key
already seen on the same channel within the time window returns the first
answer instead of delivering again.

Only the answer is remembered (:class:`FirstAnswer`: id, name, time and the
listener counts), never the event's data: otherwise every keyed publish would
keep its whole payload for the window, outside the history's byte bound (500
keyed 64 KB publishes held 30 MB). Bounded in keys, in real bytes and in time;
past a bound the oldest answer is forgotten first, which at worst lets a very
late retry deliver again, never grows memory.
"""

from __future__ import annotations

import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from .events import Event

IDEMPOTENCY_KEY_MAX_LENGTH = 200


@dataclass(frozen=True, slots=True)
class FirstAnswer:
    """What a repeated publish is answered with: the first publish's answer, without its data.

    ``listeners`` and ``extra`` are the first report's own dictionaries, so
    counts a background transport or an observer adds after the answer was
    remembered (Web Push, the alert queue's position) are in it too.
    """

    event_id: str
    name: str
    time: float
    listeners: dict[str, int]
    extra: dict[str, Any]

    def event(self, channel: str) -> Event:
        """The first event as a report names it: id, channel, name and time, data None."""
        return Event(self.event_id, channel, self.name, None, self.time)


# Memory an entry holds besides its strings, rounded up on CPython 3.11: the
# OrderedDict entry and its (channel, key) tuple, the FirstAnswer and its
# (expires, answer, size) tuple, and room for the transports and observer keys
# added to ``listeners``/``extra`` after it was remembered.
_ENTRY_OVERHEAD = 1024


class IdempotencyCache:
    """(channel, key) -> the :class:`FirstAnswer`, for ``window`` seconds.

    :param max_keys: answers remembered at most.
    :param max_bytes: memory they may use, counted from the real size of each
        entry's strings and dictionaries plus a fixed overhead.
    """

    def __init__(self, window: float = 300.0, max_keys: int = 100_000,
                 max_bytes: int = 8 * 1024 * 1024,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.max_keys = max_keys
        self.max_bytes = max_bytes
        self.clock = clock
        self.total_bytes = 0
        # Oldest first: with one window for all, insertion order is expiry order.
        self._answers: OrderedDict[tuple[str, str], tuple[float, FirstAnswer, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, channel: str, key: str) -> FirstAnswer | None:
        self._expire()
        found = self._answers.get((channel, key))
        return found[1] if found else None

    def put(self, channel: str, key: str, answer: FirstAnswer) -> None:
        self._expire()
        self._forget((channel, key))
        size = (_ENTRY_OVERHEAD + sys.getsizeof(channel) + sys.getsizeof(key)
                + sys.getsizeof(answer.event_id) + sys.getsizeof(answer.name)
                + sys.getsizeof(answer.listeners) + sys.getsizeof(answer.extra))
        self._answers[(channel, key)] = (self.clock() + self.window, answer, size)
        self.total_bytes += size
        while self._answers and (len(self._answers) > self.max_keys
                                 or self.total_bytes > self.max_bytes):
            self._forget(next(iter(self._answers)))

    def _forget(self, entry: tuple[str, str]) -> None:
        found = self._answers.pop(entry, None)
        if found is not None:
            self.total_bytes -= found[2]

    def _expire(self) -> None:
        now = self.clock()
        while self._answers:
            entry, (expires, _answer, _size) = next(iter(self._answers.items()))
            if expires > now:
                return
            self._forget(entry)
