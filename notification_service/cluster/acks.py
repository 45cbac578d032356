"""Receipts across nodes: a publisher waiting with ``wait=`` counts confirmations from every node.

The publishing (origin) node opens a tracker under a random token before the
publish step runs; the token travels with the event on the bus. Every node
that delivers the event notes who it was delivered to (the socket.io room's
members at that moment, as on one node). When one of them confirms
(``RECEIVED {id}``), its node forwards ``token node connection`` to the origin
node's pub/sub channel ``{prefix}:ack:{origin}`` (batched per event-loop
iteration); the origin counts each (node, connection) once. A connection the
event was not delivered to counts nothing. Confirmations are best-effort
messages: one lost while Redis is away only makes the answer's
``acknowledged`` smaller, as a page that never confirmed would.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from ..background import cancel_and_wait
from ..events import Event
from ..receipts import MAX_WAIT_MS
from .redis import RedisKeys, close_pubsub

log = logging.getLogger(__name__)

RecipientsOf = Callable[[str], Collection[str]]
MAX_ROUTES = 10_000
RETRY_SECONDS = 0.5
REDIS_ERRORS = (aioredis.ConnectionError, aioredis.TimeoutError, OSError)


def _nobody(_channel: str) -> Collection[str]:
    return ()


@dataclass
class Waiting:
    """One waiting publisher on this (origin) node."""

    token: str
    expected: int | None = None  # known once the publish step answered
    confirmed_by: set[tuple[str, str]] = field(default_factory=set)  # (node, connection)
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def check(self) -> None:
        if self.expected is not None and len(self.confirmed_by) >= self.expected:
            self.complete.set()


@dataclass(frozen=True, slots=True)
class _Route:
    origin: str
    token: str
    recipients: frozenset[str]
    until: float


class ClusterReceipts:
    """The Hub's receipts in cluster mode (same ``acknowledge`` as :class:`..receipts.Receipts`)."""

    def __init__(self, client: aioredis.Redis, keys: RedisKeys, node: str) -> None:
        self.client = client
        self.keys = keys
        self.node = node
        self._waiting: dict[str, Waiting] = {}
        self._routes: OrderedDict[str, _Route] = OrderedDict()  # event id -> its origin
        self._recipients_of: RecipientsOf = _nobody
        self._outgoing: dict[str, list[str]] = {}
        self._forwarding: set[asyncio.Future[None]] = set()
        self._task: asyncio.Task[None] | None = None

    def confirmations_from(self, recipients_of: RecipientsOf) -> None:
        self._recipients_of = recipients_of

    # -- the origin node ---------------------------------------------------
    def open(self) -> Waiting:
        waiting = Waiting(secrets.token_hex(8))
        self._waiting[waiting.token] = waiting
        return waiting

    def expect(self, waiting: Waiting, expected: int) -> None:
        waiting.expected = expected
        waiting.check()

    def close(self, waiting: Waiting) -> None:
        self._waiting.pop(waiting.token, None)

    async def wait(self, waiting: Waiting, wait_ms: int) -> int:
        try:
            if not waiting.complete.is_set():
                await asyncio.wait_for(waiting.complete.wait(), wait_ms / 1000)
        except asyncio.TimeoutError:
            pass
        finally:
            self.close(waiting)
        return len(waiting.confirmed_by)

    def _confirm(self, token: str, node: str, connection: str) -> None:
        waiting = self._waiting.get(token)
        if waiting is not None:
            waiting.confirmed_by.add((node, connection))
            waiting.check()

    # -- every node ----------------------------------------------------------
    def delivered(self, event: Event, origin: str, token: str) -> None:
        """``event`` asks for receipts and was just delivered here: note who got it."""
        now = time.monotonic()
        routes = self._routes
        while routes and (len(routes) >= MAX_ROUTES or next(iter(routes.values())).until < now):
            routes.popitem(last=False)
        routes[event.id] = _Route(origin, token, frozenset(self._recipients_of(event.channel)),
                                  now + MAX_WAIT_MS / 1000)

    def acknowledge(self, event_id: str, listener: str) -> None:
        """A connection of this node confirms ``event_id``; forwarded to its origin node."""
        route = self._routes.get(event_id)
        if route is None or listener not in route.recipients:
            return
        if route.origin == self.node:
            self._confirm(route.token, self.node, listener)
            return
        lines = self._outgoing.setdefault(route.origin, [])
        lines.append(f"{route.token}\t{self.node}\t{listener}")
        if len(self._outgoing) == 1 and len(lines) == 1:
            asyncio.get_running_loop().call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        outgoing, self._outgoing = self._outgoing, {}
        task = asyncio.ensure_future(self._forward(outgoing))
        self._forwarding.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._forwarding.discard)

    async def _forward(self, outgoing: dict[str, list[str]]) -> None:
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for origin, lines in outgoing.items():
                    pipe.publish(self.keys.acks(origin), "\n".join(lines))
                await pipe.execute()
        except REDIS_ERRORS as error:
            log.warning("could not forward %d receipts: %s",
                        sum(map(len, outgoing.values())), error)

    # -- life ------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="receipts")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _listen(self) -> None:
        """Take confirmations other nodes forward to this one."""
        failing = False
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.acks(self.node))
                failing = False
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is None or message.get("type") != "message":
                        continue
                    for line in message["data"].decode().split("\n"):
                        token, _, rest = line.partition("\t")
                        node, _, connection = rest.partition("\t")
                        self._confirm(token, node, connection)
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as error:
                if not failing:  # once per outage
                    log.warning("node %s cannot take forwarded receipts: %s", self.node, error)
                failing = True
                await asyncio.sleep(RETRY_SECONDS)
            finally:
                await close_pubsub(pubsub)
