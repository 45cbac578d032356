"""Server-Sent Events transport: ``GET /sse`` streams a channel's events as ``text/event-stream``.

A listener proves a JWT identity (``Authorization: Bearer`` or ``?token=``) and
hears its user channel ``jwt:{iss}:{sub}`` and application channel
``jwt:{iss}``, or names public channels (``?code=C``, ``?channel=a&channel=b``,
``&secret=`` for private ``space::name`` channels) under the same rules as
socket.io (:mod:`..access`). Fan-out goes through a channel -> connections
index and encodes each event once; every connection has a bounded queue, and a
client that cannot keep up is cut off instead of slowing the others.

This module must never decide who may listen (access.py does), never loop over
every connection to deliver, and never log per recipient or log a token.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections import deque
from typing import Any

from aiohttp import HttpVersion11, web

from .. import jsoncodec
from ..access import ChannelAccess, Identity
from ..errors import SSE_INVALID_CHANNEL, SSE_TOO_MANY_CHANNELS, TOKEN_MISSING
from ..events import Event, validate_channel, validate_code
from ..frontdoor import label
from ..history import GAP_EVENT, event_sequence, gap_notice
from ..hub import Hub, mask
from ..identity import JwtVerifier
from ..proxies import client_address
from ..registry import ConnectionInfo, ConnectionRegistry
from ..tokens import presented_token

log = logging.getLogger(__name__)

MAX_CHANNELS_PER_STREAM = 32
# How often an idle stream checks that its client is still there: aiohttp does
# not tell a handler that its client left, so without this a dead stream would
# stay in the connection registry until its next ping.
LIVENESS_SECONDS = 5.0
STREAM_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: pass events through instead of buffering them
}


def encode_event(event: Event) -> bytes:
    """One SSE frame: ``id``/``event``/``data`` lines. Names never hold newlines (events.py);
    orjson escapes every newline inside the data, so one ``data:`` line always suffices."""
    return b"".join((b"id: ", event.id.encode(), b"\nevent: ", event.name.encode(),
                     b"\ndata: ", jsoncodec.dumps_bytes(event.data), b"\n\n"))


def encode_gap(channel: str, last_event_id: str, available: int) -> bytes:
    """The honest-gap notice, without ``id:`` (it is not an event of the channel)."""
    notice = gap_notice(channel, last_event_id, available)
    return b"event: " + GAP_EVENT.encode() + b"\ndata: " + jsoncodec.dumps_bytes(notice) + b"\n\n"


def encode_ping(now: float) -> bytes:
    """A ``ping`` event without an ``id:`` line, so it never moves the client's Last-Event-ID."""
    return b'event: ping\ndata: {"time":%d}\n\n' % int(now)


def _resolve(waiter: "asyncio.Future[None]") -> None:
    if not waiter.done():
        waiter.set_result(None)


WRITE_HIGH = 64 * 1024
"""Bytes in a stream's transport buffer past which events queue instead of being written:
the client is not keeping up, and what waits must be counted against its budget."""
SEND_BUFFER = 64 * 1024
"""The kernel send buffer of a stream (SO_SNDBUF; Linux doubles it). Left to the system it
grows to megabytes for a client that does not read, where no budget sees it."""
REPLAY_BATCH = 16 * 1024
"""Bytes of a replay encoded at a time: the rest waits, as events, until the client reads."""


def chunk(frame: bytes) -> bytes:
    """``frame`` as one HTTP/1.1 chunk, the framing aiohttp's writer would add."""
    return b"%x\r\n%s\r\n" % (len(frame), frame)


