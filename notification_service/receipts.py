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
class _Tracker:
    expected: int
    acknowledged: int = 0
    complete: asyncio.Event = field(default_factory=asyncio.Event)


class Receipts:
    def __init__(self) -> None:
        self._tracked: dict[str, _Tracker] = {}

    def acknowledge(self, event_id: str) -> None:
        tracker = self._tracked.get(event_id)
        if tracker is None:
            return
        tracker.acknowledged += 1
        if tracker.acknowledged >= tracker.expected:
            tracker.complete.set()

    async def wait(self, event_id: str, expected: int, wait_ms: int) -> int:
        """Wait up to ``wait_ms`` for ``expected`` acknowledgements of ``event_id``; return the count.

        Must be called right after the publish, before yielding to the loop, so
        that no acknowledgement can arrive untracked.
        """
        tracker = self._tracked[event_id] = _Tracker(expected)
        try:
            if expected > 0:
                await asyncio.wait_for(tracker.complete.wait(), wait_ms / 1000)
        except asyncio.TimeoutError:
            pass
        finally:
            del self._tracked[event_id]
        return tracker.acknowledged
