"""Receipts: how many listeners confirmed an event, for a publisher that waits for them.

Only events published with a wait ask for receipts (their metadata carries
``receipt: true``), so listeners send nothing back for ordinary events and an
unwaited publish costs nothing here. Acknowledgements for events nobody waits
for any more are dropped with one dictionary lookup.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

MAX_WAIT_MS = 5000


@dataclass
class Tracker:
    event_id: str
    expected: int
    confirmed_by: set[str] = field(default_factory=set)  # one receipt per connection
    complete: asyncio.Event = field(default_factory=asyncio.Event)


class Receipts:
    def __init__(self) -> None:
        self._tracked: dict[str, Tracker] = {}

    def acknowledge(self, event_id: str, listener: str) -> None:
        """``listener`` (a connection id) confirms ``event_id``; repeats count once."""
        tracker = self._tracked.get(event_id)
        if tracker is None:
            return
        tracker.confirmed_by.add(listener)
        if len(tracker.confirmed_by) >= tracker.expected:
            tracker.complete.set()

    def track(self, event_id: str, expected: int) -> Tracker:
        """Start counting receipts for ``event_id``.

        Call it synchronously right after the live deliveries, before yielding
        to the loop, so that no receipt can arrive untracked.
        """
        tracker = self._tracked[event_id] = Tracker(event_id, expected)
        return tracker

    async def wait(self, tracker: Tracker, wait_ms: int) -> int:
        """Wait up to ``wait_ms`` for every expected receipt; return how many came."""
        try:
            if len(tracker.confirmed_by) < tracker.expected:
                await asyncio.wait_for(tracker.complete.wait(), wait_ms / 1000)
        except asyncio.TimeoutError:
            pass
        finally:
            self._tracked.pop(tracker.event_id, None)
        return len(tracker.confirmed_by)
