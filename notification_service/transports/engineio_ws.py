"""engine.io over WebSocket, written straight to the connection: no task or timer per event.

python-engineio gives every WebSocket a queue, a writer task that waits on it
with ``asyncio.wait_for`` (a Task, a coroutine and a timer per socket per
event), a reader that wraps every receive in another ``wait_for``, and a
sleeping ping task: about 95 µs of CPU per delivery at scale, most of it the
garbage collector walking those objects, and 3-4 tasks per idle connection
(shared/FACTS.md). Writing an unmasked WebSocket text frame is one
``transport.write`` of bytes that can be built once per event and shared by
every recipient, so that is what a :class:`DirectSocket` does:

* a frame goes to the transport when nothing waits ahead of it: the frames a
  socket gets during one event-loop iteration are joined and written once at
  its end (:class:`WriteBatch`), so a listener that many triggers reach in one
  iteration costs one ``send`` for all of them, not one each; otherwise it
  waits in the socket's :class:`~.budget.Outbox`, behind what is already
  there, and one drain task (only while something waits) writes it when the
  client has taken what the transport holds. Order always holds: every byte
  of a socket goes through :meth:`DirectSocket.write`, and whatever writes to
  the transport directly (the drain, a close) sends the batched frames first.
* past ``--output-budget`` bytes waiting, the client is told why
  (``ERROR`` "too slow, resuming") and the connection is closed; its client
  reconnects and resumes from its last id.
* pings are one timer handle per socket per ping interval; python-engineio's
  service task still closes sockets whose client stopped answering.
* what a client sends reaches the socket as aiohttp's parser reads it off the
  connection (:class:`FrameSink`): no read loop, no timer per message; the
  socket.io packets are handed to python-socketio one at a time, in order, by
  a task that runs only while there are some. Anything engine.io does not
  allow on a WebSocket (binary frames, unknown packet types) closes the
  connection with one WARNING line.
* an open WebSocket keeps only what aiohttp needs of its request: the
  request's task waits on one future (:attr:`DirectSocket.ended`) in the
  response's ``write_eof``, once the handler chain (middleware, engine.io's
  request handling) has returned (:class:`DirectWebSocketResponse`): 13.5 KB
  per idle connection at 5,000 instead of 20 (bench/fanout.py).

Polling sockets stay python-engineio's own (:mod:`.polling` owns them); a
socket becomes a :class:`DirectSocket` when it starts speaking WebSocket,
whether it connected that way or upgraded from polling, and the upgrade
handshake (probe, UPGRADE) is engine.io's.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
from collections import deque
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from engineio import async_socket
from engineio import packet as engineio_packet

from ..logs import Throttle
from .budget import TOO_SLOW_REASON, Outbox, Replay

log = logging.getLogger(__name__)

WRITE_AHEAD = 64 * 1024
"""Bytes the transport may buffer before frames wait in the outbox (asyncio's high-water
mark), or a quarter of the output budget if that is less."""
INBOX_BYTES = 128 * 1024
"""Bytes of client packets waiting to be handled before the connection stops being read
(what aiohttp's own WebSocket queue allows)."""
CLOSE_LINGER_SECONDS = 5.0
"""How long a closed slow connection may take to flush its last frames before it is cut."""
_PING_FRAME = b"\x81\x012"
_CLOSE_FRAME = b"\x81\x011"


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final WebSocket text frame (what a server sends) carrying ``payload``."""
    length = len(payload)
    if length < 126:
        return bytes((0x81, length)) + payload
    if length < 65536:
        return struct.pack("!BBH", 0x81, 126, length) + payload
    return struct.pack("!BBQ", 0x81, 127, length) + payload


def message_frame(socketio_text: str) -> bytes:
    """The WebSocket frame of an engine.io MESSAGE carrying one encoded socket.io packet."""
    return text_frame(b"4" + socketio_text.encode())


def packet_frame(pkt: engineio_packet.Packet) -> bytes:
    """The WebSocket frame of any engine.io packet (text: nothing here sends binary)."""
    encoded = pkt.encode()
    return text_frame(encoded.encode() if isinstance(encoded, str) else encoded)


def close_frame(code: int, reason: str) -> bytes:
    """A WebSocket close frame (RFC 6455 section 5.5.1) with ``code`` and ``reason``."""
    return bytes((0x88, 2 + len(reason.encode()))) + struct.pack("!H", code) + reason.encode()


def warn_slow(throttle: Throttle, peer: str, budget: int) -> None:
    """The one WARNING line for a connection closed as too slow (rate-limited)."""
    throttle.log(log, logging.WARNING,
                  "closed socket.io connection from %s: more than %d bytes waiting (too slow)",
                  peer, budget)


def warn_malformed(throttle: Throttle, peer: str, what: str) -> None:
    """The one WARNING line for a connection closed over what it sent (rate-limited)."""
    throttle.log(log, logging.WARNING, "closed socket.io connection from %s: %s", peer, what)


class _Drained:
    """Stands in for the asyncio.Queue a socket no longer needs once it writes directly.

    An idle asyncio.Queue with its event and waiter deques is about 2 KB a
    connection; python-engineio only still calls ``join`` on it (when closing).
    """

    __slots__ = ()

    async def join(self) -> None:
        return None

    def empty(self) -> bool:
        return True

    def qsize(self) -> int:
        return 0


DRAINED = _Drained()


class WriteBatch:
    """The sockets that got frames during this event-loop iteration, written once at its end.

    A ``send`` on loopback costs 10-30 µs whatever its size (the kernel runs the
    receiving side too), and a GET trigger's own answer is one: one listener
    reached by 20 triggers in an iteration took 20 sends, now one. One
    ``call_soon`` per iteration, none per socket; a broadcast to 5,000 sockets
    costs a list entry per socket and writes each once, as before. Owned by
    the engine.io server, so a socket never outlives its batch's event loop.
    """

    __slots__ = ("_sockets",)

    def __init__(self) -> None:
        self._sockets: list[DirectSocket] = []

    def add(self, socket: DirectSocket) -> None:
        """``socket`` has frames pending: write them at the end of this iteration."""
        if not self._sockets:
            asyncio.get_running_loop().call_soon(self.flush)
        self._sockets.append(socket)

    def flush(self) -> None:
        sockets, self._sockets = self._sockets, []
        for socket in sockets:
            socket.flush()


class FrameSink(WebSocketDataQueue):
    """Where aiohttp's WebSocket parser puts each message: straight into the socket.

    aiohttp's own queue (a deque, its waiter, a reader awaiting it through
    ``ws.receive()``) keeps a chain of suspended coroutines per connection for
    messages that arrive every 25 seconds (a pong). The parser calls this as
    the bytes arrive, from the protocol's ``data_received``; the socket handles
    each message at once (see :meth:`DirectSocket.received`). None of the
    queue's own state is used: the parser only reads its size and limit (0).
    """

    __slots__ = ("socket",)

    def __init__(self, socket: DirectSocket) -> None:  # noqa: D107 - no queue of its own
        self.socket = socket

    def feed_data(self, data: Any, size: int) -> None:
        self.socket.received(data)

    def feed_eof(self) -> None:
        self.socket.finished()

    def set_exception(self, exc: BaseException, exc_cause: Any = None) -> None:
        self.socket.broken(exc)


NO_REQUESTS: tuple[()] = ()
"""Stands in for aiohttp's queue of parsed requests while a connection speaks WebSocket.

