"""Web Push wired into an aiohttp app: keys at start, store and session in cleanup_ctx.

:func:`install` checks (or makes, once) the VAPID key, builds the store, sender,
transport and Python API, registers the transport with the Hub and opens and
closes their resources with the app. It adds no routes (see :mod:`.routes`).
With ``--database-url`` the subscriptions live in PostgreSQL (:mod:`.postgres`)
and the key must be the one the other nodes recorded (:mod:`.shared_key`, also
in Redis with ``--redis-url`` alone); with both ``--redis-url`` and
``--database-url`` each batch is a job that one node of the cluster sends (:mod:`.jobs`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, AsyncIterator

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

if TYPE_CHECKING:
    from .jobs import PushJobs

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
    key = keys.server_key(settings.data_dir, settings.vapid_key)  # without loading OpenSSL
    subject = settings.vapid_subject
    if subject is None:
        log.warning("no --vapid-subject set: using %s; Apple and Mozilla want a real contact "
                    "(mailto:you@your.domain or https://your.site)", FALLBACK_SUBJECT)
        subject = FALLBACK_SUBJECT
    keys.validate_subject(subject)
    policy = EndpointPolicy.from_settings(settings.webpush_allow, settings.webpush_allow_http)
    store: SubscriptionStore
    if settings.database_url is not None:
        from ..stores.postgres import POSTGRES_KEY
        from .postgres import PostgresSubscriptionStore
        store = PostgresSubscriptionStore(app[POSTGRES_KEY], store_limits(settings))
    else:
        store = SqliteSubscriptionStore(settings.data_dir / DATABASE_FILE, store_limits(settings))
    sender = WebPushSender(
        VapidHeaders(key.load, subject), policy, store,
        concurrency=settings.webpush_concurrency, timeout=settings.webpush_timeout,
        max_retries=settings.webpush_retries, retry_base_delay=settings.webpush_retry_base_delay,
        max_retry_delay=settings.webpush_max_retry_delay, metrics=hub.metrics)
    transport = WebPushTransport(store, sender)
    hub.add_background_transport(transport)
    public_key = key.public_key
    pusher = Pusher(hub, transport, store, policy, public_key)
    webpush = WebPush(public_key, policy, store, sender, transport, pusher)
    app[WEBPUSH_KEY] = webpush
    app[PUSHER_KEY] = pusher

    key_file = key.path

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        await store.open()
        await _check_shared_key(app, settings, public_key, key_file)
        if settings.webpush_crypto_processes > 0:
            sender.crypto_executor = LazyProcessPool(settings.webpush_crypto_processes)
        await sender.start()
        if settings.redis_url is not None and settings.database_url is not None:
            transport.jobs = _push_jobs(app, settings, store, sender)
            transport.jobs.start()
        try:
            yield
        finally:
            if transport.jobs is not None:
                await transport.jobs.stop()
            await transport.close()
            await sender.close()
            if sender.crypto_executor is not None:
                sender.crypto_executor.shutdown(wait=False, cancel_futures=True)
                sender.crypto_executor = None
            await store.close()

    app.cleanup_ctx.append(lifetime)
    return webpush


async def _check_shared_key(app: web.Application, settings: Settings, public_key: str,
                            key_file: Path) -> None:
    """Refuse to start (PostgreSQL) or warn (Redis alone) with another node's VAPID key."""
    from . import shared_key
    if settings.database_url is not None:
        from ..stores.postgres import POSTGRES_KEY
        await shared_key.check_in_postgres(app[POSTGRES_KEY].pool, public_key, key_file)
    elif settings.redis_url is not None:
        from ..cluster.redis import KEYS_KEY, REDIS_KEY
        warning = await shared_key.check_in_redis(app[REDIS_KEY], app[KEYS_KEY].vapid,
                                                  public_key, key_file)
        if warning is not None:
            log.warning("%s", warning)


def _push_jobs(app: web.Application, settings: Settings, store: SubscriptionStore,
               sender: WebPushSender) -> "PushJobs":
    """Batches as jobs on Redis that any node sends (subscriptions are shared in PostgreSQL)."""
    from ..cluster.nodes import NODES_KEY
    from ..cluster.redis import KEYS_KEY, REDIS_KEY
    from .jobs import push_jobs
    # The longest a batch can take: every try timing out, every retry waiting its
    # longest, plus the time a dead node's job takes to be taken over.
    longest = (settings.webpush_timeout * (settings.webpush_retries + 1)
               + settings.webpush_max_retry_delay * settings.webpush_retries + 20)
    return push_jobs(app[REDIS_KEY], app[KEYS_KEY], app[NODES_KEY], store, sender, longest)
