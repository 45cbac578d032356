"""engine.io long-polling that never drops: the fallback every page takes behind a
proxy without Upgrade headers.

python-engineio 4.15 loses events three ways on the polling transport (see
shared/FACTS.md, "Long-polling"), fixed here on the engine.io socket itself so
everything else (CORS, JSONP, compression, the WebSocket upgrade) stays theirs:

- a POST with more than 16 packets was dropped whole while answering ``OK``:
  here every packet of a POST is handled (up to :data:`MAX_POST_PACKETS`; more,
  or a packet that does not decode, closes the session with one WARNING line
  and a 400, never a silent loss);
- a response held every queued packet, and python-engineio clients refuse more
  than 16: here a response holds at most :data:`MAX_RESPONSE_PACKETS` (the
  browser client takes any number; the rest go in the next poll, at once);
- a long-poll whose TCP connection dropped kept waiting, took the next events
  and wrote them into the dead socket while the client's retry on the same
  session waited behind it: here the wait is cancelled when its client hangs
  up (:mod:`..hangup`) or when a newer poll of the same session arrives (a
  client never has two), and waiting never takes a packet it cannot send.

A polling session's output obeys the one slow-consumer rule (:mod:`.budget`):
everything it is to be sent waits in one ordered :class:`PollingOutbox` (the
session's queue), bytes counted; a replay waits as history's own events and is
encoded as polls take it (16 packets at a time), so a resume never copies the
history, and a resume of a channel replaces a replay of it still waiting. Past
``--output-budget`` bytes waiting, the session's output is dropped, the client
is told ``too slow, resuming`` on its next poll and the session ends; its
client reconnects and resumes from its last id.

Nothing here runs per event for WebSocket connections; a session that
upgrades becomes :mod:`.engineio_ws`'s and takes what still waits here.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections import deque
from typing import Any, Iterable

from engineio import exceptions as engineio_exceptions
from engineio import packet as engineio_packet
from engineio.async_socket import AsyncSocket

from .. import hangup
from ..logs import Throttle
from ..proxies import client_address
from .budget import Replay

log = logging.getLogger(__name__)

MAX_RESPONSE_PACKETS = 16
"""Packets in one polling response: python-engineio's client refuses more
(``Payload.max_decode_packets``); socket.io's JS client 4.8 takes any number."""
MAX_POST_PACKETS = 1000
"""Packets one polling POST may carry (its bytes are bounded too: 1 MB, max_http_buffer_size).
Far above what a page sends at once; each one starts a handler, so it is bounded."""
PACKET_SEPARATOR = "\x1e"

_refusals = Throttle()


def frame_packet(frame: bytes, channel: str | None = None) -> engineio_packet.Packet:
    """The engine.io MESSAGE a WebSocket text frame of :mod:`.engineio_ws` carries.

    The socket.io transport builds one frame per event for every member; a
    polling member (rare) gets the same text back as a packet.
    """
    length = frame[1] & 0x7F
    start = 2 if length < 126 else 4 if length == 126 else 10
    packet = ChannelPacket(engineio_packet.MESSAGE, frame[start + 1:].decode())
    packet.channel = channel
    return packet


class ChannelPacket(engineio_packet.Packet):
    """An event's packet, marked with its channel so a resume of that channel can drop it."""

    channel: str | None = None


def packet_size(packet: Any) -> int:
    data = getattr(packet, "data", None)
    return len(data) if isinstance(data, (str, bytes)) else 64


