"""Receipts: how many listeners confirmed an event, for a publisher that waits for them.

Only events published with a wait ask for receipts (their metadata carries
``receipt: true``), so listeners send nothing back for ordinary events and an
unwaited publish costs nothing here. Acknowledgements for events nobody waits
for any more are dropped with one dictionary lookup.

A receipt is honest: only a connection the event was delivered to can confirm
it, and only once. Ids are predictable (``<epoch>-<sequence>``), so without
this any connection, even one on no channel at all, could make a waiting
publisher believe an overlay showed its alert. Who was delivered is taken
from the transport when the wait starts, right after delivery and before the
event loop runs again, so it is exactly the set the event was queued for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from .events import Event

MAX_WAIT_MS = 5000

# Lists the connections a transport delivered an event of ``channel`` to just now.
RecipientsOf = Callable[[str], Collection[str]]


def _nobody(_channel: str) -> Collection[str]:
    return ()


@dataclass
class Tracker:
    event_id: str
    expected: int
    recipients: frozenset[str] = frozenset()  # who may confirm: who it was delivered to
    confirmed_by: set[str] = field(default_factory=set)  # one receipt per connection
    complete: asyncio.Event = field(default_factory=asyncio.Event)


class Receipts:
    def __init__(self) -> None:
        self._tracked: dict[str, Tracker] = {}
        self._recipients_of: RecipientsOf = _nobody

    def confirmations_from(self, recipients_of: RecipientsOf) -> None:
        """Say which transport's listeners confirm events, and how to list who got one.

        ``recipients_of(channel)`` is called once per waited publish (never for
        ordinary ones), so copying a room's members costs only publishers that wait.
        """
        self._recipients_of = recipients_of

    def acknowledge(self, event_id: str, listener: str) -> None:
        """``listener`` (a connection id) confirms ``event_id``; repeats count once.

        A listener the event was not delivered to counts nothing.
        """
        tracker = self._tracked.get(event_id)
        if tracker is None or listener not in tracker.recipients:
            return
        tracker.confirmed_by.add(listener)
        if len(tracker.confirmed_by) >= tracker.expected:
            tracker.complete.set()

    def track(self, event: Event, expected: int) -> Tracker:
        """Start counting receipts for ``event``, delivered to ``expected`` listeners.

        Call it synchronously right after the live deliveries, before yielding
        to the loop, so that no receipt can arrive untracked and the recipients
        listed now are the ones the event was delivered to.
        """
        recipients = frozenset(self._recipients_of(event.channel)) if expected else frozenset()
        tracker = self._tracked[event.id] = Tracker(event.id, expected, recipients)
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