Once a parser for WebSocket frames is set, aiohttp parses no more HTTP
requests on the connection, yet its empty ``deque`` of them (760 bytes) stays
for the connection's life. An empty tuple is as empty, and anything appending
to it would fail loudly; a deque is put back when the WebSocket ends, before
aiohttp looks at it again."""


class DirectWebSocketResponse(web.WebSocketResponse):
    """An aiohttp WebSocket whose frames go to a :class:`DirectSocket` as they are parsed.

    aiohttp keeps every coroutine of a request's handler chain suspended for as
    long as the handler runs: for a WebSocket served inside it, its whole life
    (the app's handler, the front door, engine.io's request handling with its
    parsed query, the WebSocket wrapper, the read loop and ``ws.receive()``:
    eleven coroutines and what they hold). With aiohttp's message queue and
    WebSocket writer, which the socket never uses, that was 6.5 KB of an idle
    connection's 19 (tracemalloc). So the
    wrapper returns this response as soon as the WebSocket is open, and
    aiohttp's ``finish_response`` calls :meth:`write_eof`, which waits for the
    connection to end on one future. aiohttp still owns the connection
    throughout: its request task, closing the transport when that task ends,
    shutdown, the connection cap, the access log line when the WebSocket ends.
    """

    _http: Any = None  # aiohttp's protocol, while NO_REQUESTS stands in for its queue

    def __init__(self, socket: DirectSocket, peer: str, *, max_msg_size: int) -> None:
        super().__init__(max_msg_size=max_msg_size, compress=False)
        self._socket = socket
        self._peer = peer

    def _post_start(self, request: web.BaseRequest, protocol: str | None,
                    writer: Any) -> None:
        """aiohttp's own, with the socket in place of the message queue."""
        self._ws_protocol = protocol
        # the writer is not kept: the socket writes its frames to the transport itself
        self._reset_heartbeat()
        self._parser = WebSocketReader(FrameSink(self._socket), self._max_msg_size,
                                       compress=False, decode_text=self._decode_text)
        self._socket.open_websocket(writer.transport, request.protocol, self._peer)
        request.protocol.set_parser(self._parser)  # what arrived with the upgrade is fed now
        request.protocol.keep_alive(False)
        if not request.protocol._messages:
            self._http = request.protocol
            self._http._messages = NO_REQUESTS

    async def write_eof(self) -> None:  # type: ignore[override]
        if self._eof_sent:
            return
        self._eof_sent = True
        self._set_closed()
        socket = self._socket
        try:
            if socket.ended is not None:
                await socket.ended  # the one thing an open WebSocket's request task waits on
            await socket.websocket_ended()
        finally:
            if self._http is not None and self._http._messages is NO_REQUESTS:
                self._http._messages = deque()
        # what engine.io does once the handler it awaited returns
        if socket.closed and socket.server.sockets.get(socket.sid) is socket:
            del socket.server.sockets[socket.sid]
        # aiohttp closes the transport (if the socket has not) as this request ends