class PollingOutbox(asyncio.Queue):
    """A polling session's queue: engine.io packets and replays, in order, bytes counted.

    python-engineio and python-socketio put packets on it as on any session's
    queue; a :class:`~.budget.Replay` waits as one item and hands out its
    events one packet at a time (``get`` encodes the next one), so what waits
    in bytes (``held``) counts a replay only as it is taken.
    """

    def _init(self, maxsize: int) -> None:
        self._queue: deque[Any] = deque()
        self.held = 0

    def _put(self, item: Any) -> None:
        self._queue.append(item)
        if not isinstance(item, Replay):
            self.held += packet_size(item)

    def _get(self) -> Any:
        head = self._queue[0]
        if isinstance(head, Replay):
            packet = frame_packet(head.encode(head.items[head.position]))
            head.position += 1
            if not head:
                self._queue.popleft()
            return packet
        self._queue.popleft()
        if head is not None:
            self.held -= packet_size(head)
        return head

    def task_done(self) -> None:
        if self._unfinished_tasks > 0:  # a replay is put once and taken many times
            super().task_done()

    def drop_channel(self, channel: str) -> None:
        """Forget what waits of ``channel`` (its replay and its events): a new replay has it all."""
        kept: deque[Any] = deque()
        for item in self._queue:
            if isinstance(item, Replay) and item.channel == channel:
                continue
            if getattr(item, "channel", None) == channel:
                self.held -= packet_size(item)
                continue
            kept.append(item)
        self._queue = kept

    def clear(self) -> None:
        self._queue = deque()
        self.held = 0


class RefusedPost(engineio_exceptions.EngineIOError):
    """A POST this server will not take; python-engineio answers 400 and closes the session."""


