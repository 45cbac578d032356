"""The node's one Redis client, opened and closed with the app, and the names of every key.

Every Redis key this server uses is spelled here, under ``--redis-prefix``
(default ``notify``), so the layout in shared/DESIGN.md ("Redis layout") has
one place in code. The client speaks bytes (``decode_responses=False``):
event data stays the JSON text it was published as. Nothing here publishes,
delivers or stores anything by itself.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import AsyncIterator
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from aiohttp import web

from ..errors import StartupError

log = logging.getLogger(__name__)

REDIS_SCHEMES = ("redis", "rediss", "unix")
CONNECT_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class RedisKeys:
    """Every key, from the prefix: ``RedisKeys("notify").bus == "notify:bus"``."""

    prefix: str = "notify"

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @property
    def meta(self) -> str:
        """Hash: epoch, the Redis run id it belongs to, the id sequence."""
        return self._key("meta")

    @property
    def bus(self) -> str:
        """Stream: every event, in the order every node delivers them."""
        return self._key("bus")

    def history(self, channel: str) -> str:
        """Stream: one channel's capped history, same entry ids as the bus."""
        return self._key("h", channel)

    def idempotency(self, channel: str, key: str) -> str:
        return self._key("idem", channel, key)

    def listener_counts(self, channel: str) -> str:
        """Hash: live listeners of a channel per node and transport."""
        return self._key("lc", channel)

    def acks(self, node: str) -> str:
        """Pub/sub channel: receipts other nodes forward to the node that published."""
        return self._key("ack", node)

    def node(self, name: str) -> str:
        """String with a TTL: the node is alive while it exists."""
        return self._key("node", name)

    @property
    def nodes(self) -> str:
        """Set: the names of every node that announced itself (live or not)."""
        return self._key("nodes")

    def connections(self, application: str) -> str:
        """Hash: the ``/connections`` registry of one application across nodes."""
        return self._key("conn", application)

    def connections_marker(self, node: str) -> str:
        """String: present while ``node``'s connections are in the hashes (gone: Redis lost them)."""
        return self._key("conn-node", node)

    @property
    def inbox(self) -> str:
        """Stream with a consumer group: publishing from any language."""
        return self._key("inbox")

    @property
    def inbox_errors(self) -> str:
        return self._key("inbox", "errors")

    @property
    def push_jobs(self) -> str:
        """Stream with a consumer group: Web Push jobs, each sent by one node."""
        return self._key("push")

    def push_outcome(self, event_id: str) -> str:
        """List (expiring): the counts of one event's push batch, for the node that queued it."""
        return self._key("push", "done", event_id)

    @property
    def vapid(self) -> str:
        """String: the VAPID public key every node must have (without PostgreSQL)."""
        return self._key("vapid")

    @property
    def wsemit_leader(self) -> str:
        """String with a TTL: the node that bridges the flask-socketio channel (a lease)."""
        return self._key("leader", "wsemit")

    def alert_queue(self, code: str) -> str:
        """String (JSON, expiring when idle): one code's alert queue, overlays and presence."""
        return self._key("alerts", "q", code)

    @property
    def alert_codes(self) -> str:
        """Set: the codes that have (or had) an alert queue, for the console's list."""
        return self._key("alerts", "codes")

    @property
    def alert_codes_added(self) -> str:
        """Pub/sub channel: a code that got its first alert queue (every node keeps the set)."""
        return self._key("alerts", "codes", "added")


def check_url(url: str) -> str:
    """Return ``url`` if redis-py can use it, else raise ValueError saying what to write."""
    scheme = urlsplit(url).scheme
    if scheme not in REDIS_SCHEMES:
        raise ValueError(f"{url!r} is not a Redis URL: use redis://host:6379/0, "
                         f"rediss://host:6380 (TLS) or unix:///path/to/redis.sock")
    return url


def shown_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + netloc).geturl()


def connect(url: str) -> aioredis.Redis:
    """A client for ``url`` (no I/O yet: the first command connects)."""
    return aioredis.from_url(check_url(url), decode_responses=False,
                             socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                             health_check_interval=15)


PUBSUB_CLOSE_SECONDS = 1.0


async def close_pubsub(pubsub: PubSub) -> None:
    """Close a subscription without ever holding up a stop.

    Cancelled mid-read, redis-py's ``PubSub.aclose()`` can wait until Redis
    closes the connection (seen here with redis-py 8.1), so it gets a second.
    """
    try:
        await asyncio.wait_for(pubsub.aclose(), PUBSUB_CLOSE_SECONDS)
    except (asyncio.TimeoutError, aioredis.RedisError, OSError):
        log.debug("a Redis subscription was dropped without a clean close")


class RedisUnavailable(StartupError):
    """Redis cannot be reached at start; the message names the URL (without password)."""


REDIS_KEY = web.AppKey("redis", aioredis.Redis)
KEYS_KEY = web.AppKey("redis_keys", RedisKeys)


def setup(app: web.Application, url: str, prefix: str) -> None:
    """Give ``app`` its Redis client and keys; the client is checked on start and closed on stop."""
    client = app[REDIS_KEY] = connect(url)
    app[KEYS_KEY] = RedisKeys(prefix)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        try:
            await client.ping()
        except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as error:
            await client.aclose()
            raise RedisUnavailable(f"Redis at {shown_url(url)} does not answer ({error}): start "
                                   f"it, or fix --redis-url.") from None
        yield
        await client.aclose()

    app.cleanup_ctx.append(lifetime)
