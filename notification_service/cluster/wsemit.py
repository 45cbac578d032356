"""ws-emit backends keep working on Redis: their room secrets and their flask-socketio emitter.

**Secrets.** ws-emit keeps a private space's secret as the Redis key
``ws-emit::room_secret::<space>`` (``SET ws-emit::room_secret::dir MySecret_123``).
:class:`WsEmitSecrets` reads every such key at start and again every
:data:`REFRESH_SECONDS`, so a join (which must not wait for Redis) checks a
copy in memory; a secret set with ``PUT /admin/spaces/{space}`` wins over the
Redis key of the same space (:class:`LayeredSecrets`).

**The flask-socketio channel.** A backend that emits with flask-socketio's
``SocketIO(message_queue=...)`` (python-socketio's ``RedisManager``) publishes
``{"method": "emit", "event", "data", "room", "namespace", ...}`` on the Redis
pub/sub channel ``flask-socketio`` (``--ws-emit-channel``). One node, elected
with a lease (:mod:`.leader`), subscribes and publishes each emit through
:meth:`Hub.publish` (room = channel), with ``POST /emit``'s checks and limits;
every node elected would publish each message once per node. JSON messages
only, unless ``--ws-emit-pickle``: old emitters pickled them, and a pickle can
run any code when loaded, so it is read by :class:`PlainUnpickler`, which
refuses every global (only dicts, lists, strings, numbers, booleans and None
come through), never by ``pickle.loads``. Pub/sub keeps nothing: a message
published while no node is elected (the lease of a killed node running out)
is lost, as it was with ws-emit.
"""

from __future__ import annotations

import asyncio
import io
import logging
import pickle
from typing import Any, AsyncIterator

import orjson
import redis.asyncio as aioredis
from aiohttp import web

from ..access import SpaceSecrets as SecretLookup
from ..background import cancel_and_wait
from ..config import SETTINGS_KEY
from ..errors import ApiError
from ..events import SPACE_PATTERN
from ..hub import HUB_KEY, Hub
from ..logs import Throttle
from ..producers.body import check_data_size
from ..producers.broadcast import checked_names
from ..producers.emit import DEFAULT_NAMESPACES
from .leader import Lease
from .redis import KEYS_KEY, REDIS_KEY, close_pubsub

log = logging.getLogger(__name__)

SECRET_PREFIX = "ws-emit::room_secret::"
REFRESH_SECONDS = 2.0
SCAN_COUNT = 1000
MESSAGE_OVERHEAD = 4096
"""Bytes a message may have beyond ``--max-payload-bytes`` (event, room, host id, ...)."""
MAX_DEPTH = 64
MAX_ITEMS = 100_000
"""What a decoded message may hold: a pickle can make a small message into a huge structure."""


# -- secrets ---------------------------------------------------------------