class LongPollingSocket(AsyncSocket):
    """python-engineio's socket with a polling transport that neither drops nor overfills.

    Installed on every socket of the server by :func:`install`; a socket that
    upgrades to WebSocket keeps python-engineio's behaviour from then on.
    """

    waiting_poll: asyncio.Task[Any] | None = None  # the GET of this session now waiting
    too_slow_pending = False  # told it is too slow: the session ends once that is polled

    @property
    def outbox(self) -> PollingOutbox:
        """Where the session's output waits (the socket.io transport writes events here)."""
        return self.queue

    def write(self, frame: bytes, channel: str | None = None) -> None:
        """Queue one event (a WebSocket frame of :mod:`.engineio_ws`) for the next poll."""
        if self.closed or self.too_slow_pending:
            return
        self.queue.put_nowait(frame_packet(frame, channel))
        if self.queue.held > self.server.output_budget:
            self.too_slow()

    def replay(self, replay: Replay, before: Iterable[bytes] = ()) -> None:
        """Queue what a resuming client missed; a replay of that channel still waiting is replaced."""
        if self.closed or self.too_slow_pending:
            return
        self.queue.drop_channel(replay.channel)
        for frame in before:
            self.write(frame, replay.channel)
        if replay:
            self.queue.put_nowait(replay)

    def too_slow(self) -> None:
        """Drop what waits, tell the client why on its next poll, then end the session.

        No engine.io CLOSE: that would tell the client not to come back. A
        client that never polls again is ended by engine.io's ping timeout.
        """
        from .engineio_ws import warn_slow  # the same WARNING line as WebSockets

        self.too_slow_pending = True
        self.queue.clear()
        notice = getattr(self.server, "too_slow_notice", b"")
        if notice:
            self.queue.put_nowait(frame_packet(notice))
        warn_slow(self.server.warnings, getattr(self, "peer", "?"), self.server.output_budget)

    async def handle_get_request(self, environ: dict[str, Any]) -> Any:
        connections = [part.strip()
                       for part in environ.get("HTTP_CONNECTION", "").lower().split(",")]
        upgrade = environ.get("HTTP_UPGRADE", "").lower()
        if ("upgrade" in connections and upgrade in self.upgrade_protocols) \
                or self.upgrading or self.upgraded:
            return await super().handle_get_request(environ)
        try:
            return await self._long_poll(environ["aiohttp.request"])
        except engineio_exceptions.QueueEmpty:
            await self.close(wait=False, reason=self.server.reason.TRANSPORT_ERROR)
            raise

    async def _long_poll(self, request: Any) -> list[engineio_packet.Packet]:
        """Wait for packets and take at most :data:`MAX_RESPONSE_PACKETS` of them.

        The wait is a plain ``queue.get()`` (no ``asyncio.wait_for``, whose inner
        task can take a packet and lose it when cancelled): cancelled there, the
        packet stays queued for the next poll. Raises ``QueueEmpty`` when nothing
        came for a ping interval and timeout (the client is gone).
        """
        previous = self.waiting_poll
        if previous is not None and not previous.done():
            previous.cancel()  # the client gave up on that poll: it must take nothing
        task = asyncio.current_task()
        assert task is not None
        self.waiting_poll = task
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = asyncio.get_running_loop().call_later(
            self.server.ping_interval + self.server.ping_timeout, expire)
        try:
            with hangup.cancelled_on_hangup(request):
                first = await self.queue.get()
        except asyncio.CancelledError:
            if not expired:
                raise
            if hasattr(task, "uncancel"):
                task.uncancel()
            raise engineio_exceptions.QueueEmpty() from None
        finally:
            timer.cancel()
            if self.waiting_poll is task:
                self.waiting_poll = None
        self.queue.task_done()
        if first is None:  # python-engineio's mark of a closing socket
            return []
        packets = [first]
        while len(packets) < MAX_RESPONSE_PACKETS:
            try:
                packet = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            self.queue.task_done()
            if packet is None:
                self.queue.put_nowait(None)
                break
            packets.append(packet)
        if self.too_slow_pending and self.queue.empty():
            asyncio.ensure_future(self._end_too_slow())
        return packets

    async def _end_too_slow(self) -> None:
        """The notice goes out in the current response; then the session is over (its next
        poll is refused, so the client reconnects and resumes)."""
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_ERROR)
        if self.server.sockets.get(self.sid) is self:
            del self.server.sockets[self.sid]

    async def handle_post_request(self, environ: dict[str, Any]) -> None:
        length = int(environ.get("CONTENT_LENGTH", "0"))
        if length > self.server.max_http_buffer_size:
            raise engineio_exceptions.ContentTooLongError()
        body = (await environ["wsgi.input"].read(length)).decode("utf-8")
        packets, refusal = self._decode_post(body)
        if refusal is not None:
            await self._refuse(environ, refusal)
        for packet in packets:
            await self.receive(packet)

    @staticmethod
    def _decode_post(body: str) -> tuple[list[engineio_packet.Packet], str | None]:
        """Every packet of the POST, or why it is refused (never a silent drop)."""
        if not body:
            return [], None
        if body.startswith("d="):  # JSONP
            body = urllib.parse.parse_qs(body).get("d", [""])[0]
        encoded = body.split(PACKET_SEPARATOR)
        if len(encoded) > MAX_POST_PACKETS:
            return [], (f"{len(encoded)} packets in one POST, more than the "
                        f"{MAX_POST_PACKETS} allowed")
        try:
            return [engineio_packet.Packet(encoded_packet=item) for item in encoded], None
        except (ValueError, KeyError, IndexError, TypeError):
            return [], "a packet that is not engine.io"

    async def _refuse(self, environ: dict[str, Any], why: str) -> None:
        """One WARNING line, the session closed, a 400 (python-engineio's answer to the error).

        Closed here without waiting: python-engineio's own disconnect waits for
        the CLOSE packet to be polled, which the client, waiting for this POST,
        never does.
        """
        request = environ.get("aiohttp.request")
        peer = request.remote if request is not None else "?"
        _refusals.log(log, logging.WARNING,
                      "closed a polling session from %s: %s", peer, why)
        await self.close(wait=False, reason=self.server.reason.TRANSPORT_ERROR)
        raise RefusedPost(why)


def install(eio: Any) -> None:
    """Give every socket of python-engineio server ``eio`` the long-polling above.

    python-engineio creates its sockets itself; its ``connect`` event runs
    right after, before any poll of the session, and there the socket's class
    becomes :class:`LongPollingSocket` (same layout: no copy) with a :class:`PollingOutbox`.
    """
    connect = eio.handlers["connect"]

    async def on_connect(sid: str, environ: dict[str, Any], *rest: Any) -> Any:
        socket = eio.sockets.get(sid)
        if socket is not None and type(socket) is AsyncSocket:
            socket.__class__ = LongPollingSocket
            if "transport=polling" in environ.get("QUERY_STRING", ""):
                socket.peer = client_address(environ["aiohttp.request"])
            queued, socket.queue = socket.queue, PollingOutbox()
            while not queued.empty():  # the OPEN packet
                socket.queue.put_nowait(queued.get_nowait())
        return await connect(sid, environ, *rest)

    eio.handlers["connect"] = on_connect
