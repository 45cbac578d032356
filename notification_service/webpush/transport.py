"""The Hub's way out to Web Push subscribers of a channel.

When an Event asks for push (``Hub.publish(..., push=True)`` or a
:class:`~.sender.PushOptions`), the subscriptions attached to its channel are
read once and one background batch sends to all of them; ``deliver`` returns
how many pushes were queued. An Event without push costs nothing here (no
database query). It never waits for push services inside ``deliver``: the
caller that needs the final counts awaits :meth:`WebPushTransport.outcome`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import orjson

from ..events import Event
from ..hub import mask
from .sender import PayloadTooLarge, PushOptions, SendReport, WebPushSender
from .store import Subscription, SubscriptionStore

if TYPE_CHECKING:
    from .jobs import PushJobs

log = logging.getLogger(__name__)

ALL_SUBSCRIPTIONS = "webpush::all"
"""The channel every subscription is attached to (``notify_all`` without a group).

It is a ``space::name`` channel, so no page can listen on it without the space's secret."""
NOTIFICATION_FIELDS = ("title", "body", "icon", "url", "tag")
OUTCOMES_KEPT = 1000


def message_bytes(message: Any) -> bytes:
    """A notify verb's message as sent: a string as is, anything else as JSON."""
    if isinstance(message, str):
        return message.encode("utf-8")
    if isinstance(message, (bytes, bytearray)):
        return bytes(message)
    return orjson.dumps(message)


def event_payload(event: Event) -> bytes:
    """What a live event looks like to a service worker.

    ``title`` defaults to the event name; ``body``, ``icon``, ``url``, ``tag``
    are taken from the data when it has them, and the data travels whole.
    """
    options = event.push
    if isinstance(options, PushOptions) and options.raw:
        return message_bytes(event.data)
    note: dict[str, Any] = {"title": event.name, "event": event.name, "id": event.id}
    data = event.data
    if isinstance(data, dict):
        for key in NOTIFICATION_FIELDS:
            value = data.get(key)
            if isinstance(value, str):
                note[key] = value
    note["data"] = data
    return orjson.dumps(note)


class WebPushTransport:
    """Queues pushes for Events that ask for them.

    :param store: where subscriptions attached to channels are found.
    :param sender: sends each batch.
    """

    name = "webpush"

    def __init__(self, store: SubscriptionStore, sender: WebPushSender) -> None:
        self.store = store
        self.sender = sender
        # Set with --redis-url and --database-url: batches become jobs any node sends.
        self.jobs: PushJobs | None = None
        self._outcomes: OrderedDict[str, asyncio.Task[SendReport]] = OrderedDict()
        self._pending: set[asyncio.Task[SendReport]] = set()

    def wants(self, event: Event) -> bool:
        return bool(event.push)

    async def deliver(self, event: Event) -> int:
        """Queue the pushes of an event that :meth:`wants` them (the Hub asks first)."""
        options = event.push if isinstance(event.push, PushOptions) else PushOptions()
        payload = event_payload(event)
        try:
            self.sender.check_size(payload)
        except PayloadTooLarge as error:
            log.warning("event %s on %s not pushed: %s", event.id, mask(event.channel), error)
            return 0
        if event.channel == ALL_SUBSCRIPTIONS:
            subscriptions = await self.store.all()
        else:
            subscriptions = await self.store.for_channel(event.channel)
        if not subscriptions:
            return 0
        if self.jobs is not None:
            await self.jobs.enqueue(event.id, event.channel, payload, options)
        else:
            self._track(event.id, self.sender.send(subscriptions, payload, options))
        return len(subscriptions)

    def send_direct(self, subscriptions: list[Subscription], message: Any,
                    options: PushOptions) -> asyncio.Task[SendReport]:
        """Push to subscriptions that are not stored (``send_notification``): no channel to publish on."""
        payload = message_bytes(message)
        self.sender.check_size(payload)
        return self._track(None, self.sender.send(subscriptions, payload, options))

    def _track(self, event_id: str | None, batch: Any) -> asyncio.Task[SendReport]:
        task = asyncio.get_running_loop().create_task(batch)
        self._pending.add(task)
        task.add_done_callback(self._finished)
        if event_id is not None:
            self._outcomes[event_id] = task
            while len(self._outcomes) > OUTCOMES_KEPT:
                self._outcomes.popitem(last=False)
        return task

    def _finished(self, task: asyncio.Task[SendReport]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("web push batch failed", exc_info=task.exception())

    async def outcome(self, event_id: str) -> SendReport:
        """The counts of the batch an Event started (zeros if it started none)."""
        if self.jobs is not None:
            return await self.jobs.outcome(event_id)
        task = self._outcomes.pop(event_id, None)
        if task is None:
            return SendReport()
        return await asyncio.shield(task)

    async def wait(self) -> None:
        """Return once every batch queued so far has finished."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def close(self, timeout: float = 2.0) -> None:
        """Let running batches finish for up to ``timeout`` seconds, then cancel them."""
        if not self._pending:
            return
        done, running = await asyncio.wait(list(self._pending), timeout=timeout)
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
