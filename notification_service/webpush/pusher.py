"""solidwebpush's verbs for Python code running inside the server's event loop.

Every verb that targets an id, a group or everyone publishes one Event on
that channel through the Hub with push requested, so live pages listening on
the same channel get it too and there is only one delivery path. Only
``send_notification``, which targets a subscription that is not stored, goes
to the sender directly. Blocking verbs await the push services' answers;
``nonblocking=True`` returns at once and :meth:`Pusher.wait` awaits them all.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable, Mapping

from ..errors import SUBSCRIPTIONS_FULL
from ..events import validate_code
from ..hub import Hub
from .endpoints import EndpointPolicy
from .sender import DEFAULT_TTL, PushOptions, SendReport
from .store import Subscription, SubscriptionsFull, SubscriptionStore
from .subscriptions import parse_subscription
from .transport import ALL_SUBSCRIPTIONS, WebPushTransport, message_bytes

NOTIFICATION_EVENT = "NOTIFICATION"
"""Event name of messages sent with the notify verbs (what live pages on the channel see)."""


class Pusher:
    """The Python API. Get the app's instance with ``app[PUSHER_KEY]``.

    :param hub: publishes every notify verb.
    :param transport: the Web Push way out registered with the hub.
    :param store: subscriptions.
    :param policy: endpoint allow-list applied to new subscriptions.
    :param public_key: the applicationServerKey (URL-safe base64).
    """

    def __init__(self, hub: Hub, transport: WebPushTransport, store: SubscriptionStore,
                 policy: EndpointPolicy, public_key: str) -> None:
        self.hub = hub
        self.transport = transport
        self.store = store
        self.policy = policy
        self.public_key = public_key
        self._queued: set[asyncio.Future[Any]] = set()

    def get_url_b64_public_key(self) -> str:
        """The key pages pass to ``pushManager.subscribe({applicationServerKey})``."""
        return self.public_key

    async def new_subscription(self, id: str | int | None, subscription: str | Mapping[str, Any],
                               group: str | int | None = None,
                               channels: Iterable[str] = ()) -> bool:
        """Store a browser's subscription for ``id`` (and ``group``); True if new.

        ``subscription`` is ``PushSubscription.toJSON()`` as a dict or JSON text.
        Raises ApiError (400/403) for a malformed subscription or a refused endpoint,
        and (507) when the store is full.
        """
        parsed = parse_subscription(subscription, self.policy)
        identity = None if id is None else validate_code(str(id))
        group_name = None if group is None else validate_code(str(group))
        stored = Subscription(parsed.endpoint, parsed.p256dh, parsed.auth, identity, group_name,
                              tuple(dict.fromkeys(validate_code(c) for c in channels)))
        try:
            return await self.store.upsert(stored)
        except SubscriptionsFull as full:
            raise SUBSCRIPTIONS_FULL(str(full)) from None

    async def remove_subscription(self, id: str | int) -> int:
        """Forget every subscription of ``id``; how many there were."""
        return await self.store.remove_id(str(id))

    async def notify(self, id: str | int, message: Any, *, nonblocking: bool = False,
                     ttl: int | None = None, urgency: str | None = None,
                     topic: str | None = None) -> SendReport | None:
        """Push ``message`` (a str, or a dict sent as JSON) to every subscription of ``id``."""
        return await self._publish(str(id), message, nonblocking, ttl, urgency, topic)

    async def notify_all(self, message: Any, group: str | int | None = None, *,
                         nonblocking: bool = False, ttl: int | None = None,
                         urgency: str | None = None,
                         topic: str | None = None) -> SendReport | None:
        """Push to every subscription of ``group``, or to every subscription when None."""
        channel = ALL_SUBSCRIPTIONS if group is None else str(group)
        return await self._publish(channel, message, nonblocking, ttl, urgency, topic)

    async def notify_channel(self, channel: str, message: Any, *, nonblocking: bool = False,
                             ttl: int | None = None, urgency: str | None = None,
                             topic: str | None = None) -> SendReport | None:
        """Push to the subscriptions attached to ``channel`` (an id and a group are channels too)."""
        return await self._publish(channel, message, nonblocking, ttl, urgency, topic)

    async def send_notification(self, subscription: str | Mapping[str, Any], message: Any, *,
                                nonblocking: bool = False, ttl: int | None = None,
                                urgency: str | None = None,
                                topic: str | None = None) -> SendReport | None:
        """Push to one subscription that need not be stored."""
        return await self.send_notification_to_all([subscription], message, nonblocking=nonblocking,
                                                   ttl=ttl, urgency=urgency, topic=topic)

    async def send_notification_to_all(self, subscriptions: Iterable[str | Mapping[str, Any]],
                                       message: Any, *, nonblocking: bool = False,
                                       ttl: int | None = None, urgency: str | None = None,
                                       topic: str | None = None) -> SendReport | None:
        """Push to subscriptions given here (checked against the allow-list first)."""
        parsed = [parse_subscription(s, self.policy) for s in subscriptions]
        options = make_options(ttl, urgency, topic)
        task = self.transport.send_direct(parsed, message, options)
        return await self._finish(task, nonblocking)

    async def wait(self) -> None:
        """Block until every notification queued so far has been sent (solidwebpush's ``wait``)."""
        while self._queued:
            await asyncio.gather(*list(self._queued), return_exceptions=True)

    async def _publish(self, channel: str, message: Any, nonblocking: bool, ttl: int | None,
                       urgency: str | None, topic: str | None) -> SendReport | None:
        self.transport.sender.check_size(message_bytes(message))
        options = make_options(ttl, urgency, topic)
        report = await self.hub.publish(channel, NOTIFICATION_EVENT, message, push=options)
        return await self._finish(
            asyncio.ensure_future(self.transport.outcome(report.event.id)), nonblocking)

    async def _finish(self, task: asyncio.Future[SendReport], nonblocking: bool) -> SendReport | None:
        if not nonblocking:
            return await task
        self._queued.add(task)
        task.add_done_callback(self._queued.discard)
        return None

    # solidwebpush's camelCase names, so its users' code keeps reading the same.
    getUrlB64PublicKey = get_url_b64_public_key
    newSubscription = new_subscription
    removeSubscription = remove_subscription
    notifyAll = notify_all
    sendNotification = send_notification
    sendNotificationToAll = send_notification_to_all


def make_options(ttl: int | None, urgency: str | None, topic: str | None) -> PushOptions:
    """PushOptions for a notify verb (raises ValueError with what to fix)."""
    return PushOptions(ttl=DEFAULT_TTL if ttl is None else ttl, urgency=urgency, topic=topic,
                       raw=True)
