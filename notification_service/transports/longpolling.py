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

Nothing here runs per event for WebSocket connections; it must never change
the WebSocket path, which keeps python-engineio's ``poll()``.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any

from engineio import exceptions as engineio_exceptions
from engineio import packet as engineio_packet
from engineio.async_socket import AsyncSocket

from .. import hangup
from ..logs import Throttle

log = logging.getLogger(__name__)

MAX_RESPONSE_PACKETS = 16
"""Packets in one polling response: python-engineio's client refuses more
(``Payload.max_decode_packets``); socket.io's JS client 4.8 takes any number."""
MAX_POST_PACKETS = 1000
"""Packets one polling POST may carry (its bytes are bounded by --max-message-bytes).
Far above what a page sends at once; each one starts a handler, so it is bounded."""
PACKET_SEPARATOR = "\x1e"

_refusals = Throttle()


class RefusedPost(engineio_exceptions.EngineIOError):
    """A POST this server will not take; python-engineio answers 400 and closes the session."""


class LongPollingSocket(AsyncSocket):
    """python-engineio's socket with a polling transport that neither drops nor overfills.

    Installed on every socket of the server by :func:`install`; a socket that
    upgrades to WebSocket keeps python-engineio's behaviour from then on.
    """

    waiting_poll: asyncio.Task[Any] | None = None  # the GET of this session now waiting

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
        return packets

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
    becomes :class:`LongPollingSocket` (same layout: no copy, no extra memory).
    """
    connect = eio.handlers["connect"]

    async def on_connect(sid: str, environ: dict[str, Any], *rest: Any) -> Any:
        socket = eio.sockets.get(sid)
        if socket is not None and type(socket) is AsyncSocket:
            socket.__class__ = LongPollingSocket
        return await connect(sid, environ, *rest)

    eio.handlers["connect"] = on_connect