class DirectSocket(async_socket.AsyncSocket):
    """An engine.io socket that writes its WebSocket frames itself (see the module docstring).

    The socket.io transport makes a socket this class when it connects over
    WebSocket, or when its WebSocket upgrade starts (``transports/socketio.py``);
    until its WebSocket opens (:meth:`open_websocket`; ``outbox`` is None) it
    behaves as python-engineio's own socket.
    """

    # Set by _attach; until then the class-level defaults keep python-engineio's behaviour.
    transport: asyncio.Transport | None = None
    outbox: Outbox | None = None
    peer: str = "?"
    _drainer: asyncio.Task | None = None
    _ping_timer: asyncio.TimerHandle | None = None
    _protocol: Any = None
    _pending: list[bytes] | None = None  # frames of this iteration (see WriteBatch)
    _pending_bytes: int = 0
    ended: asyncio.Future[None] | None = None  # done once the WebSocket has ended
    _upgrade_to: tuple[asyncio.Transport, Any] | None = None  # while probing an upgrade
    _probed: bool = False
    _inbox: list[str] | None = None  # socket.io packets waiting behind the one being handled
    _inbox_bytes: int = 0
    _inbox_task: asyncio.Task | None = None  # only while packets are being handled
    write_ahead: int = WRITE_AHEAD

    # -- output ---------------------------------------------------------------
    def write(self, frame: bytes, channel: str | None = None) -> None:
        """Send one WebSocket frame, in order after everything sent before it.

        ``channel`` names the channel a live event frame is from, so a resume
        of that channel can replace it while it still waits.
        """
        transport = self.transport
        outbox = self.outbox
        if transport is None or outbox is None or self.closed or transport.is_closing():
            return  # gone: its reader is about to end the socket
        if not outbox and (transport.get_write_buffer_size() + self._pending_bytes
                           < self.write_ahead):
            pending = self._pending
            if pending is None:
                self._pending = [frame]
                self._pending_bytes = len(frame)
                self.server.write_batch.add(self)
            else:
                pending.append(frame)
                self._pending_bytes += len(frame)
            return
        self.flush()  # this iteration's frames go ahead of what waits
        outbox.push(frame, channel)
        if outbox.over_budget(transport.get_write_buffer_size()):
            self.too_slow()
        elif self._drainer is None:
            self._drainer = asyncio.ensure_future(self._drain())

    def replay(self, replay: Replay, before: tuple[bytes, ...] = ()) -> None:
        """Queue what a resuming client missed; a replay of that channel still waiting is replaced."""
        if self.outbox is None or self.closed:
            return
        self.flush()
        self.outbox.replay(replay, before)
        if self.outbox and self._drainer is None:
            self._drainer = asyncio.ensure_future(self._drain())

    def flush(self) -> None:
        """Write the frames this socket got during this iteration, as one write."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        self._pending_bytes = 0
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    async def _drain(self) -> None:
        """Write what waits in the outbox as fast as the client takes it (runs only while it waits)."""
        try:
            while self.outbox and not self.closed and self.transport is not None:
                if self._protocol is not None and self._protocol._paused:
                    await self._protocol._drain_helper()
                    continue
                room = self.write_ahead - self.transport.get_write_buffer_size()
                if room > 0:
                    self.transport.write(b"".join(self.outbox.take(room)))
                    await asyncio.sleep(0)  # a long replay must not hold up other connections
                else:  # exactly at the mark: not paused, no room either
                    await asyncio.sleep(0.05)
        except (ConnectionError, RuntimeError):
            pass  # the connection went away: its reader ends the socket
        finally:
            self._drainer = None

    def too_slow(self) -> None:
        """Close a connection whose client does not take its output fast enough.

        Whatever waits is dropped; the client is told why (the server's
        ``too_slow_notice`` frame, an ``ERROR`` event, written ahead of the
        close) and resumes from the last id it got.
        """
        if self.outbox is not None:
            self.outbox.clear()
        notice = getattr(self.server, "too_slow_notice", b"")
        if notice and self.transport is not None and not self.transport.is_closing():
            self.transport.write(notice)
        # no engine.io CLOSE: that would tell the client not to come back
        self.end(WSCloseCode.TRY_AGAIN_LATER, TOO_SLOW_REASON, goodbye=False)
        warn_slow(self.server.warnings, self.peer, self.server.output_budget)
        # python-socketio forgets the connection (rooms, handlers) right away
        asyncio.ensure_future(self.close(wait=False, abort=True,
                                         reason=self.server.reason.TRANSPORT_ERROR))

    def end(self, code: int, reason: str, *, goodbye: bool = True) -> None:
        """Write engine.io CLOSE (if ``goodbye``) and a WebSocket close frame, then let go."""
        self.flush()
        transport = self.transport
        if transport is None:
            return
        self.transport = None
        if not transport.is_closing():
            transport.write((_CLOSE_FRAME if goodbye else b"") + close_frame(code, reason))
            transport.close()  # flushes first; a client that never reads is cut below
            asyncio.get_running_loop().call_later(CLOSE_LINGER_SECONDS, transport.abort)

    async def send(self, pkt: engineio_packet.Packet) -> None:
        """python-engineio and python-socketio send every packet through here."""
        if self.outbox is None:
            await super().send(pkt)
            return
        self.write(packet_frame(pkt))

    # -- pings: one timer handle, no task ------------------------------------
    def schedule_ping(self) -> None:
        if self.last_ping:
            self.last_ping = None
            self._ping_timer = asyncio.get_running_loop().call_later(
                self.server.ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        if not self.closing and not self.closed:
            self.last_ping = time.time()
            if self.outbox is None:  # the WebSocket is not open yet
                self.queue.put_nowait(engineio_packet.Packet(engineio_packet.PING))
            else:
                self.write(_PING_FRAME)

    # -- closing ---------------------------------------------------------------
    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        if self.outbox is None:
            await super().close(wait=wait, abort=abort, reason=reason)
            return
        if self.closed or self.closing:
            return
        self.closing = True
        await self.server._trigger_event(
            "disconnect", self.sid, reason or self.server.reason.SERVER_DISCONNECT,
            run_async=False)
        self.closed = True
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        if not abort:
            self.end(WSCloseCode.OK, "")
        elif self.transport is not None:
            self.transport = None

    # -- the WebSocket ---------------------------------------------------------
    def open_websocket(self, transport: asyncio.Transport, protocol: Any, peer: str) -> None:
        """The WebSocket is open: what the client sends now arrives in :meth:`received`."""
        self.peer = peer
        self.ended = asyncio.get_running_loop().create_future()
        if self.connected:  # upgrading from polling: engine.io's probe, then UPGRADE
            self.upgrading = True
            self._upgrade_to = (transport, protocol)
        else:
            self._attach(transport, protocol)

    def _attach(self, transport: asyncio.Transport, protocol: Any) -> None:
        """From now on this socket writes its frames itself, in order after what was queued."""
        self.connected = True
        self.upgraded = True
        self.transport = transport
        self._protocol = protocol
        # aiohttp's HTTP request parser (about 760 bytes) is never used again once the
        # WebSocket reads the connection; aiohttp checks for None wherever it would
        protocol._parser = None
        self.outbox = Outbox(self.server.output_budget)
        if self.server.output_budget // 4 < WRITE_AHEAD:
            self.write_ahead = self.server.output_budget // 4
        # the protocol pauses (and _drain waits) once the transport holds more than that
        transport.set_write_buffer_limits(high=self.write_ahead)
        queued, self.queue = self.queue, DRAINED
        while not queued.empty():
            pkt = queued.get_nowait()
            if pkt is not None:
                self.write(packet_frame(pkt))

    async def websocket_ended(self) -> None:
        """The WebSocket has ended (:attr:`ended`): close the socket (engine.io's disconnect)."""
        if self._inbox_task is not None:  # the message being handled finishes first
            await asyncio.wait((self._inbox_task,))
        if self._drainer is not None:
            self._drainer.cancel()
        self.upgrading = False
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
        if self.outbox is not None:
            self.outbox.clear()

    def finished(self) -> None:
        """The WebSocket has ended (the connection is gone, or is closing): stop reading."""
        self._inbox = None
        if self.ended is not None and not self.ended.done():
            self.ended.set_result(None)

    def broken(self, error: BaseException) -> None:
        """aiohttp's parser refused what the client sent (a protocol error, a message too large)."""
        code = getattr(error, "code", None)  # a WebSocketError's close code
        if isinstance(code, int):
            self.end(code, "", goodbye=False)
        self.finished()  # aiohttp closes the transport if nothing did

    def received(self, message: Any) -> None:
        """One WebSocket message from the client, as aiohttp's parser hands it over."""
        if self.ended is None or self.ended.done():
            return
        kind = message.type
        if kind is WSMsgType.TEXT:
            self._received_text(message.data)
        elif kind is WSMsgType.PING:
            transport = self.transport or (self._upgrade_to and self._upgrade_to[0])
            if transport and not transport.is_closing():
                self.flush()
                transport.write(bytes((0x8A, len(message.data))) + message.data)
        elif kind is WSMsgType.PONG:
            pass
        else:
            if kind is WSMsgType.BINARY:
                self.refuse("a binary WebSocket frame (this server takes no binary data)")
            elif kind is WSMsgType.CLOSE:  # answer the client's close frame, then let go
                self.end(WSCloseCode.OK, "", goodbye=False)
            self.finished()

    def _received_text(self, data: str) -> None:
        """Hand each engine.io packet the client sends to engine.io; refuse what it may not send."""
        first = data[:1]
        if self._upgrade_to is not None:
            self._probe(data)
        elif first == "4":
            self._handle(data[1:])
        elif first == "3":
            self.schedule_ping()
        elif first == "1":
            self.finished()
        elif first in ("2", "5", "6") and len(data) <= 6:
            pass  # a ping, a late UPGRADE or NOOP: nothing to do
        else:
            self.refuse(f"a malformed engine.io packet ({len(data)} characters)")
            self.finished()

    def _probe(self, data: str) -> None:
        """engine.io's upgrade from polling: ``2probe`` answered ``3probe``, then ``5``."""
        transport, protocol = self._upgrade_to
        if data == "2probe" and not self._probed:
            self._probed = True
            transport.write(text_frame(b"3probe"))
            self.queue.put_nowait(engineio_packet.Packet(engineio_packet.NOOP))  # end the poll
        elif data == "5" and self._probed:
            self._upgrade_to = None
            self.upgrading = False
            self._attach(transport, protocol)
        else:
            self._upgrade_to = None
            transport.close()
            self.finished()

    def _handle(self, data: str) -> None:
        """Give a socket.io packet to python-socketio, in order, one at a time.

        A packet's handling may wait (the connect handler does): the next one
        waits behind it, as it would in a read loop. Past INBOX_BYTES waiting,
        the connection stops being read until they are handled.
        """
        if self._inbox_task is not None:
            self._inbox.append(data)
            self._inbox_bytes += len(data)
            if self._inbox_bytes > INBOX_BYTES and self._protocol is not None:
                self._protocol.pause_reading()
            return
        self._inbox = [data]
        self._inbox_bytes = len(data)
        self._inbox_task = asyncio.ensure_future(self._handle_inbox())

    async def _handle_inbox(self) -> None:
        server = self.server
        try:
            while self._inbox and not self.closed:
                data = self._inbox.pop(0)
                self._inbox_bytes -= len(data)
                await server._trigger_event("message", self.sid, data,
                                            run_async=server.async_handlers)
        finally:
            self._inbox = None
            self._inbox_task = None
            protocol = self._protocol
            if protocol is not None and protocol._reading_paused and self.transport is not None:
                protocol.resume_reading()

    def refuse(self, what: str) -> None:
        """Close this connection over something its client sent, with one WARNING line."""
        warn_malformed(self.server.warnings, self.peer, what)
        if self.outbox is not None:
            self.outbox.clear()
        self.end(WSCloseCode.POLICY_VIOLATION, "malformed input")