class SSEConnection:
    """One open stream: its channels, and what waits to be written to it.

    Once the stream is live (headers sent, replay written), an event is written
    straight into the connection's transport when nothing waits ahead of it and
    the transport keeps up (under :data:`WRITE_HIGH` bytes buffered): no task
    wakes, nothing is queued. Otherwise it queues, and the stream's own writer
    (:meth:`SSETransport._pump`) writes it when the client reads.

    The output budget (``max_bytes``: the smaller of --output-budget and
    --sse-queue-bytes) bounds what waits: queued frames, the replay batch being
    written and the transport's buffer. Past it, or past ``max_queue`` queued
    frames, :meth:`offer` says no and the stream is closed as too slow; the
    browser resumes with ``Last-Event-ID``. One frame is always taken when
    nothing waits, so one large event never cuts off a client that keeps up.
    A replay is kept as the events themselves (history holds them anyway) and
    encoded :data:`REPLAY_BATCH` bytes at a time as the client reads, so a
    client resuming and never reading holds one batch, not all of history.
    """

    __slots__ = ("id", "channels", "identity", "request", "max_queue", "max_bytes", "closing",
                 "_frames", "_queued_bytes", "_head", "replay_cursor", "replay_until",
                 "_waiter", "info", "_transport", "chunked")

    def __init__(self, request: web.Request, channels: list[str], identity: Identity | None,
                 max_queue: int, max_bytes: int) -> None:
        self.id = str(uuid.uuid4())
        self.request = request
        self.channels = channels
        self.identity = identity
        self.max_queue = max_queue
        self.max_bytes = max_bytes
        self._queued_bytes = 0
        self.closing: str | None = None
        self.info: ConnectionInfo | None = None
        self._frames: deque[bytes] = deque()
        self._head = b""  # gap notices and the replay batch being written, before any event
        self.replay_cursor: str | None = None  # the last replayed id while more is to come
        self.replay_until = 0  # the sequence where the replay ends and live events begin
        self._waiter: asyncio.Future[None] | None = None
        self._transport: Any = None  # the asyncio transport once headers are out
        self.chunked = True

    def offer(self, frame: bytes, chunked_frame: bytes | None = None) -> bool:
        """Write or queue ``frame`` (``chunked_frame``: the same as an HTTP/1.1 chunk).

        False when the stream is closing or the frame does not fit its budget.
        """
        if self.closing is not None:
            return False
        transport = self._transport
        if transport is not None and not self._frames and not self._head \
                and self.replay_cursor is None:
            if transport.is_closing():
                self.close("client left")  # its writer wakes and the stream ends
                return False
            if transport.get_write_buffer_size() < WRITE_HIGH:
                if self.chunked:
                    transport.write(chunked_frame or chunk(frame))
                else:
                    transport.write(frame)
                return True
        if self._frames or self._head or self.replay_cursor is not None \
                or transport is not None:
            waiting = self._queued_bytes + len(frame)
            if transport is not None:
                waiting += transport.get_write_buffer_size()
            if len(self._frames) >= self.max_queue or waiting > self.max_bytes:
                return False
        self._frames.append(frame)
        self._queued_bytes += len(frame)
        self._wake()
        return True

    def replay(self, batch: bytes, cursor: str | None, until: int = 0) -> None:
        """Write ``batch`` of a replay next; ``cursor``: the last id in it when more follows
        (up to sequence ``until``), None when the replay is complete."""
        self._head += batch
        self.replay_cursor = cursor
        self.replay_until = until

    def needs_replay_batch(self) -> bool:
        return self.replay_cursor is not None and not self._head

    def go_live(self, transport: asyncio.BaseTransport | None, chunked: bool) -> None:
        """Headers are out: from now on events may be written straight to ``transport``
        whenever nothing waits ahead of them."""
        self._transport = transport
        self.chunked = chunked
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            except OSError:  # not every platform lets it be set: the budget still holds
                pass

    def close(self, reason: str) -> None:
        if self.closing is None:
            self.closing = reason
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def client_gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    def abort(self) -> None:
        """Drop the TCP connection now: a writer stuck waiting on a full socket wakes up."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def wait(self, timeout: float) -> None:
        """Until something waits to be written, the stream closes, or ``timeout`` seconds pass.

        A bare future and a timer handle, not ``asyncio.wait_for``: that creates a
        task per wait, which doubled the CPU cost of every delivery.
        """
        if self._frames or self._head or self.replay_cursor is not None \
                or self.closing is not None:
            return
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def take(self) -> bytes:
        """What is to be written now, in order: the replay's notices and batch, or, once the
        replay is complete, the events queued meanwhile."""
        if self._head:
            head, self._head = self._head, b""
            return head
        if self.replay_cursor is not None:
            return b""  # the next batch comes from history (SSETransport._next_batch)
        frames = b"".join(self._frames)
        self._frames.clear()
        self._queued_bytes = 0
        return frames


class SSETransport:
    """Delivers Events to SSE streams.

    :param hub: the Hub this transport registers with.
    :param access: the channel rules every listener is checked against.
    :param verifier: verifies bearer JWTs.
    :param registry: where identified streams are listed for ``/connections``.
    :param ping_interval: seconds between ``ping`` events (the seed's 30); pings
        keep proxies from closing idle streams and let clients notice a dead server.
    :param queue_size: frames a stream may have queued (--sse-queue-size); more and
        the client is cut off as too slow. 256 frames of small alerts is seconds of backlog.
    :param queue_bytes: bytes a stream may have waiting (--sse-queue-bytes, kept for
        existing command lines): the stream's budget is the smaller of it and
        ``output_budget``.
    :param output_budget: bytes any connection may have waiting (--output-budget, the
        one slow-consumer rule of every transport): queued frames, the replay batch
        being written and the transport's buffer.
    :param retry_ms: the ``retry:`` hint: how long browsers wait before reconnecting.
    """

    name = "sse"

    def __init__(self, hub: Hub, *, access: ChannelAccess, verifier: JwtVerifier,
                 registry: ConnectionRegistry,
                 ping_interval: float = 30.0, queue_size: int = 256,
                 queue_bytes: int = 1 << 20, output_budget: int = 1 << 20,
                 retry_ms: int = 3000) -> None:
        self.hub = hub
        self.access = access
        self.verifier = verifier
        self.registry = registry
        self.ping_interval = ping_interval
        self.queue_size = queue_size
        self.budget = min(queue_bytes, output_budget)
        self.retry_ms = retry_ms
        self._channels: dict[str, set[SSEConnection]] = {}
        self._open: set[SSEConnection] = set()
        hub.add_transport(self)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/sse", self.stream, name="sse")
        app.on_shutdown.append(self._on_shutdown)

    # -- Transport -------------------------------------------------------
    def listener_count(self, channel: str) -> int:
        return len(self._channels.get(channel, ()))

    def listener_counts(self) -> dict[str, int]:
        """Listeners per channel (cluster mode writes them to Redis, batched; not per event)."""
        return {channel: len(streams) for channel, streams in self._channels.items()}

    def connection_count(self) -> int:
        return len(self._open)

    def deliver(self, event: Event) -> int:
        """Encode ``event`` once (as a frame and as an HTTP/1.1 chunk) and hand it to each of
        its channel's streams, which write it at once when nothing waits (no await)."""
        listeners = self._channels.get(event.channel)
        if not listeners:
            return 0
        frame = encode_event(event)
        chunked = chunk(frame)
        delivered = 0
        refused: list[SSEConnection] = []
        for connection in listeners:
            if connection.offer(frame, chunked):
                delivered += 1
            else:
                refused.append(connection)
        for connection in refused:
            if connection.closing is None:
                self._cut_off_slow(connection)
        return delivered

    # -- the route -------------------------------------------------------
    async def stream(self, request: web.Request) -> web.StreamResponse:
        """``GET /sse``: check who listens to what, then stream until either side closes."""
        token = presented_token(request)
        identity = self.verifier.verify(token) if token is not None else None
        self.registry.admit(identity)
        channels = self._channels_for(request, identity)
        secret = request.query.get("secret")
        for channel in channels:
            self.access.check_listen(channel, secret=secret, identity=identity)

        connection = SSEConnection(request, channels, identity, self.queue_size, self.budget)
        headers = {**STREAM_HEADERS, "X-Connection-Id": connection.id}
        if request.method == "HEAD":  # a monitor checking the route: headers, no stream
            return web.Response(headers=headers)
        response = web.StreamResponse(headers=headers)
        chunked = request.version >= HttpVersion11
        if chunked:  # said here, not left to aiohttp: events are written as chunks directly
            response.enable_chunked_encoding()
        last_event_id = request.headers.get("Last-Event-ID") or request.query.get("lastEventId")
        if last_event_id:
            # Read history and join the channels with no await in between: no event
            # can be published meanwhile (Transport.deliver), so none is lost or doubled.
            self._start_replay(connection, last_event_id)
        self._add(connection, request)
        try:
            label(request, response)  # started here, so the front door cannot
            await response.prepare(request)
            await response.write(b"retry: %d\n\n" % self.retry_ms)  # the headers go with it
            connection.go_live(request.transport, chunked)
            await self._pump(connection, response)
        except ConnectionError:  # the client left, or was cut off as too slow
            pass
        finally:
            self._remove(connection)
        return response

    def _start_replay(self, connection: SSEConnection, last_event_id: str) -> None:
        """Gap notices and the first batch of what the client missed. The decoded events
        live only in this call: a stream that never reads must not keep them."""
        notices, events = self._missed(connection.channels, last_event_id)
        connection.replay(b"".join(notices), None)
        self._replay_batch(connection, events)

    def _replay_batch(self, connection: SSEConnection, events: list[Event]) -> None:
        """Give ``connection`` the next :data:`REPLAY_BATCH` bytes of ``events`` (oldest first);
        the rest is read from history again when the client took this batch."""
        parts: list[bytes] = []
        size = 0
        for index, event in enumerate(events):
            frame = encode_event(event)
            parts.append(frame)
            size += len(frame)
            if size >= REPLAY_BATCH and index + 1 < len(events):
                connection.replay(b"".join(parts), event.id, event_sequence(events[-1]))
                return
        connection.replay(b"".join(parts), None)

    def _next_batch(self, connection: SSEConnection) -> None:
        """The replay continues after its cursor, up to where live delivery took over."""
        cursor = connection.replay_cursor
        assert cursor is not None
        notices: list[bytes] = []
        events: list[Event] = []
        for channel in connection.channels:
            missed = self.hub.history.since(channel, cursor)
            if missed.gap:  # dropped from history while the client was reading the replay
                notices.append(encode_gap(channel, cursor, len(missed.events)))
            events += [event for event in missed.events
                       if event_sequence(event) <= connection.replay_until]
        events.sort(key=event_sequence)
        connection.replay(b"".join(notices), None)
        self._replay_batch(connection, events)

    def _missed(self, channels: list[str], last_event_id: str
                ) -> tuple[list[bytes], list[Event]]:
        """Gap notices and the events a client that last saw ``last_event_id`` missed,
        in publish order.

        One id covers every channel of the stream: sequences are shared by all
        channels of a node, so the events of several channels merge by sequence.
        """
        notices: list[bytes] = []
        events: list[Event] = []
        for channel in channels:
            missed = self.hub.history.since(channel, last_event_id)
            if missed.gap:
                notices.append(encode_gap(channel, last_event_id, len(missed.events)))
            events += missed.events
        events.sort(key=event_sequence)
        self.hub.metrics.resumed(bool(notices))
        return notices, events

    def _channels_for(self, request: web.Request, identity: Identity | None) -> list[str]:
        query = request.query
        channels: list[str] = []
        if identity is not None:
            channels += [identity.user_channel, identity.application_channel]
        channels += [validate_code(code) for code in query.getall("code", [])]
        channels += [validate_channel(channel, SSE_INVALID_CHANNEL)
                     for channel in query.getall("channel", [])]
        if not channels:
            raise TOKEN_MISSING("Say what to listen to: 'Authorization: Bearer <JWT>' (or "
                                "?token=<JWT>), or public channels with ?code=C or "
                                "?channel=name.")
        unique = list(dict.fromkeys(channels))
        if len(unique) > MAX_CHANNELS_PER_STREAM:
            raise SSE_TOO_MANY_CHANNELS(f"One stream listens to at most {MAX_CHANNELS_PER_STREAM} "
                                    f"channels (got {len(unique)}); open another stream.")
        return unique

    async def _pump(self, connection: SSEConnection, response: web.StreamResponse) -> None:
        """The stream's writer: the replay, then whatever queued while the client lagged,
        and pings. When nothing waits, deliveries write directly (:meth:`SSEConnection.offer`);
        every write here puts its bytes on the transport before its first await, so the
        order holds."""
        loop = asyncio.get_running_loop()
        next_ping = loop.time() + self.ping_interval
        while True:
            now = loop.time()
            await connection.wait(max(0.0, min(next_ping - now, LIVENESS_SECONDS)))
            if connection.closing is not None or connection.client_gone():
                return
            if connection.needs_replay_batch():
                self._next_batch(connection)
            frames = connection.take()
            if loop.time() >= next_ping:
                frames += encode_ping(time.time())
                next_ping = loop.time() + self.ping_interval
            if frames:
                await response.write(frames)

    # -- bookkeeping -----------------------------------------------------
    def _add(self, connection: SSEConnection, request: web.Request) -> None:
        self._open.add(connection)
        for channel in connection.channels:
            self._channels.setdefault(channel, set()).add(connection)
        if connection.identity is not None:
            connection.info = ConnectionInfo(connection.id, connection.identity, self.name,
                                             client_address(request))
            self.registry.add(connection.info)
        log.debug("sse %s opened on %s", connection.id,
                  ", ".join(mask(channel) for channel in connection.channels))

    def _remove(self, connection: SSEConnection) -> None:
        if connection not in self._open:
            return
        self._open.discard(connection)
        for channel in connection.channels:
            listeners = self._channels.get(channel)
            if listeners is not None:
                listeners.discard(connection)
                if not listeners:
                    del self._channels[channel]
        if connection.info is not None:
            self.registry.remove(connection.info)
        log.debug("sse %s closed (%s)", connection.id, connection.closing or "client left")

    def _cut_off_slow(self, connection: SSEConnection) -> None:
        log.warning("sse %s cut off as too slow: more than %d events or %d bytes waiting "
                    "(--sse-queue-size, --output-budget); the client reads too slowly and "
                    "resumes with Last-Event-ID (channels %s)", connection.id,
                    connection.max_queue, connection.max_bytes,
                    ", ".join(mask(channel) for channel in connection.channels))
        connection.close("too slow")
        self.hub.metrics.slow_consumer_disconnect(self.name)
        self._remove(connection)
        connection.abort()

    async def close_all(self, message: str, code: int) -> None:
        """End every stream (cluster mode: this node fell behind the bus); clients resume."""
        for connection in list(self._open):
            connection.close(f"{message} ({code})")

    async def _on_shutdown(self, _app: web.Application) -> None:
        """End every stream now, so the server stops promptly and browsers reconnect."""
        for connection in list(self._open):
            connection.close("server shutting down")
