"""Remembers recent publishes by idempotency key, so a retried publish never alerts twice.

Chat bots and backends retry when an answer is slow. A publish that names a key
already seen on the same channel within the time window returns the first
delivery report instead of delivering again. Bounded in keys and time.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Callable, Generic, TypeVar

Report = TypeVar("Report")

IDEMPOTENCY_KEY_MAX_LENGTH = 200


class IdempotencyCache(Generic[Report]):
    """(channel, key) -> the first answer, for ``window`` seconds, at most ``max_keys`` of them."""

    def __init__(self, window: float = 300.0, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._answers: OrderedDict[tuple[str, str], tuple[float, Report]] = OrderedDict()

    def get(self, channel: str, key: str) -> Report | None:
        self._expire()
        found = self._answers.get((channel, key))
        return found[1] if found else None

    def put(self, channel: str, key: str, report: Report) -> None:
        self._answers[(channel, key)] = (self.clock() + self.window, report)
        while len(self._answers) > self.max_keys:
            self._answers.popitem(last=False)

    def _expire(self) -> None:
        now = self.clock()
        while self._answers:
            key, (expires, _report) = next(iter(self._answers.items()))
            if expires > now:
                return
            del self._answers[key]
