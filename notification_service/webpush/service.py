"""Web Push wired into an aiohttp app: keys at start, store and session in cleanup_ctx.

:func:`install` loads (or makes, once) the VAPID key, builds the store, sender,
transport and Python API, registers the transport with the Hub and opens and
closes their resources with the app. It adds no routes (see :mod:`.routes`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import AsyncIterator

from aiohttp import web

from ..config import Settings
from ..hub import Hub
from . import keys
from .crypto import LazyProcessPool
from .endpoints import EndpointPolicy
from .pusher import Pusher
from .sender import VapidHeaders, WebPushSender
from .store import SqliteSubscriptionStore, StoreLimits, SubscriptionStore
from .transport import WebPushTransport

log = logging.getLogger(__name__)

DATABASE_FILE = "webpush.sqlite3"
FALLBACK_SUBJECT = "mailto:webpush@example.com"


@dataclass
class WebPush:
    """Everything Web Push in one app: what the routes and the Python API use."""

    public_key: str
    policy: EndpointPolicy
    store: SubscriptionStore
    sender: WebPushSender
    transport: WebPushTransport
    pusher: Pusher


WEBPUSH_KEY = web.AppKey("webpush", WebPush)
PUSHER_KEY = web.AppKey("pusher", Pusher)


def store_limits(settings: Settings) -> StoreLimits:
    """The bounds every subscription store is built with (SQLite here, PostgreSQL elsewhere)."""
    return StoreLimits(max_subscriptions=settings.webpush_max_subscriptions,
                       max_bytes=settings.webpush_max_bytes,
                       prune_failures=settings.webpush_prune_failures,
                       prune_seconds=settings.webpush_prune_days * 86_400)


def install(app: web.Application, settings: Settings, hub: Hub) -> WebPush:
    """Build Web Push for ``app`` and register its transport with ``hub``.

    Raises :class:`~.keys.VapidKeyError` for a configured key that does not
    exist and ValueError for a malformed subject: both must stop the start.
    """
    vapid = keys.load_or_create(settings.data_dir, settings.vapid_key)
    subject = settings.vapid_subject
    if subject is None:
        log.warning("no --vapid-subject set: using %s; Apple and Mozilla want a real contact "
                    "(mailto:you@your.domain or https://your.site)", FALLBACK_SUBJECT)
        subject = FALLBACK_SUBJECT
    keys.validate_subject(subject)
    policy = EndpointPolicy.from_settings(settings.webpush_allow, settings.webpush_allow_http)
    store = SqliteSubscriptionStore(settings.data_dir / DATABASE_FILE, store_limits(settings))
    sender = WebPushSender(
        VapidHeaders(vapid, subject), policy, store,
        concurrency=settings.webpush_concurrency, timeout=settings.webpush_timeout,
        max_retries=settings.webpush_retries, retry_base_delay=settings.webpush_retry_base_delay,
        max_retry_delay=settings.webpush_max_retry_delay, metrics=hub.metrics)
    transport = WebPushTransport(store, sender)
    hub.add_background_transport(transport)
    public_key = keys.application_server_key(vapid)
    pusher = Pusher(hub, transport, store, policy, public_key)
    webpush = WebPush(public_key, policy, store, sender, transport, pusher)
    app[WEBPUSH_KEY] = webpush
    app[PUSHER_KEY] = pusher

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        await store.open()
        if settings.webpush_crypto_processes > 0:
            sender.crypto_executor = LazyProcessPool(settings.webpush_crypto_processes)
        await sender.start()
        try:
            yield
        finally:
            await transport.close()
            await sender.close()
            if sender.crypto_executor is not None:
                sender.crypto_executor.shutdown(wait=False, cancel_futures=True)
                sender.crypto_executor = None
            await store.close()

    app.cleanup_ctx.append(lifetime)
    return webpush
