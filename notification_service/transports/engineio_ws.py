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
* what a client sends is read in the request's own task, without a timer per
  message; anything engine.io does not allow on a WebSocket (binary frames,
  unknown packet types) closes the connection with one WARNING line.

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
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from engineio import async_socket
from engineio import packet as engineio_packet

from ..logs import Throttle
from .budget import TOO_SLOW_REASON, Outbox, Replay

log = logging.getLogger(__name__)

WRITE_AHEAD = 64 * 1024
"""Bytes the transport may buffer before frames wait in the outbox (asyncio's high-water
mark), or a quarter of the output budget if that is less."""
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


class DirectWebSocketResponse(web.WebSocketResponse):
    """An aiohttp WebSocket served after its handler returned, from ``write_eof``.

    aiohttp keeps every coroutine of a request's handler chain suspended for as
    long as the handler runs: for a WebSocket, its whole life. Here that chain
    is the app's handler, its middlewares, engine.io's request handling (with
    its parsed query) and the WebSocket wrapper: seven coroutines and what they
    hold, about 2.5 KB a connection. So the wrapper returns this response once
    the WebSocket is open, and aiohttp's ``finish_response`` calls
    :meth:`write_eof`, which serves the socket; aiohttp still owns the
    connection throughout (its request task, shutdown, the connection cap) and
    writes its access log line when the WebSocket ends, as before.
    """

    _served: tuple[DirectSocket, str] | None = None

    def serve_after_handler(self, socket: DirectSocket, peer: str) -> None:
        """Serve ``socket`` (from ``peer``) over this WebSocket once the handler has returned."""
        self._served = (socket, peer)

    async def write_eof(self) -> None:  # type: ignore[override]
        served, self._served = self._served, None
        if served is not None:
            socket, _peer = served
            try:
                await socket.serve_websocket(self, _peer)
            finally:
                # what engine.io does once the handler it awaited returns
                if socket.closed and socket.server.sockets.get(socket.sid) is socket:
                    del socket.server.sockets[socket.sid]
        await super().write_eof()


class DirectSocket(async_socket.AsyncSocket):
    """An engine.io socket that writes its WebSocket frames itself (see the module docstring).

    The socket.io transport makes a socket this class when it connects over
    WebSocket, or when its WebSocket upgrade starts (``transports/socketio.py``);
    until :meth:`serve_websocket` attaches the WebSocket (``outbox`` is None) it
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
    async def serve_websocket(self, ws: web.WebSocketResponse, peer: str) -> None:
        """Run an open WebSocket until it closes: upgrade handshake, then read what the client sends."""
        if self.connected:  # upgrading from polling: engine.io's probe, then UPGRADE
            self.upgrading = True
            try:
                probe = await ws.receive()
                if probe.type != WSMsgType.TEXT or probe.data != "2probe":
                    return
                await ws.send_str("3probe")
                await self.queue.put(engineio_packet.Packet(engineio_packet.NOOP))  # end the poll
                upgrade = await ws.receive()
                if upgrade.type != WSMsgType.TEXT or upgrade.data != "5":
                    return
            finally:
                self.upgrading = False
        self.connected = True
        self.upgraded = True
        self._attach(ws, peer)
        try:
            await self._read(ws)
        finally:
            if self._drainer is not None:
                self._drainer.cancel()
            await self.close(wait=False, abort=True,
                             reason=self.server.reason.TRANSPORT_CLOSE)
            if self.outbox is not None:
                self.outbox.clear()

    def _attach(self, ws: web.WebSocketResponse, peer: str) -> None:
        """From now on this socket writes its frames itself, in order after what was queued."""
        writer = ws._writer
        assert writer is not None
        self.transport = writer.transport
        self._protocol = writer.protocol
        # aiohttp's HTTP request parser (about 760 bytes) is never used again once the
        # WebSocket reads the connection; aiohttp checks for None wherever it would
        self._protocol._parser = None
        self.peer = peer
        self.outbox = Outbox(self.server.output_budget)
        if self.server.output_budget // 4 < WRITE_AHEAD:
            self.write_ahead = self.server.output_budget // 4
        # the protocol pauses (and _drain waits) once the transport holds more than that
        self.transport.set_write_buffer_limits(high=self.write_ahead)
        queued, self.queue = self.queue, DRAINED
        while not queued.empty():
            pkt = queued.get_nowait()
            if pkt is not None:
                self.write(packet_frame(pkt))

    async def _read(self, ws: web.WebSocketResponse) -> None:
        """Hand each engine.io packet the client sends to engine.io; refuse what it may not send."""
        server = self.server
        while not self.closed:
            message = await ws.receive()
            kind = message.type
            if kind != WSMsgType.TEXT:
                if kind == WSMsgType.BINARY:
                    self.refuse("a binary WebSocket frame (this server takes no binary data)")
                return  # CLOSE, CLOSING, CLOSED, ERROR: the client is gone
            data: str = message.data
            first = data[:1]
            if first == "4":
                await server._trigger_event("message", self.sid, data[1:],
                                            run_async=server.async_handlers)
            elif first == "3":
                self.schedule_ping()
            elif first == "1":
                return
            elif first in ("2", "5", "6") and len(data) <= 6:
                continue  # a ping, a late UPGRADE or NOOP: nothing to do
            else:
                self.refuse(f"a malformed engine.io packet ({len(data)} characters)")
                return

    def refuse(self, what: str) -> None:
        """Close this connection over something its client sent, with one WARNING line."""
        warn_malformed(self.server.warnings, self.peer, what)
        if self.outbox is not None:
            self.outbox.clear()
        self.end(WSCloseCode.POLICY_VIOLATION, "malformed input")