class WsEmitSecrets:
    """The ``ws-emit::room_secret::*`` keys, copied to memory and refreshed.

    :param max_spaces: at most this many are kept (``--max-spaces``); more are ignored
        with a warning, so a Redis full of such keys cannot fill the node's memory.
    """

    def __init__(self, client: aioredis.Redis, max_spaces: int) -> None:
        self.client = client
        self.max_spaces = max_spaces
        self._secrets: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._throttle = Throttle()

    def get(self, space: str) -> str | None:
        return self._secrets.get(space)

    async def refresh(self) -> None:
        found: dict[str, str] = {}
        names: list[bytes] = []
        async for key in self.client.scan_iter(match=SECRET_PREFIX + "*", count=SCAN_COUNT):
            names.append(key)
        for start in range(0, len(names), SCAN_COUNT):
            chunk = names[start:start + SCAN_COUNT]
            for key, value in zip(chunk, await self.client.mget(chunk)):
                space = key.decode("utf-8", "replace")[len(SECRET_PREFIX):]
                if value is None or not SPACE_PATTERN.fullmatch(space):
                    continue
                if len(found) >= self.max_spaces:
                    if self._throttle.allow()[0]:
                        log.warning("more than %d ws-emit room secrets in Redis: the rest are "
                                    "ignored (--max-spaces)", self.max_spaces)
                    break
                found[space] = value.decode("utf-8", "replace")
        self._secrets = found

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_fresh(), name="ws-emit-secrets")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _keep_fresh(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self.refresh()
                failing = False
            except (aioredis.RedisError, OSError) as error:
                if not failing:  # the copy in memory stays in use meanwhile
                    log.warning("cannot read ws-emit room secrets from Redis: %s", error)
                failing = True


class LayeredSecrets:
    """Space secrets from the server's own store first, else from ws-emit's Redis keys."""

    def __init__(self, own: SecretLookup, wsemit: WsEmitSecrets) -> None:
        self.own = own
        self.wsemit = wsemit

    def get(self, space: str) -> str | None:
        secret = self.own.get(space)
        return secret if secret is not None else self.wsemit.get(space)


# -- reading messages --------------------------------------------------------

class MessageRefused(ValueError):
    """A message on the flask-socketio channel that is not published; the text says why."""


class PlainUnpickler(pickle.Unpickler):
    """Unpickles plain data only: every global (class, function) is refused.

    Without globals a pickle can build dicts, lists, tuples, strings, bytes,
    numbers, booleans and None, and cannot call anything.
    """

    def find_class(self, module: str, name: str) -> Any:
        raise MessageRefused(f"the pickle names {module}.{name}; only plain data is accepted")

    def persistent_load(self, pid: Any) -> Any:
        raise MessageRefused("the pickle refers to a persistent object")


def plain_loads(raw: bytes) -> Any:
    try:
        return PlainUnpickler(io.BytesIO(raw)).load()
    except MessageRefused:
        raise
    except Exception as error:  # a truncated or malformed pickle
        raise MessageRefused(f"not a readable pickle ({type(error).__name__})") from None


def check_plain(value: Any) -> None:
    """Refuse what JSON cannot carry, or a structure larger than :data:`MAX_ITEMS` items.

    Counting visits (not objects) bounds what a pickle's shared references
    could otherwise multiply without end.
    """
    budget = [MAX_ITEMS]

    def visit(item: Any, depth: int) -> None:
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_DEPTH:
            raise MessageRefused(f"the message holds more than {MAX_ITEMS} items or is nested "
                                 f"deeper than {MAX_DEPTH}")
        if item is None or isinstance(item, (bool, int, float, str)):
            return
        if isinstance(item, (list, tuple)):
            for element in item:
                visit(element, depth + 1)
            return
        if isinstance(item, dict):
            for key, element in item.items():
                if not isinstance(key, str):
                    raise MessageRefused("a dict key is not a string")
                visit(element, depth + 1)
            return
        raise MessageRefused(f"a {type(item).__name__} cannot be sent as JSON")

    visit(value, 0)


def decode(raw: bytes, *, allow_pickle: bool, limit: int) -> dict[str, Any]:
    """The message as a dict; :class:`MessageRefused` for anything that is not one to publish."""
    if len(raw) > limit + MESSAGE_OVERHEAD:
        raise MessageRefused(f"the message is {len(raw)} bytes (--max-payload-bytes is {limit})")
    if raw[:1] == b"\x80":  # every pickle protocol from 2 on starts with PROTO
        if not allow_pickle:
            raise MessageRefused("the message is pickled; start the server with "
                                 "--ws-emit-pickle to accept pickled messages (plain data "
                                 "only), or emit JSON")
        message = plain_loads(raw)
    else:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise MessageRefused("the message is neither JSON nor a pickle") from None
    check_plain(message)
    if not isinstance(message, dict):
        raise MessageRefused("the message is not an object")
    return message


def emitted(message: dict[str, Any], limit: int) -> tuple[str, str, Any] | None:
    """(channel, event, data) of an ``emit`` message; None for other methods (rooms, callbacks)."""
    if message.get("method") != "emit":
        return None
    if message.get("namespace") not in DEFAULT_NAMESPACES:
        raise MessageRefused(f"only the default namespace '/' exists here (got "
                             f"{message.get('namespace')!r})")
    if message.get("binary"):
        raise MessageRefused("binary attachments are not supported")
    room, event = message.get("room"), message.get("event")
    if not isinstance(room, str):
        raise MessageRefused("the emit names no room: every event here goes to one channel "
                             "(emit with room=...)")
    if not isinstance(event, str):
        raise MessageRefused("the emit has no event name")
    try:
        channel, name = checked_names(room, event)
        data = message.get("data")
        if isinstance(data, (list, tuple)):  # python-socketio sends the arguments as a list
            data = data[0] if len(data) == 1 else list(data)
        check_data_size(data, limit)
    except ApiError as error:
        raise MessageRefused(error.message) from None
    return channel, name, data


class FlaskSocketIOBridge:
    """Publishes what a flask-socketio emitter sends, while this node holds the lease."""

    def __init__(self, hub: Hub, client: aioredis.Redis, channel: str, *, allow_pickle: bool,
                 max_payload_bytes: int) -> None:
        self.hub = hub
        self.client = client
        self.channel = channel
        self.allow_pickle = allow_pickle
        self.max_payload_bytes = max_payload_bytes
        self._throttle = Throttle()

    async def run(self) -> None:
        """Subscribe and publish until cancelled (the lease ends it)."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.channel)
        log.info("bridging the Redis channel %r (flask-socketio emitters) on this node",
                 self.channel)
        try:
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message["type"] == "message":
                    await self.handle(message["data"])
        finally:
            await close_pubsub(pubsub)

    async def handle(self, raw: bytes) -> None:
        try:
            found = emitted(decode(raw, allow_pickle=self.allow_pickle,
                                   limit=self.max_payload_bytes), self.max_payload_bytes)
        except MessageRefused as refused:
            if self._throttle.allow()[0]:
                log.warning("a message on the Redis channel %r was not published: %s",
                            self.channel, refused)
            return
        if found is None:
            return
        channel, name, data = found
        try:
            await self.hub.publish(channel, name, data, way="other")
        except ApiError as error:  # the bus is down: pub/sub cannot be replayed, say so
            log.warning("a flask-socketio emit to %s was lost: %s", channel[:2] + "**",
                        error.message)


def use_secrets(app: web.Application, own_secrets: SecretLookup) -> LayeredSecrets:
    """ws-emit's Redis keys as space secrets, behind the server's own (needs :func:`.redis.setup`)."""
    secrets = WsEmitSecrets(app[REDIS_KEY], app[SETTINGS_KEY].max_spaces)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        await secrets.refresh()
        secrets.start()
        yield
        await secrets.stop()

    app.cleanup_ctx.append(lifetime)
    return LayeredSecrets(own_secrets, secrets)


def bridge(app: web.Application) -> FlaskSocketIOBridge:
    """The flask-socketio bridge, run by the node holding the lease.

    Set up after the Hub's bus, so that the bridge starts after it and stops before it.
    """
    settings = app[SETTINGS_KEY]
    client, keys = app[REDIS_KEY], app[KEYS_KEY]
    bridging = FlaskSocketIOBridge(app[HUB_KEY], client, settings.ws_emit_channel,
                                   allow_pickle=settings.ws_emit_pickle,
                                   max_payload_bytes=settings.max_payload_bytes)
    lease = Lease(client, keys.wsemit_leader, settings.node_name, bridging.run)

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        lease.start()
        yield
        await lease.stop()

    app.cleanup_ctx.append(lifetime)
    return bridging
