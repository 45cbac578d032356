"""Publishing from any language with one Redis command: the ``{prefix}:inbox`` stream.

``XADD notify:inbox * channel news event headline data '{"title":"Hello"}'``
(optional fields ``push`` and ``idempotency_key``) publishes one event, as
``POST /broadcast/news/headline`` would: the same checks and limits (the
functions of :mod:`..producers.broadcast`), then :meth:`Hub.publish` like every
producer. Every node reads the inbox through one consumer group
(:mod:`.workqueue`), so each entry is handled by one node, and an entry left
by a node that died mid-entry is handled again by another, with the same
idempotency key (the producer's, else ``inbox:<entry id>``), so it is
published once. An entry that fails the checks is moved to
``{prefix}:inbox:errors`` with the reason and the error code the route would
have answered; nothing else happens to it. Whoever can write to the inbox can
publish to every channel: Redis access (ACLs) is the authority here.
"""

from __future__ import annotations

import logging
from typing import AsyncIterator, Sequence

import orjson
import redis.asyncio as aioredis
from aiohttp import web

from ..config import SETTINGS_KEY
from ..errors import INVALID_FIELD, ApiError
from ..hub import HUB_KEY, Hub
from ..producers.body import TRUE_WORDS
from ..producers.broadcast import checked_data, checked_names
from ..producers.options import checked_idempotency_key
from .nodes import NODES_KEY
from .redis import KEYS_KEY, REDIS_KEY, RedisKeys
from .workqueue import Entry, WorkQueue

log = logging.getLogger(__name__)

FIELDS = ("channel", "event", "data", "push", "idempotency_key")
REQUIRED = ("channel", "event", "data")
ERRORS_KEPT = 10_000
"""Entries kept in ``inbox:errors`` (the oldest are trimmed)."""
SHOWN_FIELD_CHARACTERS = 1024
"""How much of each field of a refused entry is copied to ``inbox:errors``."""
STUCK_SECONDS = 60.0
"""An entry pending this long on a live node is taken over (handling takes milliseconds)."""


class TryAgain(Exception):
    """Publishing failed for a reason that is not the entry's (the bus is down): keep it."""


def derived_key(entry_id: str) -> str:
    """The idempotency key of an entry that brought none: the same on every node."""
    return f"inbox:{entry_id}"


class Inbox:
    """Reads the inbox and publishes each entry once.

    :param max_payload_bytes: ``--max-payload-bytes``, the same limit as ``/broadcast``.
    """

    def __init__(self, hub: Hub, client: aioredis.Redis, keys: RedisKeys, queue: WorkQueue,
                 max_payload_bytes: int) -> None:
        self.hub = hub
        self.client = client
        self.keys = keys
        self.queue = queue
        self.max_payload_bytes = max_payload_bytes

    async def handle(self, entries: Sequence[Entry]) -> None:
        """Publish each entry in order, or move it to the errors stream."""
        for entry_id, fields in entries:
            try:
                await self.publish(entry_id, fields)
            except ApiError as error:
                if error.http >= 500:  # ours, not the entry's: it stays pending
                    raise TryAgain(error.message) from None
                await self.refuse(entry_id, fields, error)

    async def publish(self, entry_id: str, fields: dict[str, bytes]) -> None:
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise INVALID_FIELD(f"Unknown field {unknown[0]!r}: an inbox entry has the fields "
                                f"{', '.join(FIELDS)}.")
        missing = [name for name in REQUIRED if name not in fields]
        if missing:
            raise INVALID_FIELD(f"The field {missing[0]!r} is missing: XADD {self.keys.inbox} "
                                f"'*' channel <channel> event <name> data '<JSON>'.")
        channel, event = checked_names(_text(fields, "channel"), _text(fields, "event"))
        data = checked_data(fields["data"], self.max_payload_bytes,
                            f"data of inbox entry {entry_id}")
        key = (checked_idempotency_key(_text(fields, "idempotency_key"))
               if "idempotency_key" in fields else derived_key(entry_id))
        push = _text(fields, "push").lower() in TRUE_WORDS if "push" in fields else False
        await self.hub.publish(channel, event, data, push=push, idempotency_key=key,
                               way="inbox")

    async def refuse(self, entry_id: str, fields: dict[str, bytes], error: ApiError) -> None:
        shown = {name: value[:SHOWN_FIELD_CHARACTERS].decode("utf-8", "replace")
                 for name, value in fields.items()}
        await self.client.xadd(self.keys.inbox_errors, {
            "entry": entry_id, "code": str(error.code), "http": str(error.http),
            "reason": error.message, "fields": orjson.dumps(shown)},
            maxlen=ERRORS_KEPT, approximate=True)
        log.warning("inbox entry %s refused (%d): %s", entry_id, error.code, error.message)


def _text(fields: dict[str, bytes], name: str) -> str:
    try:
        return fields[name].decode("utf-8")
    except UnicodeDecodeError:
        raise INVALID_FIELD(f"The field {name!r} is not UTF-8 text.") from None


INBOX_KEY = web.AppKey("inbox", Inbox)


def setup(app: web.Application) -> Inbox:
    """Read the inbox while ``app`` runs (needs :func:`.redis.setup` and :func:`.nodes.setup`)."""
    settings = app[SETTINGS_KEY]
    client, keys = app[REDIS_KEY], app[KEYS_KEY]
    queue = WorkQueue(client, keys.inbox, settings.node_name, app[NODES_KEY],
                      stuck_after=STUCK_SECONDS)
    inbox = app[INBOX_KEY] = Inbox(app[HUB_KEY], client, keys, queue,
                                   settings.max_payload_bytes)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        await queue.ensure_group()
        queue.start(inbox.handle, "inbox")
        yield
        await queue.stop()

    app.cleanup_ctx.append(lifetime)
    return inbox
